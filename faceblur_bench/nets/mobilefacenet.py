"""MobileFaceNet with the parameter names of TreB1eN/InsightFace_Pytorch ``model_mobilefacenet.pth``.

Input ``(N, 3, 112, 112)`` RGB normalised as ``(x/255 − 0.5)/0.5``; output ``(N, 512)``
L2-normalised embeddings. Stages (channels, stride): conv 3×3 64/2, depthwise 64, bottleneck
64 (expansion 128)/2, 4 × residual 64 (128), bottleneck 128 (256)/2, 6 × residual 128 (256),
bottleneck 128 (512)/2, 2 × residual 128 (256), 1×1 conv 512, 7×7 depthwise linear 512,
linear 512 (no bias), BatchNorm1d.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .loading import load_exact, read_state_dict

INPUT_SIZE = 112


class ConvBlock(nn.Module):
    """conv (no bias) → BN → per-channel PReLU (keys ``conv``, ``bn``, ``prelu``)."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, p: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class LinearBlock(nn.Module):
    """conv (no bias) → BN, no activation (keys ``conv``, ``bn``)."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, p: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class DepthWise(nn.Module):
    """Inverted bottleneck: 1×1 expand to ``mid`` → 3×3 depthwise (stride) → 1×1 linear project."""

    def __init__(self, cin: int, cout: int, mid: int, stride: int, residual: bool = False):
        super().__init__()
        self.conv = ConvBlock(cin, mid)
        self.conv_dw = ConvBlock(mid, mid, 3, stride, 1, groups=mid)
        self.project = LinearBlock(mid, cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class Residual(nn.Module):
    """``n`` residual DepthWise blocks at constant width (keys ``model.<i>``)."""

    def __init__(self, c: int, n: int, mid: int):
        super().__init__()
        self.model = nn.Sequential(*[DepthWise(c, c, mid, 1, residual=True) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MobileFaceNet(nn.Module):
    def __init__(self, embedding_size: int = 512):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBlock(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWise(64, 64, 128, 2)
        self.conv_3 = Residual(64, 4, 128)
        self.conv_34 = DepthWise(64, 128, 256, 2)
        self.conv_4 = Residual(128, 6, 256)
        self.conv_45 = DepthWise(128, 128, 512, 2)
        self.conv_5 = Residual(128, 2, 256)
        self.conv_6_sep = ConvBlock(128, 512)
        self.conv_6_dw = LinearBlock(512, 512, 7, 1, 0, groups=512)
        self.linear = nn.Linear(512, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 112, 112)`` normalised RGB → ``(N, 512)`` unit-norm embeddings."""
        for name in ("conv1", "conv2_dw", "conv_23", "conv_3", "conv_34", "conv_4", "conv_45",
                     "conv_5", "conv_6_sep", "conv_6_dw"):
            x = getattr(self, name)(x)
        x = self.bn(self.linear(torch.flatten(x, 1)))
        return F.normalize(x, p=2, dim=1)


def load_mobilefacenet(path: str | Path, device: torch.device | str = "cpu") -> MobileFaceNet:
    """MobileFaceNet from ``model_mobilefacenet.pth`` (eval, no grad) on ``device``."""
    with torch.device("meta"):
        skeleton = MobileFaceNet(512)
    sd = read_state_dict(path, expected=skeleton, what="MobileFaceNet")
    return load_exact(skeleton, sd, path, "MobileFaceNet").to(device)
