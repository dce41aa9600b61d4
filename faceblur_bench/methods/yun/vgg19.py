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

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ...nets.vgg_taps import VGG19_CFG, VGGTaps, layer_index, vgg_features

#: index in ``vgg19.features`` of each named layer output
LAYER_INDEX: dict[str, int] = layer_index(VGG19_CFG)


def vgg19_features() -> nn.Sequential:
    """The 37 modules of ``torchvision.models.vgg19().features`` (same indices)."""
    return vgg_features(VGG19_CFG)


class VGG19Features(VGGTaps):
    """``forward(x (N,3,H,W) in [-1,1]) -> tuple`` of the ``layers`` outputs, in that order.

    Parameters never require grad; gradients flow to the input. Always in eval mode.
    """

    def __init__(self, layers: Sequence[str]):
        super().__init__(VGG19_CFG, layers, "VGG-19")

    def load_torchvision(self, path: str | Path) -> VGG19Features:
        """Load ``features.*`` from a torchvision VGG-19 state dict file (weights_only)."""
        self.load_features(path, "VGG-19",
                           "use torchvision's vgg19-dcbb9e9d.pth (models.vgg19(weights='IMAGENET1K_V1'))")
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
