"""The authors' released generator ``netG_last.pth`` mapped onto :class:`.networks.MSPLGenerator`.

The release (``dolphin0104/MSPL-GAN``, Google Drive link in its README) saves the generator as a
plain state dict (``torch.save(netG.state_dict())``, DataParallel unwrapped). Renaming, with
``{k}`` a stage and ``{i}`` a block::

    from_rgb / to_rgb{k}                          -> head / tails.{k}
    net{k}.en1 / en2 .{i}                         -> unets.{k}.enc1 / enc2 .{i}
    net{k}.de1 / de2 .{i}  (decoder order)        -> unets.{k}.dec2 / dec1 .{i}  (by level)
    net{k}.middle.{i}                             -> unets.{k}.middle.blocks.{i}
    net{k}.down1 / down2                          -> unets.{k}.down1 / down2
    net{k}.up1 (H/4 -> H/2) / up2 (H/2 -> H)      -> unets.{k}.up2 / up1
    ...blocks.0 / blocks.2                        -> ...conv1 / conv2
    ...blocks.3.channel_attention.0 / .2          -> ...se.reduce / se.expand

A ``module.`` prefix (DataParallel) is stripped. The architecture is read off the tensors
(width from ``from_rgb.weight``, block counts from the keys), so the paper file gives the paper
configuration (:func:`config_of`); any key left over, missing or of another shape is an error
naming it: such a file is not this architecture.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ...errors import WeightsIntegrityError
from .networks import N_STAGES, GeneratorConfig

_GROUP = {"en1": "enc1", "en2": "enc2", "de1": "dec2", "de2": "dec1"}
_CONV = {"down1": "down1", "down2": "down2", "up1": "up2", "up2": "up1"}
_PART = {
    "blocks.0": "conv1",
    "blocks.2": "conv2",
    "blocks.3.channel_attention.0": "se.reduce",
    "blocks.3.channel_attention.2": "se.expand",
}
_BLOCK_KEY = re.compile(
    r"^net(\d+)\.(en1|en2|de1|de2|middle)\.(\d+)\."
    r"(blocks\.0|blocks\.2|blocks\.3\.channel_attention\.0|blocks\.3\.channel_attention\.2)\.(weight|bias)$"
)
_CONV_KEY = re.compile(r"^net(\d+)\.(down1|down2|up1|up2)\.(weight|bias)$")
_END_KEY = re.compile(r"^(from_rgb|to_rgb(\d+))\.(weight|bias)$")


def _strip(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v for k, v in state.items()}


def is_official(state: Mapping[str, object]) -> bool:
    """True for a state dict in the authors' naming (``from_rgb.weight``, ``net0.en1...``)."""
    keys = {k.removeprefix("module.") for k in state}
    return (
        "from_rgb.weight" in keys
        and "to_rgb3.weight" in keys
        and any(k.startswith("net0.en1.") for k in keys)
    )


def rename(key: str) -> str | None:
    """Our name of one of the authors' keys (None when it has no counterpart)."""
    m = _BLOCK_KEY.match(key)
    if m:
        k, group, i, part, kind = m.groups()
        where = "middle.blocks" if group == "middle" else _GROUP[group]
        return f"unets.{k}.{where}.{i}.{_PART[part]}.{kind}"
    m = _CONV_KEY.match(key)
    if m:
        k, conv, kind = m.groups()
        return f"unets.{k}.{_CONV[conv]}.{kind}"
    m = _END_KEY.match(key)
    if m:
        head, k, kind = m.groups()
        return f"head.{kind}" if head == "from_rgb" else f"tails.{k}.{kind}"
    return None


def config_of(state: Mapping[str, torch.Tensor], source: str = "<state dict>") -> GeneratorConfig:
    """The generator configuration a state dict in the authors' naming was saved from."""
    sd = _strip(state)
    w = sd.get("from_rgb.weight")
    if not isinstance(w, torch.Tensor) or w.dim() != 4 or tuple(w.shape[1:]) != (3, 1, 1):
        raise WeightsIntegrityError(
            f"{source}: no from_rgb.weight of shape (C, 3, 1, 1)",
            "pass the authors' netG_last.pth (a plain generator state dict)",
        )
    width = int(w.shape[0])
    counts: dict[tuple[int, str], set[int]] = {}
    for key in sd:
        m = _BLOCK_KEY.match(key)
        if m:
            counts.setdefault((int(m.group(1)), m.group(2)), set()).add(int(m.group(3)))
    middle = [len(counts.get((k, "middle"), ())) for k in range(N_STAGES)]
    level = len(counts.get((0, "en1"), ()))
    se = sd.get("net0.en1.0.blocks.3.channel_attention.0.weight")
    if min(middle) == 0 or level == 0 or not isinstance(se, torch.Tensor) or se.dim() != 4:
        raise WeightsIntegrityError(
            f"{source}: not the authors' MSPL-GAN generator layout (middle blocks per stage "
            f"{middle}, {level} blocks in net0.en1, channel attention "
            f"{'present' if se is not None else 'missing'})",
            "pass the authors' netG_last.pth or a faceblur-bench mspl-gan checkpoint",
        )
    return GeneratorConfig(
        width=width,
        middle_blocks=tuple(middle),
        level_blocks=level,
        se_reduction=max(1, width // int(se.shape[0])),
    )


def convert(
    state: Mapping[str, torch.Tensor],
    target: Mapping[str, torch.Tensor],
    source: str = "<state dict>",
) -> dict[str, torch.Tensor]:
    """The authors' generator state dict renamed to ours; checked against ``target`` (our model's
    own state dict: every key present once, same shapes)."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for k, v in _strip(state).items():
        ours = rename(k)
        if ours is None or ours not in target:
            unknown.append(k)
            continue
        if tuple(v.shape) != tuple(target[ours].shape):
            raise WeightsIntegrityError(
                f"{source}: {k} has shape {tuple(v.shape)}, the generator's {ours} has "
                f"{tuple(target[ours].shape)}",
                "this file is not an MSPL-GAN generator of the configuration "
                "its from_rgb / middle keys give",
            )
        out[ours] = v
    missing = sorted(set(target) - set(out))
    if unknown or missing:
        raise WeightsIntegrityError(
            f"{source}: not the authors' MSPL-GAN generator layout ("
            + (
                f"unexpected keys {unknown[:4]}{' …' if len(unknown) > 4 else ''}"
                if unknown
                else ""
            )
            + ("; " if unknown and missing else "")
            + (f"missing {missing[:4]}{' …' if len(missing) > 4 else ''}" if missing else "")
            + ")",
            "pass the authors' netG_last.pth or a faceblur-bench mspl-gan checkpoint",
        )
    return out
