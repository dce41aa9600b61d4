"""The authors' released generator weights (``dolphin0104/CFMDGAN``) onto :class:`CFMDGenerator`.

``scripts/inference.py`` of the release loads a plain state dict (``model_best.pth``, strict) into
``CMD_MIMOUNet(use_CADC=True, use_CACA=True, num_res=8)``; ``train.py`` saves ``netG_*.pth`` the
same way. Our module names are the release's (METHODS.md §A.4), so no renaming is needed:

    mapping_net.shared.{0-7}.layer.0.{weight,bias}
    mapping_net.{enc,dec}_unshared.{0-2}.layer.0.{weight,bias}      (dec_unshared.0: deepest level)
    {Encoder,Decoder}.{0-2}.layers.{b}.conv1.main.0.{weight,bias}
    ....conv2.conv.weight  ....conv2.{offset_conv,modulator_conv}.{weight,bias}
    ....conv2.regular_conv.weight  ....ch_att.conv.weight  ....ch_att.conv_du.{0,2}.weight
    feat_extract.{0-5}.main.0.*  Convs.{0,1}.main.0.*  ConvsOut.{0,1}.main.0.*
    AFFs.{0,1}.conv.{0,1}.main.0.*  FAM{1,2}.merge.main.0.*  SCM{1,2}.main.{0-3}.main.0.*
    SCM{1,2}.conv.main.0.*

A ``module.`` prefix (DataParallel) is stripped; a ``{"state_dict": ...}`` / ``{"netG": ...}``
wrapper is opened. The configuration (width, blocks per level, the two ablation switches) is read
off the tensors, so the release's ablation models load too. Any key missing, left over or of
another shape is an error naming it.

Ablation layout (``use_CADC=False``, seed 003 Table 5): the authors build the 3×3 convolution that
replaces CADC as a ``BasicConv``, so its tensors are ``....conv2.main.0.{weight,bias}``; ours is a
bare ``nn.Conv2d`` (``....conv2.{weight,bias}``). Both layouts are accepted
(:func:`to_harness_keys`). Only the names are mapped: whether the authors' ``BasicConv`` there
adds its LeakyReLU cannot be read off a state dict, and the harness applies none (METHODS.md §A.1:
"use_CADC=False replaces CADC with a 3×3 conv"); the ablation forward is not checked against the
authors' code (the released configuration is).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ...errors import UsageError, WeightsIntegrityError
from .networks import CFMDGenerator, GeneratorConfig

_WRAPPERS = ("state_dict", "netG", "model", "generator", "params")
_HINT = ("pass the authors' CFMD-GAN generator weights (model_best.pth / netG_*.pth, a plain state "
         "dict of CMD_MIMOUNet) or a checkpoint written by `faceblur-bench train cfmd`")


#: the ``BasicConv`` wrapping of the ablation's plain conv2 (``use_CADC=False``) in the authors' code
_ABLATION_CONV2 = re.compile(r"^((?:Encoder|Decoder)\.\d+\.layers\.\d+\.conv2)\.main\.0\.(weight|bias)$")


def to_harness_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the authors' ablation names ``….conv2.main.0.{weight,bias}`` (their
    ``BasicConv`` in place of CADC) renamed to the harness's ``….conv2.{weight,bias}``; every other
    key (and the released CADC layout) is kept as it is."""
    return {_ABLATION_CONV2.sub(r"\1.\2", k): v for k, v in state.items()}


def _strip(state: Mapping[str, Any]) -> dict[str, Any]:
    return to_harness_keys({k.removeprefix("module."): v for k, v in state.items()})


def unwrap(obj: Any) -> dict[str, Any] | None:
    """The state dict inside ``obj`` when it is in the authors' naming, else None."""
    if isinstance(obj, Mapping):
        for key in _WRAPPERS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and is_official(inner):
                return _strip(inner)
        if is_official(obj):
            return _strip(obj)
    return None


def is_official(state: Mapping[str, Any]) -> bool:
    """True for a state dict in the release's naming (mapping net + ContAda encoder blocks)."""
    keys = set(_strip(state))
    return "mapping_net.shared.0.layer.0.weight" in keys and "feat_extract.0.main.0.weight" in keys \
        and any(k.startswith("Encoder.0.layers.0.") for k in keys)


def infer_config(state: Mapping[str, torch.Tensor], source: str = "<state dict>") -> GeneratorConfig:
    """Generator configuration of a released-layout state dict (width, blocks, CADC/CACA)."""
    try:
        base = int(state["feat_extract.0.main.0.weight"].shape[0])
        layers = {int(m.group(1)) for k in state if (m := re.match(r"Encoder\.0\.layers\.(\d+)\.", k))}
        n_map = len({int(m.group(1)) for k in state if (m := re.match(r"mapping_net\.shared\.(\d+)\.", k))})
    except (KeyError, AttributeError, IndexError) as exc:
        raise WeightsIntegrityError(f"{source}: not a CFMD-GAN generator state dict ({exc})", _HINT) from None
    if not layers or layers != set(range(max(layers) + 1)):
        raise WeightsIntegrityError(f"{source}: Encoder.0 blocks {sorted(layers)} are not 0..n-1", _HINT)
    cadc = "Encoder.0.layers.0.conv2.offset_conv.weight" in state
    caca = "Encoder.0.layers.0.ch_att.conv.weight" in state
    try:
        return GeneratorConfig(base_channels=base, num_res=len(layers), cadc=cadc, caca=caca,
                               mapping_layers=n_map, variant="released")
    except (UsageError, ValueError, TypeError) as exc:  # e.g. an odd width
        raise WeightsIntegrityError(f"{source}: unusable generator configuration ({exc})", _HINT) from None


def load_generator(obj: Any, source: str = "<state dict>") -> CFMDGenerator:
    """A :class:`CFMDGenerator` holding the released state dict ``obj`` (checked key by key)."""
    state = unwrap(obj)
    if state is None:
        raise WeightsIntegrityError(f"{source}: not in the authors' CFMD-GAN key layout", _HINT)
    cfg = infer_config(state, source)
    net = CFMDGenerator(cfg)
    target = net.state_dict()
    unexpected = sorted(set(state) - set(target))
    missing = sorted(set(target) - set(state))
    if unexpected or missing:
        raise WeightsIntegrityError(
            f"{source}: CFMD-GAN generator keys do not match ("
            + (f"unexpected {unexpected[:4]}{' …' if len(unexpected) > 4 else ''}" if unexpected else "")
            + ("; " if unexpected and missing else "")
            + (f"missing {missing[:4]}{' …' if len(missing) > 4 else ''}" if missing else "") + ")", _HINT)
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(target[k].shape):
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise WeightsIntegrityError(
                f"{source}: {k} has shape {shape}, the generator (base {cfg.base_channels}, "
                f"{cfg.num_res} blocks) expects {tuple(target[k].shape)}", _HINT)
    net.load_state_dict(state, strict=True)
    return net
