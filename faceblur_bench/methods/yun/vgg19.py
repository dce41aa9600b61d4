"""Frozen VGG-19 feature taps for Yun et al.'s perceptual loss (seed 001 eq. 5).

The network is ``torchvision.models.vgg19().features`` (ImageNet weights,
``vgg19-dcbb9e9d.pth``), found through the weights registry
(``faceblur_bench.weights.resolve("vgg19")``; it cannot be downloaded here, so the file must
be present). Only ``features.*`` tensors up to the deepest requested layer are read.

Layer names: ``relu1_1`` … ``relu5_4`` and ``pool1`` … ``pool5`` (torchvision indices, see
:data:`LAYER_INDEX`). The paper uses pool1–pool5; the notebooks use the pix2pixHD slices ending
at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.

Input convention (the notebooks'): images in [-1, 1] go in unchanged — no ImageNet mean/std.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ...errors import WeightsMissingError

#: torchvision VGG-19 configuration "E" (channels, "M" = max-pool)
CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                              512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _layer_names() -> dict[str, int]:
    names: dict[str, int] = {}
    block, conv, i = 1, 1, 0
    for v in CFG:
        if v == "M":
            names[f"pool{block}"] = i
            block, conv, i = block + 1, 1, i + 1
        else:
            names[f"conv{block}_{conv}"] = i
            names[f"relu{block}_{conv}"] = i + 1
            conv, i = conv + 1, i + 2
    return names


#: index in ``vgg19.features`` of each named layer output
LAYER_INDEX: dict[str, int] = _layer_names()


def vgg19_features() -> nn.Sequential:
    """The 37 modules of ``torchvision.models.vgg19().features`` (same indices)."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """``forward(x (N,3,H,W) in [-1,1]) -> tuple`` of the ``layers`` outputs, in that order.

    Parameters never require grad; gradients flow to the input. Always in eval mode.
    """

    def __init__(self, layers: Sequence[str]):
        super().__init__()
        bad = [n for n in layers if n not in LAYER_INDEX]
        if bad:
            import difflib

            from ...errors import UnknownNameError

            raise UnknownNameError("VGG-19 layer", bad[0], sorted(LAYER_INDEX),
                                   difflib.get_close_matches(bad[0], sorted(LAYER_INDEX), n=3))
        self.layers = tuple(layers)
        self.taps = tuple(LAYER_INDEX[n] for n in self.layers)
        self.features = vgg19_features()[: max(self.taps) + 1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:  # frozen: always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats: dict[int, torch.Tensor] = {}
        h = x
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                feats[i] = h
        return tuple(feats[t] for t in self.taps)

    def load_torchvision(self, path: str | Path) -> VGG19Features:
        """Load ``features.*`` from a torchvision VGG-19 state dict file (weights_only)."""
        path = Path(path)
        hint = "use torchvision's vgg19-dcbb9e9d.pth (models.vgg19(weights='IMAGENET1K_V1'))"
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            raise WeightsMissingError(f"{path}: cannot read a VGG-19 state dict ({type(exc).__name__})",
                                      hint) from None
        sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise WeightsMissingError(f"{path}: not a VGG-19 state dict", hint)
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
                f"{path}: not a torchvision VGG-19 (missing {missing[:3]}, wrong shape {wrong[:3]})", hint)
        self.features.load_state_dict(new)
        return self


def load_vgg19(layers: Sequence[str], overrides: dict[str, str] | None = None,
               device: torch.device | str = "cpu") -> VGG19Features:
    """:class:`VGG19Features` with ``vgg19-dcbb9e9d.pth`` found through the weights registry.

    Raises :class:`~faceblur_bench.errors.WeightsMissingError` naming where it looked.
    """
    from ... import weights

    path = weights.resolve("vgg19", overrides)
    return VGG19Features(layers).load_torchvision(path).to(device)


def save_random_vgg19(path: str | Path, seed: int = 0, upto: str = "relu5_1") -> Path:
    """Write a *format-faithful* ``vgg19-dcbb9e9d.pth`` with random values (tests, smoke runs).

    Same keys and shapes as torchvision's file (``features.*`` and ``classifier.*``). Layers
    up to ``upto`` get random He-scaled values; the rest are stored as broadcast constants so
    the file stays a few MB. Never use it for reported numbers.
    """
    from torchvision.models import vgg19

    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in vgg19().state_dict().items()}
    last = LAYER_INDEX[upto]
    sd: dict[str, torch.Tensor] = {}
    for k, shape in shapes.items():
        if k.startswith("features.") and int(k.split(".")[1]) <= last:
            if k.endswith("weight"):
                sd[k] = torch.randn(shape, generator=g) * (2.0 / (shape[1] * shape[2] * shape[3])) ** 0.5
            else:
                sd[k] = torch.randn(shape, generator=g) * 0.01
        else:
            sd[k] = torch.full((1,) * len(shape), 0.001).expand(shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path
