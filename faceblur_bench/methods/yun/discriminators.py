"""Yun et al. discriminators D_g (global, conditioned on the ×8 output) and D_l (local, face-masked).

LSGAN discriminators: no sigmoid, raw scores compared with 0/1 by squared error (seed 001 §III-C).

- ``layers=5`` — the released notebooks' pix2pix PatchGAN-70 (``main.{0,2,3,5,6,8,9,11}``):
  Conv4 s2 in→d, LReLU; Conv4 s2 d→2d, norm, LReLU; Conv4 s2 2d→4d, norm, LReLU; Conv4 **s1**
  4d→8d, norm, LReLU; Conv4 s1 8d→1. A 256×256 input gives a ``(N, 1, 30, 30)`` score map.
- ``layers=7`` — the paper's "seven convolution layers" with a "one-dimensional output"
  (§III-C gives no more detail; this reading is the project's): six Conv4 s2 p1 layers
  (widths d, 2d, 4d, 8d, 8d, 8d; norm and LReLU 0.2 after all but the first conv's norm)
  take 256² to 4², then a Conv4 s1 p0 8d→1 gives one score per image, ``(N, 1, 1, 1)``.

D_g takes ``cat(upx, HR)`` (6 channels): the conditioning image is the ×8 CNN output I_LRf,
not the 32² input (eq. 2, and the notebooks). D_l takes ``HR ⊙ M_face`` (3 channels).
Inputs are in [-1, 1] (``upx`` is unbounded), 256×256.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from .networks import NORMS, norm_layer


@dataclass(frozen=True)
class YunDiscriminatorConfig:
    ndf: int = 64
    layers: int = 5
    norm: str = "batch"

    def __post_init__(self) -> None:
        if self.layers not in (5, 7):
            raise ValueError(f"discriminator layers must be 5 (notebooks) or 7 (paper), got {self.layers}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> YunDiscriminatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown Yun discriminator config keys {unknown}; known: {sorted(known)}")
        return cls(**d)


class PatchDiscriminator(nn.Module):
    """``forward(x (N, in_channels, 256, 256)) -> scores (N, 1, h, w)`` (30×30 or 1×1)."""

    def __init__(self, in_channels: int, config: YunDiscriminatorConfig | None = None):
        super().__init__()
        cfg = config or YunDiscriminatorConfig()
        self.config = cfg
        d, nm = cfg.ndf, cfg.norm
        if cfg.layers == 5:
            plan = [(in_channels, d, 2, 1), (d, 2 * d, 2, 1), (2 * d, 4 * d, 2, 1), (4 * d, 8 * d, 1, 1)]
            last = nn.Conv2d(8 * d, 1, 4, 1, 1)
        else:
            widths = [d, 2 * d, 4 * d, 8 * d, 8 * d, 8 * d]
            plan = [(in_channels if i == 0 else widths[i - 1], w, 2, 1) for i, w in enumerate(widths)]
            last = nn.Conv2d(8 * d, 1, 4, 1, 0)
        layers: list[nn.Module] = []
        for i, (c_in, c_out, stride, pad) in enumerate(plan):
            layers.append(nn.Conv2d(c_in, c_out, 4, stride, pad))
            if i > 0:
                layers.append(norm_layer(nm, c_out))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(last)
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def global_discriminator(config: YunDiscriminatorConfig | None = None) -> PatchDiscriminator:
    """D_g on ``cat(upx, HR)`` (6 channels)."""
    return PatchDiscriminator(6, config)


def local_discriminator(config: YunDiscriminatorConfig | None = None) -> PatchDiscriminator:
    """D_l on ``HR ⊙ M_face`` (3 channels)."""
    return PatchDiscriminator(3, config)
