"""Yun et al. (IEEE Access 2020) generator: ×8 CNN + shared encoder + two decoders (METHODS.md §B.1).

Module and parameter names follow the released notebooks' ``Generator`` (so their ``state_dict``
``.pkl`` files load by name, see :mod:`.checkpoint`):

- ``upscale8`` — the "five-layer CNN": Conv9×9 3→w, LReLU 0.2, three times [Conv3×3 w→4w,
  PixelShuffle(2), LReLU 0.2] (32→64→128→256), Conv3×3 w→3; all bias-free, no output
  activation. Its output ``upx`` is the 3-channel 256×256 feature image I_LRf.
- ``conv1`` … ``conv8`` — the shared pix2pix U-Net-256 encoder (Conv4×4 s2 p1 with bias;
  ``conv2``–``conv8`` are ``[LReLU 0.2, conv, norm]``), 128² down to 1².
- ``deconv4_0``, ``deconv3_0``, ``deconv2_0``, ``deconv1_0`` — the upper decoder from ``c4``
  (3 skips) predicting the blurred HR image Î_HRB; the output of ``deconv2_0`` is I_f.
- ``deconv8`` … ``deconv1`` — the lower (full pix2pix) decoder from ``c8`` predicting the sharp
  HR image Î_HR; I_f is added to the output of ``deconv2`` before the skip with ``c1`` and the
  last layer. Dropout 0.5 in ``deconv8``–``deconv6``.

Skips concatenate ``(encoder feature, decoder feature)`` in that order (the released layout).
``norm="batch"`` is the notebooks' ``batch_size > 1`` case (BatchNorm2d, affine, running
stats in the state dict); ``norm="instance"`` their ``batch_size == 1`` case
(InstanceNorm2d without affine or running stats; on the 1×1 ``c8`` it gives 0, see
:class:`InstanceNorm2d`).

``forward(x, noise=None)``: ``x`` ``(N, 3, 32, 32)`` in [-1, 1] (exactly 32², the encoder reaches
1×1) -> ``(upx (N,3,256,256) unbounded, blurred_hr (N,3,256,256) in [-1,1] (tanh),
sharp_hr (N,3,256,256) in [-1,1] (tanh))``.

``noise``: the w/N notebooks' variant (``FaceSRnDeblur_wN_*.ipynb``, METHODS.md §B.1), which
multiplies the input and every encoder and decoder activation by noise drawn from N(1, 0.1), in
eval mode too — a :class:`MultiplicativeNoise` applied at :data:`NOISE_AT`; None: no noise (the
plain notebooks' generator). The two tanh outputs and the ×8 CNN's inner layers get none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

NORMS = ("batch", "instance")
#: input side length the U-Net encoder needs (32 × 8 = 256 = 2**8)
INPUT_SIZE: int = 32
SCALE: int = 8
#: standard deviation of the w/N notebooks' multiplicative noise, drawn from N(1, WN_STD)
WN_STD: float = 0.1
#: where the w/N forward multiplies by that noise: the generator's input, then the output of
#: each of these layers (every encoder level and every decoder layer before the tanh outputs)
NOISE_AT: tuple[str, ...] = ("input", *(f"conv{i}" for i in range(1, 9)),
                             *(f"deconv{i}" for i in range(8, 1, -1)),
                             "deconv4_0", "deconv3_0", "deconv2_0")


@dataclass(frozen=True)
class YunGeneratorConfig:
    """``ngf``: encoder/decoder base width (64 in the release); ``upscale_width``: ×8 CNN width
    (64); ``norm``: ``"batch"`` | ``"instance"``; ``dropout``: in the three innermost decoder
    layers (0.5)."""

    ngf: int = 64
    upscale_width: int = 64
    norm: str = "batch"
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.ngf < 1 or self.upscale_width < 1:
            raise ValueError(f"widths must be positive, got ngf={self.ngf}, "
                             f"upscale_width={self.upscale_width}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> YunGeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown Yun generator config keys {unknown}; known: {sorted(known)}")
        return cls(**d)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (no affine, no running stats) that also accepts 1×1 maps.

    On a single spatial element ``x - mean(x)`` is exactly 0, so the normalised map is 0; the
    torch versions the notebooks ran on returned that, current torch refuses the input. The
    innermost encoder level ``c8`` is 1×1, so the notebooks' ``batch_size == 1`` generator
    needs this to run at all.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] * x.shape[-2] == 1:
            # x - mean(x): exactly 0, but kept in the graph so that the layers before it still
            # receive (zero) gradients — DistributedDataParallel requires every parameter to
            return x - x.mean(dim=(-2, -1), keepdim=True)
        return super().forward(x)


def norm_layer(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d (affine, running stats) or InstanceNorm2d (no affine, no running stats)."""
    return nn.BatchNorm2d(channels) if norm == "batch" else InstanceNorm2d(channels)


def _down(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(c_in, c_out, 4, 2, 1), norm_layer(norm, c_out))


def _up(c_in: int, c_out: int, norm: str, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), norm_layer(norm, c_out)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _out(c_in: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, 3, 4, 2, 1), nn.Tanh())


