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

from ...nets.vgg_taps import VGG16_CFG, VGGTaps, layer_index

#: index in ``vgg16.features`` of each named layer output (torchvision layout)
LAYER_INDEX: dict[str, int] = layer_index(VGG16_CFG)
PAPER_LAYERS: tuple[str, str, str] = ("relu1_2", "relu2_2", "relu3_3")


class VGGFaceFeatures(VGGTaps):
    """Frozen VGGFace feature taps; ``forward(x) -> tuple`` of the ``layers`` outputs.

    ``x``: ``(N, 3, H, W)`` in [-1, 1] (H, W multiples of 4). Outputs follow ``layers`` order,
    e.g. ``(N,64,H,W), (N,128,H/2,W/2), (N,256,H/4,W/4)`` for :data:`PAPER_LAYERS`.
    Parameters never require grad; gradients flow to the input.
    """

    def __init__(self, layers: Sequence[str] = PAPER_LAYERS):
        super().__init__(VGG16_CFG, layers, "VGG-16 layer")

    def load_vggface16(self, path: str | Path) -> VGGFaceFeatures:
        """Load the conv weights from ``VGGFace16.pth`` (``{'state_dict': ...}`` or a bare state dict)."""
        self.load_features(path, "VGG-16 (VGGFace16)",
                           "use VGGFace16.pth from the MSPL-GAN release (vgg16 layout, num_classes=2622)")
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
