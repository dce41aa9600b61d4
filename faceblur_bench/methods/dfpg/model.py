"""DFPGnet generator (Jung, Lee & Heo, WACV 2022; seed 002 §3.1–3.3).

Three parts (seed 002 Fig. 2):

- encoder of the deblurring stream ``M_E``: head conv, then per level a residual group and a
  4x4 stride-2 convolution down to the next level (widths ``C0, C1, C2``), giving
  ``E_0`` (head features, global skip), ``E_1..E_3`` (per-level features, input of the
  prior stream) and ``E_4`` (output of the middle group, input of the decoder);
- prior-estimation stream ``P``: per level a *self* spatial feature transform (SSFT,
  ``x * (scale(x) + 1) + shift(x)``, eq. 1) followed by a residual group; its outputs
  ``P̂_1..P̂_3`` are trained towards VGGFace relu1_2 / relu2_2 / relu3_3 (64 / 128 / 256
  channels at full, 1/2 and 1/4 resolution);
- decoder ``M_D``: per level an SFT module fed by the estimated prior (``x * (scale(p) + 1) +
  shift(p)``, eq. 2), a residual group and a 4x4 stride-2 transposed convolution; the head
  features are added back (global residual), then a 1x1 convolution and ``tanh``.

Residual block: conv3x3, LeakyReLU(0.2), conv3x3, squeeze-excitation (reduction 16), identity
skip; residual group: ``k`` blocks plus a skip over the group. With the paper widths
``(64, 128, 256)``, 5 blocks per group and 10 per prior group the generator has 44,661,379
parameters (paper: 44.7 M).

Input and output are ``(N, 3, H, W)`` in [-1, 1]; ``H`` and ``W`` must be multiples of 4.

Ablation switches (seed 002 Table 4): ``prior_stream=False`` removes ``P`` and the SFT
modules (B1/B2); ``feature_transform=False`` keeps ``P`` but drops the SSFT modules and
replaces each SFT by adding the prior to the decoder features (B3) — the paper does not say
how the prior enters the decoder without FT; addition is this project's choice.

When a width differs from the VGGFace channel count of its level (reduced-width test and
benchmark configs), a 1x1 convolution maps the prior stream to the VGGFace channel count so
the prior losses stay defined; the paper configuration has no such layer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

#: channels of VGGFace relu1_2, relu2_2, relu3_3 (the prior targets)
VGG_PRIOR_CHANNELS: tuple[int, int, int] = (64, 128, 256)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of the DFPGnet generator (plain values so it can live in a checkpoint)."""

    widths: tuple[int, int, int] = (64, 128, 256)
    base_blocks: int = 5
    prior_blocks: int = 10
    se_reduction: int = 16
    prior_stream: bool = True
    feature_transform: bool = True
    prior_channels: tuple[int, int, int] = field(default=VGG_PRIOR_CHANNELS)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["prior_channels"] = list(self.prior_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown generator config keys {unknown}; known: {sorted(known)}")
        kw = dict(d)
        for k in ("widths", "prior_channels"):
            if k in kw:
                kw[k] = tuple(int(v) for v in kw[k])
                if len(kw[k]) != 3:
                    raise ValueError(f"generator config {k!r} needs 3 values, got {kw[k]}")
        return cls(**kw)


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool, 1x1 reduce, ReLU, 1x1 expand, sigmoid, rescale."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in (0, 1), shape ``(N, C, 1, 1)``."""
        return torch.sigmoid(self.expand(torch.relu(self.reduce(self.pool(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class ResBlock(nn.Module):
    def __init__(self, channels: int, se_reduction: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.se = SqueezeExcitation(channels, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se(self.conv2(self.act(self.conv1(x))))


class ResGroup(nn.Module):
    def __init__(self, channels: int, n_blocks: int, se_reduction: int = 16):
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(channels, se_reduction) for _ in range(n_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x)


def _affine_branch(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(c_out, c_out, 3, 1, 1))


class SelfFeatureTransform(nn.Module):
    """SSFT (seed 002 eq. 1): scale and shift predicted from the input itself."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = _affine_branch(channels, channels)
        self.shift = _affine_branch(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.scale(x) + 1.0) + self.shift(x)


class SpatialFeatureTransform(nn.Module):
    """SFT (seed 002 eq. 2): scale and shift of ``x`` predicted from the prior ``p``."""

    def __init__(self, channels: int, prior_channels: int):
        super().__init__()
        self.scale = _affine_branch(prior_channels, channels)
        self.shift = _affine_branch(prior_channels, channels)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return x * (self.scale(prior) + 1.0) + self.shift(prior)


class PriorAdd(nn.Module):
    """Without feature transforms (B3): add the prior (mapped to the width when needed)."""

    def __init__(self, channels: int, prior_channels: int):
        super().__init__()
        self.proj = nn.Identity() if channels == prior_channels else nn.Conv2d(prior_channels, channels, 1)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return x + self.proj(prior)


class PriorBranch(nn.Module):
    """One sub-network ``P_i`` of the prior stream: SSFT (optional) + residual group (+ 1x1 head)."""

    def __init__(self, channels: int, prior_channels: int, n_blocks: int, se_reduction: int,
                 feature_transform: bool):
        super().__init__()
        self.ssft = SelfFeatureTransform(channels) if feature_transform else nn.Identity()
        self.group = ResGroup(channels, n_blocks, se_reduction)
        self.head = nn.Identity() if channels == prior_channels else nn.Conv2d(channels, prior_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.group(self.ssft(x)))


class DFPGGenerator(nn.Module):
    """DFPGnet generator; ``forward(x) -> (image, priors)``.

    ``x``: ``(N, 3, H, W)`` in [-1, 1], H and W multiples of 4. ``image``: same shape, in
    (-1, 1). ``priors``: tuple of the three estimated VGGFace features ``(N, 64, H, W)``,
    ``(N, 128, H/2, W/2)``, ``(N, 256, H/4, W/4)`` (channel counts from
    ``config.prior_channels``), or ``()`` when the prior stream is disabled.
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        cfg = config or GeneratorConfig()
        self.config = cfg
        c0, c1, c2 = cfg.widths
        p0, p1, p2 = cfg.prior_channels
        r, nb, npb = cfg.se_reduction, cfg.base_blocks, cfg.prior_blocks
        self.head = nn.Conv2d(3, c0, 3, 1, 1)
        self.enc1 = ResGroup(c0, nb, r)
        self.down1 = nn.Conv2d(c0, c1, 4, 2, 1)
        self.enc2 = ResGroup(c1, nb, r)
        self.down2 = nn.Conv2d(c1, c2, 4, 2, 1)
        self.enc3 = ResGroup(c2, nb, r)
        self.middle = ResGroup(c2, nb, r)
        if cfg.prior_stream:
            ft = cfg.feature_transform
            self.prior1 = PriorBranch(c0, p0, npb, r, ft)
            self.prior2 = PriorBranch(c1, p1, npb, r, ft)
            self.prior3 = PriorBranch(c2, p2, npb, r, ft)
            fuse = SpatialFeatureTransform if ft else PriorAdd
            self.fuse3 = fuse(c2, p2)
            self.fuse2 = fuse(c1, p1)
            self.fuse1 = fuse(c0, p0)
        self.dec3 = ResGroup(c2, nb, r)
        self.up2 = nn.ConvTranspose2d(c2, c1, 4, 2, 1)
        self.dec2 = ResGroup(c1, nb, r)
        self.up1 = nn.ConvTranspose2d(c1, c0, 4, 2, 1)
        self.dec1 = ResGroup(c0, nb, r)
        self.tail = nn.Conv2d(c0, 3, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(
                f"DFPGGenerator expects (N, 3, H, W) with H, W multiples of 4, got {tuple(x.shape)}"
            )
        e0 = self.head(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(self.down1(e1))
        e3 = self.enc3(self.down2(e2))
        d = self.middle(e3)
        priors: tuple[torch.Tensor, ...] = ()
        if self.config.prior_stream:
            p1, p2, p3 = self.prior1(e1), self.prior2(e2), self.prior3(e3)
            priors = (p1, p2, p3)
            d = self.fuse3(d, p3)
        d = self.up2(self.dec3(d))
        if priors:
            d = self.fuse2(d, priors[1])
        d = self.up1(self.dec2(d))
        if priors:
            d = self.fuse1(d, priors[0])
        d = self.dec1(d) + e0
        return torch.tanh(self.tail(d)), priors


_COUNT_CACHE: dict[str, int] = {}


def count_parameters(config: GeneratorConfig | None = None) -> int:
    """Learnable parameters of the generator for ``config``, built once on the meta device."""
    cfg = config or GeneratorConfig()
    key = json.dumps(cfg.to_dict(), sort_keys=True)
    if key not in _COUNT_CACHE:
        with torch.device("meta"):
            net = DFPGGenerator(cfg)
        _COUNT_CACHE[key] = sum(p.numel() for p in net.parameters())
    return _COUNT_CACHE[key]
