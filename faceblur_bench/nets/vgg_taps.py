"""Frozen VGG feature taps: torchvision's ``vgg*.features`` cut after the deepest requested layer,
returning the requested layers' outputs — the perceptual-loss networks of DFPGnet (VGGFace16 up
to relu3_3) and Yun et al. (ImageNet VGG-19).

Layers are named ``conv<b>_<k>`` / ``relu<b>_<k>`` / ``pool<b>`` with torchvision's module
indices (:func:`layer_index`); weights are read from a file in torchvision's key layout
(``features.<i>.weight``), bare or under ``'state_dict'``, with an optional ``module.`` prefix.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import UnknownNameError, WeightsMissingError
from .loading import read_weights_only

#: torchvision VGG configurations (channels; "M" = 2x2 max-pool)
VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                    512, 512, 512, "M", 512, 512, 512, "M")
VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                    512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def layer_index(cfg: Sequence[int | str]) -> dict[str, int]:
    """Index in ``features`` of each named layer output of the configuration ``cfg``."""
    names: dict[str, int] = {}
    block, conv, i = 1, 1, 0
    for v in cfg:
        if v == "M":
            names[f"pool{block}"] = i
            block, conv, i = block + 1, 1, i + 1
        else:
            names[f"conv{block}_{conv}"] = i
            names[f"relu{block}_{conv}"] = i + 1
            conv, i = conv + 1, i + 2
    return names


def vgg_features(cfg: Sequence[int | str]) -> nn.Sequential:
    """The modules of torchvision's ``features`` for ``cfg`` (same indices, untrained)."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers)


class VGGTaps(nn.Module):
    """``forward(x (N, 3, H, W)) -> tuple`` of the ``layers`` outputs, in that order.

    Parameters never require grad (gradients flow to the input); always in eval mode.
    ``family`` names the network in errors ("VGG-19 layer", …).
    """

    def __init__(self, cfg: Sequence[int | str], layers: Sequence[str], family: str):
        super().__init__()
        index = layer_index(cfg)
        bad = [n for n in layers if n not in index]
        if bad:
            raise UnknownNameError(f"{family} layer", bad[0], sorted(index),
                                   difflib.get_close_matches(bad[0], sorted(index), n=3))
        self.layers = tuple(layers)
        self.taps = tuple(index[n] for n in self.layers)
        self.features = vgg_features(cfg)[: max(self.taps) + 1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGTaps:  # frozen: always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats: dict[int, torch.Tensor] = {}
        h = x
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                feats[i] = h
        return tuple(feats[t] for t in self.taps)

    def load_features(self, path: str | Path, what: str, hint: str) -> VGGTaps:
        """Load the ``features.*`` tensors this module keeps from ``path`` (``weights_only``).

        Raises :class:`~faceblur_bench.errors.WeightsMissingError` naming ``what`` and ``hint``
        when the file cannot be read, holds no state dict, or lacks a key / has another shape."""
        path = Path(path)
        try:
            obj = read_weights_only(path)
        except Exception as exc:  # noqa: BLE001 — any unreadable file is "not the file we need"
            raise WeightsMissingError(f"{path}: cannot read a {what} state dict ({type(exc).__name__})",
                                      hint) from None
        sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise WeightsMissingError(f"{path}: not a {what} checkpoint (expected a state dict, "
                                      "bare or under 'state_dict')", hint)
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
        new, missing, wrong = {}, [], []
        for k, v in self.features.state_dict().items():
            src = sd.get(f"features.{k}")
            if src is None:
                missing.append(f"features.{k}")
            elif tuple(src.shape) != tuple(v.shape):
                wrong.append(f"features.{k} {tuple(src.shape)} (expected {tuple(v.shape)})")
            else:
                new[k] = src.to(torch.float32).clone()
        if missing or wrong:
            raise WeightsMissingError(
                f"{path}: not a torchvision {what} (missing {missing[:3]}, wrong shape {wrong[:3]})", hint)
        self.features.load_state_dict(new)
        return self
