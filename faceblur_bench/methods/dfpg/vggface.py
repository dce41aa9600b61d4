"""VGGFace (VGG-16, 2622 identities) feature extractor for the prior / feature losses.

The network is the ``features`` part of ``torchvision.models.vgg16`` up to ``relu3_3``
(indices 0–15), loaded from ``VGGFace16.pth`` (the MSPL-GAN release: torchvision layout with
``num_classes=2622``, state dict under ``['state_dict']``) found through the weights registry
(``faceblur_bench.weights.resolve("vggface16")``). Only the ``features.0`` … ``features.14``
tensors are read; the classifier is ignored.

Layers (seed 000 eq. 14, seed 002 §4.1): ``relu1_2`` (64 ch, full resolution), ``relu2_2``
(128 ch, 1/2), ``relu3_3`` (256 ch, 1/4). The authors' released code takes the conv outputs
before the ReLU (``conv1_2`` …); both are selectable by name.

Input convention: images in [-1, 1] go into the network unchanged (no mean/std), as the
authors' training code does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ...errors import WeightsMissingError
from ...nets.loading import read_weights_only

#: index in ``vgg16.features`` of each named layer output (torchvision layout)
LAYER_INDEX: dict[str, int] = {
    "conv1_1": 0, "relu1_1": 1, "conv1_2": 2, "relu1_2": 3,
    "conv2_1": 5, "relu2_1": 6, "conv2_2": 7, "relu2_2": 8,
    "conv3_1": 10, "relu3_1": 11, "conv3_2": 12, "relu3_2": 13, "conv3_3": 14, "relu3_3": 15,
}
PAPER_LAYERS: tuple[str, str, str] = ("relu1_2", "relu2_2", "relu3_3")
#: torchvision VGG-16 configuration "D" up to pool3 (channels, "M" = max-pool)
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256)


def _vgg_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers)


class VGGFaceFeatures(nn.Module):
    """Frozen VGGFace feature taps; ``forward(x) -> tuple`` of the ``layers`` outputs.

    ``x``: ``(N, 3, H, W)`` in [-1, 1] (H, W multiples of 4). Outputs follow ``layers`` order,
    e.g. ``(N,64,H,W), (N,128,H/2,W/2), (N,256,H/4,W/4)`` for :data:`PAPER_LAYERS`.
    Parameters never require grad; gradients flow to the input.
    """

    def __init__(self, layers: Sequence[str] = PAPER_LAYERS):
        super().__init__()
        bad = [name for name in layers if name not in LAYER_INDEX]
        if bad:
            raise ValueError(f"unknown VGG layer(s) {bad}; known: {sorted(LAYER_INDEX)}")
        self.layers = tuple(layers)
        self.taps = tuple(LAYER_INDEX[name] for name in self.layers)
        self.features = _vgg_features()[: max(self.taps) + 1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFaceFeatures:  # always frozen, always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats: dict[int, torch.Tensor] = {}
        h = x
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                feats[i] = h
        return tuple(feats[t] for t in self.taps)

    def load_vggface16(self, path: str | Path) -> VGGFaceFeatures:
        """Load the conv weights from ``VGGFace16.pth`` (``{'state_dict': ...}`` or a bare state dict)."""
        path = Path(path)
        obj = read_weights_only(path)
        sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise WeightsMissingError(
                f"{path}: not a VGGFace16 checkpoint (expected a dict with 'state_dict')",
                "use VGGFace16.pth from the MSPL-GAN release (VGGFace16.zip)",
            )
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
        own = self.features.state_dict()
        missing, wrong = [], []
        new = {}
        for k, v in own.items():
            src = sd.get(f"features.{k}")
            if src is None:
                missing.append(f"features.{k}")
            elif tuple(src.shape) != tuple(v.shape):
                wrong.append(f"features.{k} {tuple(src.shape)} (expected {tuple(v.shape)})")
            else:
                new[k] = src.to(torch.float32).clone()
        if missing or wrong:
            raise WeightsMissingError(
                f"{path}: not a torchvision-layout VGG-16 (missing {missing[:4]}, wrong shape {wrong[:4]})",
                "use VGGFace16.pth from the MSPL-GAN release (vgg16 layout, num_classes=2622)",
            )
        self.features.load_state_dict(new)
        return self


def load_vggface(layers: Sequence[str] = PAPER_LAYERS, overrides: dict[str, str] | None = None,
                 device: torch.device | str = "cpu") -> VGGFaceFeatures:
    """Build :class:`VGGFaceFeatures` and load ``VGGFace16.pth`` via the weights registry.

    Raises :class:`~faceblur_bench.errors.WeightsMissingError` naming the file and where it was
    looked for when it is absent.
    """
    from ... import weights

    path = weights.resolve("vggface16", overrides)
    return VGGFaceFeatures(layers).load_vggface16(path).to(device)


def save_random_vggface16(path: str | Path, seed: int = 0) -> Path:
    """Write a *format-faithful* ``VGGFace16.pth`` with random values (for tests and smoke runs).

    Same keys and shapes as the release (torchvision ``vgg16(num_classes=2622)`` under
    ``['state_dict']``). The layers this module reads (through conv3_3) get random He-scaled
    values; the rest (conv4/conv5, classifier) are stored as broadcast constants so the file
    stays a few MB. Never use it for reported numbers.
    """
    from torchvision.models import vgg16

    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in vgg16(num_classes=2622).state_dict().items()}
    sd: dict[str, torch.Tensor] = {}
    for k, shape in shapes.items():
        idx = int(k.split(".")[1])
        if k.startswith("features.") and idx <= LAYER_INDEX["conv3_3"]:
            if k.endswith("weight"):
                fan_in = shape[1] * shape[2] * shape[3]
                sd[k] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
            else:
                sd[k] = torch.randn(shape, generator=g) * 0.01
        else:
            sd[k] = torch.full((1,) * len(shape), 0.001).expand(shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd}, path)
    return path
