"""VGGFace16: VGG-16 face classifier in torchvision's ``vgg16`` layout (2622 identities).

``VGGFace16.pth`` (Lu et al., distributed with MSPL-GAN) is ``{'state_dict': <torchvision vgg16
keys, classifier.6 of 2622 outputs>}``. The d_VGG protocol uses ``features[0..30]`` inclusive
(conv1_1 … pool5): a ``(N, 512, H/32, W/32)`` map for an ``(N, 3, H, W)`` input in raw 0–255 RGB
with no mean subtraction.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import vgg16

from .loading import load_exact, read_state_dict

NUM_CLASSES = 2622
#: index of pool5 in ``vgg16().features`` (the last layer d_VGG keeps)
POOL5 = 30


def vggface16() -> nn.Module:
    """Untrained VGGFace16 (torchvision ``vgg16(num_classes=2622)``)."""
    return vgg16(weights=None, num_classes=NUM_CLASSES)


def load_vggface16_features(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """``features[0..30]`` of VGGFace16 loaded from ``path`` (eval, no grad) on ``device``.

    Input ``(N, 3, H, W)`` float RGB in 0–255; output ``(N, 512, H//32, W//32)`` (pool5).
    """
    with torch.device("meta"):
        skeleton = vggface16()
    sd = read_state_dict(path, wrapper_key="state_dict", expected=skeleton, what="VGGFace16")
    net = load_exact(skeleton, sd, path, "VGGFace16")
    return net.features[: POOL5 + 1].to(device).eval()
