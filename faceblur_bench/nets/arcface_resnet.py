"""18-layer ResNetArcFace as in GFPGAN's ``arcface_resnet18.pth`` (used by the d_ARC protocol).

Layout (parameter names match the published file after stripping ``module.``): stem
conv3x3(1→64)+BN+PReLU+maxpool2, four stages of :class:`IRBlock` ``[2, 2, 2, 2]`` with widths
64/128/256/512 (stride 2 from stage 2 on), no squeeze-excitation, then BN, dropout,
``fc5: 512·8·8 → 512`` and ``bn5``. Input ``(N, 1, 128, 128)`` gray; output raw ``(N, 512)``
embeddings (not normalised). Each IRBlock applies its single PReLU twice (after conv1 and after
the residual sum), exactly as the published network does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .loading import load_exact, read_state_dict

INPUT_SIZE = 128


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class IRBlock(nn.Module):
    """BN → conv3x3 → BN → PReLU → conv3x3(stride) → BN, plus (projected) identity, PReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3(cin, cin)
        self.bn1 = nn.BatchNorm2d(cin)
        self.prelu = nn.PReLU()
        self.conv2 = _conv3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return self.prelu(y + skip)


class ResNetArcFace18(nn.Module):
    """GFPGAN's ResNetArcFace with IRBlock ``[2,2,2,2]`` and ``use_se=False``."""

    def __init__(self, layers: tuple[int, int, int, int] = (2, 2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        widths = (64, 128, 256, 512)
        cin = 64
        for i, (w, n) in enumerate(zip(widths, layers)):
            blocks = [IRBlock(cin, w, 1 if i == 0 else 2)] + [IRBlock(w, w) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = w
        self.bn4 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout()
        self.fc5 = nn.Linear(512 * 8 * 8, 512)
        self.bn5 = nn.BatchNorm1d(512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 128, 128)`` → ``(N, 512)``."""
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn4(x))
        return self.bn5(self.fc5(torch.flatten(x, 1)))


def load_arcface_resnet18(path: str | Path, device: torch.device | str = "cpu") -> ResNetArcFace18:
    """ResNetArcFace-18 from ``arcface_resnet18.pth`` (``module.`` prefix stripped), eval, no grad."""
    with torch.device("meta"):
        skeleton = ResNetArcFace18()
    sd = read_state_dict(path, strip_prefix="module.", expected=skeleton, what="ResNetArcFace-18")
    return load_exact(skeleton, sd, path, "ResNetArcFace-18").to(device)