class MultiplicativeNoise:
    """``t -> t ⊙ n`` with ``n ~ N(1, std)`` elementwise, drawn on the CPU from one
    ``torch.Generator`` per image (seeded by ``seeds[i]``), so an image's noise depends on its
    seed alone — not on the batch it shares, the device or ``--batch-size``. Each call draws the
    next tensor of every image's stream (call order = :data:`NOISE_AT`)."""

    def __init__(self, seeds: Sequence[int], std: float = WN_STD):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.std = std

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.shape[0] != len(self.generators):
            raise ValueError(f"noise for {len(self.generators)} images, got a batch of {t.shape[0]}")
        n = torch.stack([torch.randn(t.shape[1:], generator=g, dtype=torch.float32)
                         for g in self.generators])
        return t * (1.0 + self.std * n.to(t.device, t.dtype))


class Upscale8(nn.Sequential):
    """The ×8 "five-layer CNN" (pixel shuffle): ``(N,3,h,w) -> (N,3,8h,8w)``, bias-free."""

    def __init__(self, width: int = 64):
        layers: list[nn.Module] = [nn.Conv2d(3, width, 9, 1, 4, bias=False), nn.LeakyReLU(0.2)]
        for _ in range(3):
            layers += [nn.Conv2d(width, 4 * width, 3, 1, 1, bias=False), nn.PixelShuffle(2),
                       nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(width, 3, 3, 1, 1, bias=False))
        super().__init__(*layers)


class YunGenerator(nn.Module):
    """Joint ×8 SR + deblurring generator; see the module docstring for the contract."""

    def __init__(self, config: YunGeneratorConfig | None = None):
        super().__init__()
        cfg = config or YunGeneratorConfig()
        self.config = cfg
        g, nm, p = cfg.ngf, cfg.norm, cfg.dropout
        self.upscale8 = Upscale8(cfg.upscale_width)
        # encoder: widths g, 2g, 4g, 8g, 8g, 8g, 8g, 8g at 128, 64, ..., 1
        self.conv1 = nn.Conv2d(3, g, 4, 2, 1)
        self.conv2 = _down(g, 2 * g, nm)
        self.conv3 = _down(2 * g, 4 * g, nm)
        self.conv4 = _down(4 * g, 8 * g, nm)
        self.conv5 = _down(8 * g, 8 * g, nm)
        self.conv6 = _down(8 * g, 8 * g, nm)
        self.conv7 = _down(8 * g, 8 * g, nm)
        self.conv8 = _down(8 * g, 8 * g, nm)
        # lower (sharp HR) decoder
        self.deconv8 = _up(8 * g, 8 * g, nm, p)
        self.deconv7 = _up(16 * g, 8 * g, nm, p)
        self.deconv6 = _up(16 * g, 8 * g, nm, p)
        self.deconv5 = _up(16 * g, 8 * g, nm)
        self.deconv4 = _up(16 * g, 4 * g, nm)
        self.deconv3 = _up(8 * g, 2 * g, nm)
        self.deconv2 = _up(4 * g, g, nm)
        self.deconv1 = _out(2 * g)
        # upper (blurred HR) decoder from c4
        self.deconv4_0 = _up(8 * g, 4 * g, nm)
        self.deconv3_0 = _up(8 * g, 2 * g, nm)
        self.deconv2_0 = _up(4 * g, g, nm)
        self.deconv1_0 = _out(2 * g)

    def forward(self, x: torch.Tensor, noise: Callable[[torch.Tensor], torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"YunGenerator expects (N, 3, {INPUT_SIZE}, {INPUT_SIZE}) in [-1, 1], "
                             f"got {tuple(x.shape)}")

        def nz(t: torch.Tensor) -> torch.Tensor:  # applied in the order of NOISE_AT
            return t if noise is None else noise(t)

        upx = self.upscale8(nz(x))
        c = [upx]
        for i in range(1, 9):
            c.append(nz(getattr(self, f"conv{i}")(c[-1])))
        c1, c2, c3, c4, c5, c6, c7, c8 = c[1:]
        # lower decoder
        d = nz(self.deconv8(c8))
        for skip, layer in ((c7, self.deconv7), (c6, self.deconv6), (c5, self.deconv5),
                            (c4, self.deconv4), (c3, self.deconv3), (c2, self.deconv2)):
            d = nz(layer(torch.cat([skip, d], 1)))
        # upper decoder: first four encoder levels only
        u = nz(self.deconv4_0(c4))
        u = nz(self.deconv3_0(torch.cat([c3, u], 1)))
        feat = nz(self.deconv2_0(torch.cat([c2, u], 1)))  # I_f, (N, g, 128, 128)
        blurred_hr = self.deconv1_0(torch.cat([c1, feat], 1))
        sharp_hr = self.deconv1(torch.cat([c1, d + feat], 1))
        return upx, blurred_hr, sharp_hr


def count_parameters(config: YunGeneratorConfig | None = None) -> int:
    """Learnable parameters of the generator built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        net = YunGenerator(config)
    return sum(p.numel() for p in net.parameters())
