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

``noise``: the w/N notebooks' variant (``FaceSRnDeblur_wN_train.ipynb``, whose ``Generator``
``FaceSRnDeblur_wN_test.ipynb`` repeats verbatim), in eval mode too: a tensor ``n`` drawn from
N(1, 0.1) elementwise is **added** (``t + n``, so a +1 offset and a 0.1 spread) to 19 tensors,
listed in the notebook's draw order in :data:`NOISE_AT`:

- the generator's input (before the ×8 CNN; ``upx`` is that CNN's output, itself not noised);
- each encoder output ``c1`` … ``c8`` **as the next layer's input** (``c4`` also as the upper
  decoder's input) — the skip connections concatenate the noiseless ``c1`` … ``c7``;
- every skip concatenation, after it is formed: upper decoder ``[c3, deconv4_0]``,
  ``[c2, deconv3_0]``, ``[c1, deconv2_0]``, then lower decoder ``[c7, deconv8]`` … ``[c2,
  deconv3]`` and ``[c1, deconv2 + I_f]`` (I_f: the noiseless ``deconv2_0`` output) — each the
  input of the next layer, the last two those of the tanh outputs.

None: no noise (the plain notebooks' generator). :class:`AdditiveNoise` draws it.
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
#: mean and standard deviation of the w/N notebooks' additive noise, drawn from N(WN_MEAN, WN_STD)
WN_MEAN: float = 1.0
WN_STD: float = 0.1
#: the tensors the w/N forward adds that noise to, in the notebook's draw order: the input; each
#: encoder output ``conv<i>`` on its way into the next layer; the upper decoder's concatenations
#: ``cat<i>_0`` = ``[c<i>, deconv<i+1>_0]`` (i = 3, 2, 1), then the lower decoder's ``cat<i>`` =
#: ``[c<i>, deconv<i+1>]`` (i = 7 … 1; ``cat1`` holds ``deconv2 + I_f``)
NOISE_AT: tuple[str, ...] = ("input", *(f"conv{i}" for i in range(1, 9)),
                             *(f"cat{i}_0" for i in range(3, 0, -1)),
                             *(f"cat{i}" for i in range(7, 0, -1)))


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


class AdditiveNoise:
    """``t -> t + n`` with ``n ~ N(mean, std)`` elementwise (the notebook's
    ``t + torch.empty_like(t).normal_(mean=1.0, std=0.1)``), drawn on the CPU from one
    ``torch.Generator`` per image (seeded by ``seeds[i]``), so an image's noise depends on its
    seed alone — not on the batch it shares, the device or ``--batch-size``. Each call draws the
    next tensor of every image's stream (call order = :data:`NOISE_AT`)."""

    def __init__(self, seeds: Sequence[int], mean: float = WN_MEAN, std: float = WN_STD):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.mean, self.std = mean, std

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.shape[0] != len(self.generators):
            raise ValueError(f"noise for {len(self.generators)} images, got a batch of {t.shape[0]}")
        n = torch.stack([torch.randn(t.shape[1:], generator=g, dtype=torch.float32)
                         for g in self.generators])
        return t + (self.mean + self.std * n).to(t.device, t.dtype)


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

        def nz(t: torch.Tensor) -> torch.Tensor:  # called in the order of NOISE_AT
            return t if noise is None else noise(t)

        upx = self.upscale8(nz(x))
        c: list[torch.Tensor] = []  # encoder outputs, noiseless (the skips)
        h = upx
        for i in range(1, 9):
            c.append(getattr(self, f"conv{i}")(h))
            h = nz(c[-1])  # what the next layer (and, for c4, the upper decoder) reads
            if i == 4:
                c4_in = h
        c1, c2, c3, c4, c5, c6, c7, c8 = c
        # upper decoder (blurred HR) from c4; the notebook runs it first
        u = nz(torch.cat([c3, self.deconv4_0(c4_in)], 1))
        u = nz(torch.cat([c2, self.deconv3_0(u)], 1))
        feat = self.deconv2_0(u)  # I_f, (N, g, 128, 128)
        blurred_hr = self.deconv1_0(nz(torch.cat([c1, feat], 1)))
        # lower decoder (sharp HR) from c8
        d = h
        for skip, layer in ((c7, self.deconv8), (c6, self.deconv7), (c5, self.deconv6),
                            (c4, self.deconv5), (c3, self.deconv4), (c2, self.deconv3)):
            d = nz(torch.cat([skip, layer(d)], 1))
        sharp_hr = self.deconv1(nz(torch.cat([c1, self.deconv2(d) + feat], 1)))
        return upx, blurred_hr, sharp_hr


def count_parameters(config: YunGeneratorConfig | None = None) -> int:
    """Learnable parameters of the generator built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        net = YunGenerator(config)
    return sum(p.numel() for p in net.parameters())
