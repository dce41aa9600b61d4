"""Generator weights saved by the authors' code, mapped onto :class:`DFPGGenerator`.

SAPPGAN's release (``sujyQ/SAPPGAN``, ``test/DFPGNet_G.py`` + ``test/model_utils.py``) saves the
generator as a plain state dict (``G_<metric>_best.pth``, loaded there with ``strict=True``) whose
module names differ from ours but whose network is the same: the paper configuration (widths
64/128/256, 5 blocks per encoder/decoder group, 10 per prior group, SE r=16, global residual,
tanh). The renaming, with ``{i}`` a level and ``{b}`` a block:

    from_rgb / to_rgb                         -> head / tail
    en{i}.0.main.{b}.blocks.{0,2}             -> enc{i}.blocks.{b}.conv{1,2}
    ....blocks.3.channel_attention.{0,2}      -> ....se.{reduce,expand}
    vggf{i}.0.{scale,shift}                   -> prior{i}.ssft.{scale,shift}
    vggf{i}.1.main.{b}                        -> prior{i}.group.blocks.{b}
    middle.0.main.{b}                         -> middle.blocks.{b}
    ft1/ft2/ft3, de1/de2/de3 (decoder order)  -> fuse3/fuse2/fuse1, dec3/dec2/dec1 (by level)
    up1 (256->128) / up2 (128->64)            -> up2 / up1

A ``module.`` prefix (DataParallel) is stripped. Any key left over, missing or of another shape
is an error naming it: such a file is not this architecture.
"""

from __future__ import annotations

import re
from typing import Mapping

import torch

from ...errors import WeightsIntegrityError

_LEVEL = {"1": "3", "2": "2", "3": "1"}  # authors' decoder stage -> our level
_BLOCK = {"0": "conv1", "2": "conv2", "3.channel_attention.0": "se.reduce", "3.channel_attention.2": "se.expand"}
_GROUP_BLOCK = re.compile(r"^main\.(\d+)\.blocks\.(0|2|3\.channel_attention\.0|3\.channel_attention\.2)\.(weight|bias)$")


def is_official(state: Mapping[str, object]) -> bool:
    """True for a state dict in the authors' naming (``from_rgb.weight``, ``en1.0.main...``)."""
    keys = {k[len("module."):] if k.startswith("module.") else k for k in state}
    return "from_rgb.weight" in keys and any(k.startswith("en1.0.main.") for k in keys)


def _group(rest: str, ours: str) -> str | None:
    m = _GROUP_BLOCK.match(rest)
    if m is None:
        return None
    return f"{ours}.blocks.{m.group(1)}.{_BLOCK[m.group(2)]}.{m.group(3)}"


def rename(key: str) -> str | None:
    """Our name of one of the authors' keys (None when it has no counterpart)."""
    head, _, rest = key.partition(".")
    if head in ("from_rgb", "to_rgb") and rest in ("weight", "bias"):
        return f"{'head' if head == 'from_rgb' else 'tail'}.{rest}"
    if head in ("down1", "down2") and rest in ("weight", "bias"):
        return key
    if head in ("up1", "up2") and rest in ("weight", "bias"):
        return f"{'up2' if head == 'up1' else 'up1'}.{rest}"
    m = re.fullmatch(r"(en|de|vggf|ft)(\d)", head)
    if head == "middle" and rest.startswith("0."):
        return _group(rest[2:], "middle")
    if m is None:
        return None
    kind, lvl = m.groups()
    if kind == "en" and rest.startswith("0."):
        return _group(rest[2:], f"enc{lvl}")
    if kind == "de" and rest.startswith("0.") and lvl in _LEVEL:
        return _group(rest[2:], f"dec{_LEVEL[lvl]}")
    if kind == "vggf" and rest.startswith("1."):
        return _group(rest[2:], f"prior{lvl}.group")
    if kind == "vggf" and re.fullmatch(r"0\.(scale|shift)\.[02]\.(weight|bias)", rest):
        return f"prior{lvl}.ssft.{rest[2:]}"
    if kind == "ft" and lvl in _LEVEL and re.fullmatch(r"(scale|shift)\.[02]\.(weight|bias)", rest):
        return f"fuse{_LEVEL[lvl]}.{rest}"
    return None


def convert(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
            source: str = "<state dict>") -> dict[str, torch.Tensor]:
    """The authors' generator state dict renamed to ours; checked against ``target`` (our model's
    own state dict: every key present once, same shapes)."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for k, v in state.items():
        k2 = k[len("module."):] if k.startswith("module.") else k
        ours = rename(k2)
        if ours is None or ours not in target:
            unknown.append(k)
            continue
        if tuple(v.shape) != tuple(target[ours].shape):
            raise WeightsIntegrityError(
                f"{source}: {k} has shape {tuple(v.shape)}, the paper generator's {ours} has {tuple(target[ours].shape)}",
                "this file is not the paper-configuration DFPGnet/SAPPGAN generator")
        out[ours] = v
    missing = sorted(set(target) - set(out))
    if unknown or missing:
        raise WeightsIntegrityError(
            f"{source}: not the authors' DFPGnet generator layout ("
            + (f"unexpected keys {unknown[:4]}{' …' if len(unknown) > 4 else ''}" if unknown else "")
            + ("; " if unknown and missing else "")
            + (f"missing {missing[:4]}{' …' if len(missing) > 4 else ''}" if missing else "") + ")",
            "pass the generator weights saved by the authors' code (G_*_best.pth) or a faceblur-bench checkpoint")
    return out
