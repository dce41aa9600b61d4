"""CFMD-GAN discriminator: spectral-normalised U-Net discriminator (Schönfeld et al. 2020) with the
auxiliary moment regressor Q (seed 003 §4.2.3, Fig. 3; METHODS.md §A.1).

Input: ``concat(image, blurred)`` of shape ``(N, 6, H, W)`` in [0, 1] (image first, as the
released training code; the paper writes D(b, s)). H and W must be multiples of
``2 ** (len(widths))`` (256 for the released depth: the encoder halves the size five times, the
encoder head once more).

Outputs (all probabilities, after a sigmoid):

- ``enc``: D_enc, the global real/fake decision ``(N, 1, H/64, W/64)`` (4×4 at 256², not a scalar);
- ``dec``: D_dec, the per-pixel real/fake decision ``(N, 1, H, W)``;
- ``q``:   Q, the per-pixel estimate û_2D of the moment control factor ``(N, 1, H, W)``.

All convolutions are bias-free, spectral-normalised and followed by LeakyReLU(0.2) except the
1-channel output convolutions. With the released widths (64, 128, 256, 512, 512, 512) the
network has 40,296,448 parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ...errors import UsageError


@dataclass(frozen=True)
class DiscriminatorConfig:
    """widths: channels of E0 (full resolution) and of each of the AvgPool+DoubleConv levels."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    in_channels: int = 6
    spectral: bool = True

    def __post_init__(self) -> None:
        if len(self.widths) < 2:
            raise UsageError(f"CFMD-GAN discriminator widths {self.widths}", "give at least two levels")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscriminatorConfig:
        known = {f.name for f in fields(cls)}
        if set(d) - known:
            raise UsageError(f"unknown CFMD-GAN discriminator option(s) {sorted(set(d) - known)}",
                             f"known: {', '.join(sorted(known))}")
        d = dict(d)
        if "widths" in d:
            d["widths"] = tuple(d["widths"])
        return cls(**d)


class _Act(nn.LeakyReLU):
    def __init__(self) -> None:
        super().__init__(0.2, inplace=True)


def _conv(cin: int, cout: int, k: int, stride: int = 1, sn: bool = True) -> nn.Module:
    c = nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if stride == 1 else 1, bias=False)
    return spectral_norm(c) if sn else c


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, sn: bool):
        super().__init__(_conv(cin, cout, 3, sn=sn), _Act(), _conv(cout, cout, 3, sn=sn), _Act())


class Sigmoid32(nn.Module):
    """Sigmoid in float32 (a bf16 sigmoid saturates at 1 too early for the log-losses)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x.float())


class _Head(nn.Sequential):
    """1×1 C->C + act, 1×1 C->1, sigmoid (D_dec and Q)."""

    def __init__(self, c: int, sn: bool):
        super().__init__(_conv(c, c, 1, sn=sn), _Act(), _conv(c, 1, 1, sn=sn), Sigmoid32())


class CFMDDiscriminator(nn.Module):
    """``forward(image, blurred) -> {"enc", "dec", "q"}`` (see the module docstring)."""

    def __init__(self, cfg: DiscriminatorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DiscriminatorConfig()
        w, sn = cfg.widths, cfg.spectral
        self.inc = DoubleConv(cfg.in_channels, w[0], sn)
        self.down = nn.ModuleList(DoubleConv(w[i], w[i + 1], sn) for i in range(len(w) - 1))
        self.enc_head = nn.Sequential(_conv(w[-1], w[-1], 4, 2, sn), _Act(), _conv(w[-1], 1, 1, sn=sn),
                                      Sigmoid32())
        self.bottleneck = DoubleConv(w[-1], w[-1], sn)
        ups = []
        c = w[-1]
        for skip in reversed(w[:-1]):
            ups.append(DoubleConv(c + skip, skip, sn))  # e.g. 1024->512, ..., 192->64
            c = skip
        self.up = nn.ModuleList(ups)
        self.pixel_cls = _Head(w[0], sn)
        self.label_predict = _Head(w[0], sn)

    @property
    def multiple(self) -> int:
        return 2 ** len(self.cfg.widths)

    def forward(self, image: torch.Tensor, blurred: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.cat([image, blurred.to(image.dtype)], 1)
        m = self.multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise UsageError(f"CFMD-GAN discriminator input {tuple(x.shape[-2:])}",
                             f"use crops whose sides are multiples of {m}")
        skips = [self.inc(x)]
        for blk in self.down:
            skips.append(blk(F.avg_pool2d(skips[-1], 2)))
        enc = self.enc_head(skips[-1])
        z = self.bottleneck(skips[-1])
        for blk, skip in zip(self.up, reversed(skips[:-1])):
            z = F.interpolate(z, scale_factor=2.0, mode="bilinear", align_corners=True)
            z = blk(torch.cat([z, skip], 1))
        return {"enc": enc, "dec": self.pixel_cls(z), "q": self.label_predict(z)}
