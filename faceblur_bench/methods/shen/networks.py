"""Networks of Shen et al., "Exploiting Semantics for Face Image Deblurring" (IJCV 2020, seed 004).

Pipeline (seed 004 eqs. 1–3): ``y_c = G_c(x)``, ``p = softmax(P(y_c))``, ``y = G_f(x, y_c, p)``;
``x`` is an aligned face ``(N, 3, H, W)`` in [0, 1] with ``H, W`` multiples of 64 (128 in the
paper; P pools five times and every scale must stay even).

Deblurring sub-net (G_c, G_f and the CVPR 2018 generator share one template,
:class:`TwoScaleDeblurNet`): two scales, each ``conv k1×k1 (Cin→w) + ReLU``, two ``conv 5×5 +
ReLU``, ``res_blocks`` residual blocks, two ``conv 5×5 + ReLU`` and ``conv 5×5 (w→3)`` without
activation — 18 convolutions per scale with the paper's 6 blocks (§3.5), 16 with the CVPR 2018
release's 5. The residual stream follows the released forward pass (``DL_deblur_net18.m``): a
block computes ``s_i = conv(ReLU(conv(ReLU(s_{i-1})))) + s_{i-1}`` (the skip carries the sum
before its ReLU), and ``ReLU(s_n)`` leaves the stack. The half-scale output is upsampled by a
learned 4×4 stride-2 transposed convolution (3→3 channels, padding 1; §3.5 — §3.2's "bicubic"
contradicts it and the code). No normalisation, no global residual.

Scale inputs (channels; ``K`` classes; ``·½`` = 2× down-sampled, ``U`` = the transposed conv):

====================  =================================  =====================================
sub-net               scale 1 (H/2)                      scale 2 (H)
====================  =================================  =====================================
G_c (IJCV)            ``x½`` (3)                         ``[U(y_c½), x]`` (6)
G_f (IJCV)            ``[x½, y_c½, p½]`` (6+K = 17)      ``[x, y_c, U(y½), p]`` (9+K = 20)
G (CVPR 2018)         ``[x½, p½]`` (3+K)                 ``[U(y½), x, p]`` (6+K)
====================  =================================  =====================================

``x½`` and ``y_c½`` are MATLAB ``imresize(·, 0.5)`` as in the release (antialiased bicubic with
mirrored borders, :mod:`.imresize`),
``p½`` is a 2×2 max-pool of the softmax map (release). The text writes ``p½`` for G_f's second
scale; it must be the full-resolution ``p`` (20 = 3+3+3+11). With ``fine_nets = N > 1`` (Table 8)
the n-th fine net takes the output of the (n−1)-th in place of ``y_c``; ``share_fine`` applies one
fine net N times (Table 8's "shared" rows).

Parsing net P (:class:`ParsingNet`, layer order of the release): encoder 6× [conv + BN + ReLU]
with a 2×2 max-pool after the first five (128→4 px), decoder 5× [ConvT 4×4 s2 → conv 3×3 → BN →
ReLU] with the encoder's ReLU outputs *added* at H/16, H/8, H/4 and H/2 (no skip at H), then a
3×3 conv to ``K`` logits. The paper gives no widths (they live only in the released ``.mat``
files); :class:`ParsingConfig` holds our defaults. Batch norm uses MatConvNet's ε = 1e-4.
``ParsingNet.bn_moments`` chooses test-time moments: ``"stored"`` (running statistics) or
``"per_image"`` (each image's own spatial moments, as the current release script does by calling
``vl_nnbnorm`` without ``'moments'``).

Discriminator D (:class:`ShenDiscriminator`, §3.3): "DCGAN-based", 6 strided convolutions
each followed by ReLU, a sigmoid scalar; widths and kernel sizes are not given (ours: 4×4
stride 2, widths in :class:`DiscriminatorConfig`). It returns the logit; losses apply the sigmoid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .imresize import imresize

#: MatConvNet's batch-norm epsilon (``vl_nnbnorm(..., 'epsilon', 1e-4)`` in the release)
BN_EPS: float = 1e-4
VARIANTS: tuple[str, ...] = ("ijcv", "cvpr2018")
BN_MOMENTS: tuple[str, ...] = ("stored", "per_image")


def _check_keys(cls: type, d: dict[str, Any]) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; known: {sorted(known)}")


@dataclass(frozen=True)
class ParsingConfig:
    """Widths of the parsing net P (not in the paper; defaults are this project's choice).

    The defaults make the CVPR 2018 model (P + one 5-block deblurring net) total 14,811,588
    parameters, Table 12's "Shen et al. (2018) 14.8 M"; the released ``.mat`` files carry the
    real widths and :mod:`.matconvnet` reads them from the files.

    ``encoder_widths[i]`` / ``encoder_kernels[i]``: output channels / kernel of encoder conv i+1
    (the release pads conv3 by 2, i.e. 5×5). ``up_widths[j]``: output channels of decoder ConvT
    j+1 (None: equal to that stage's conv output). Decoder conv j+1 outputs
    ``encoder_widths[4 - j]`` for j < 4 (it is added to that encoder feature) and
    ``head_width`` for the last stage.
    """

    encoder_widths: tuple[int, ...] = (32, 64, 128, 256, 448, 448)
    encoder_kernels: tuple[int, ...] = (3, 3, 5, 3, 3, 3)
    up_widths: tuple[int, ...] | None = None
    head_width: int = 32

    def __post_init__(self) -> None:
        if len(self.encoder_widths) != 6 or len(self.encoder_kernels) != 6:
            raise ValueError("ParsingConfig needs 6 encoder widths and 6 encoder kernels")
        if self.up_widths is not None and len(self.up_widths) != 5:
            raise ValueError("ParsingConfig.up_widths needs 5 values (one per decoder stage)")

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        e = self.encoder_widths
        return (e[4], e[3], e[2], e[1], self.head_width)

    @property
    def convt_widths(self) -> tuple[int, ...]:
        return tuple(self.up_widths) if self.up_widths is not None else self.decoder_widths

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("encoder_widths", "encoder_kernels", "up_widths"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParsingConfig:
        _check_keys(cls, d)
        kw = dict(d)
        for k in ("encoder_widths", "encoder_kernels", "up_widths"):
            if kw.get(k) is not None:
                kw[k] = tuple(int(v) for v in kw[k])
        return cls(**kw)


@dataclass(frozen=True)
class ShenConfig:
    """Architecture of the whole model (plain values so it can live in a checkpoint).

    ``variant``: ``"ijcv"`` (G_c → P → G_f) or ``"cvpr2018"`` (P on the blurred input, one
    deblurring net, no coarse net). ``num_classes`` K = 11 (what the 17/20-channel inputs imply;
    §3.2's text says 14). ``res_blocks``: 6 (IJCV) / 5 (CVPR 2018 release). ``first_kernel``:
    11 (Table 7 compares 5/9/11/13).
    """

    variant: str = "ijcv"
    num_classes: int = 11
    width: int = 64
    first_kernel: int = 11
    kernel: int = 5
    res_blocks: int = 6
    fine_nets: int = 1
    share_fine: bool = False
    parsing: ParsingConfig = field(default_factory=ParsingConfig)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"ShenConfig.variant {self.variant!r}; known: {list(VARIANTS)}")
        if self.variant == "cvpr2018" and (self.fine_nets != 1 or self.share_fine):
            raise ValueError("the CVPR 2018 variant has one deblurring net (fine_nets = 1)")
        if self.fine_nets < 1:
            raise ValueError(f"ShenConfig.fine_nets must be >= 1, got {self.fine_nets}")
        if self.first_kernel % 2 == 0 or self.kernel % 2 == 0:
            raise ValueError("kernel sizes must be odd ('same' padding)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parsing"] = self.parsing.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShenConfig:
        _check_keys(cls, d)
        kw = dict(d)
        if "parsing" in kw:
            p = kw["parsing"]
            kw["parsing"] = p if isinstance(p, ParsingConfig) else ParsingConfig.from_dict(p)
        return cls(**kw)


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, 1, k // 2)


def half(t: torch.Tensor) -> torch.Tensor:
    """2× down-sampling of an image as the release makes it: MATLAB ``imresize(x, 0.5)``
    (antialiased bicubic, mirrored borders, :func:`~.imresize.imresize`); in float32 (float64
    stays float64), returned in ``t``'s dtype."""
    return imresize(t, 0.5)


def half_probs(p: torch.Tensor) -> torch.Tensor:
    """2× down-sampling of a probability map: 2×2 max-pool (the release's ``vl_nnpool``)."""
    return F.max_pool2d(p, 2)


class ResBlock(nn.Module):
    """``s -> conv2(ReLU(conv1(ReLU(s)))) + s`` (the skip carries the pre-ReLU sum)."""

    def __init__(self, width: int, kernel: int):
        super().__init__()
        self.conv1 = _conv(width, width, kernel)
        self.conv2 = _conv(width, width, kernel)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(s)))) + s


class ScaleNet(nn.Module):
    """One scale: ``(N, c_in, h, w) -> (N, 3, h, w)`` (unbounded output, no activation)."""

    def __init__(self, c_in: int, width: int = 64, first_kernel: int = 11, kernel: int = 5,
                 res_blocks: int = 6):
        super().__init__()
        self.head = _conv(c_in, width, first_kernel)
        self.pre = nn.ModuleList([_conv(width, width, kernel) for _ in range(2)])
        self.blocks = nn.ModuleList([ResBlock(width, kernel) for _ in range(res_blocks)])
        self.post = nn.ModuleList([_conv(width, width, kernel) for _ in range(2)])
        self.tail = _conv(width, 3, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.head(x))
        for conv in self.pre:
            h = F.relu(conv(h))
        for block in self.blocks:
            h = block(h)
        h = F.relu(h)
        for conv in self.post:
            h = F.relu(conv(h))
        return self.tail(h)


class TwoScaleDeblurNet(nn.Module):
    """Two-scale deblurring net: ``forward(first, second, up_at) -> (y_half, y)``.

    ``first``: scale-1 input ``(N, c_in1, H/2, W/2)``; ``second``: the scale-2 tensors at full
    resolution, into which ``U(y_half)`` (the learned 4×4 stride-2 transposed conv) is inserted
    at position ``up_at`` before concatenation to ``c_in2`` channels.
    """

    def __init__(self, c_in1: int, c_in2: int, width: int = 64, first_kernel: int = 11,
                 kernel: int = 5, res_blocks: int = 6):
        super().__init__()
        self.scale1 = ScaleNet(c_in1, width, first_kernel, kernel, res_blocks)
        self.up = nn.ConvTranspose2d(3, 3, 4, 2, 1)
        self.scale2 = ScaleNet(c_in2, width, first_kernel, kernel, res_blocks)

    def forward(self, first: torch.Tensor, second: Sequence[torch.Tensor], up_at: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        y_half = self.scale1(first)
        parts = list(second)
        parts.insert(up_at, self.up(y_half))
        return y_half, self.scale2(torch.cat(parts, 1))


class MomentsBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose eval-mode moments are selectable: ``"stored"`` (running statistics)
    or ``"per_image"`` (each image's own per-channel spatial mean and biased variance, i.e.
    MatConvNet ``vl_nnbnorm`` without ``'moments'`` on a batch of one). Training mode is plain
    batch norm."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=BN_EPS)
        self.moments = "stored"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.moments == "stored":
            return super().forward(x)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class ParsingNet(nn.Module):
    """Face parsing net P: ``(N, 3, H, W)`` image in [0, 1] -> ``(N, K, H, W)`` logits.

    ``H, W`` must be multiples of 32 (five 2×2 max-pools).
    """

    def __init__(self, config: ParsingConfig | None = None, num_classes: int = 11):
        super().__init__()
        cfg = config or ParsingConfig()
        self.config = cfg
        self.encoder = nn.ModuleList()
        c = 3
        for w, k in zip(cfg.encoder_widths, cfg.encoder_kernels):
            self.encoder.append(nn.ModuleDict({"conv": _conv(c, w, k), "bn": MomentsBatchNorm2d(w)}))
            c = w
        self.decoder = nn.ModuleList()
        for up_w, w in zip(cfg.convt_widths, cfg.decoder_widths):
            self.decoder.append(nn.ModuleDict({
                "up": nn.ConvTranspose2d(c, up_w, 4, 2, 1),
                "conv": _conv(up_w, w, 3), "bn": MomentsBatchNorm2d(w)}))
            c = w
        self.classifier = _conv(c, num_classes, 3)

    @property
    def bn_moments(self) -> str:
        return self.encoder[0]["bn"].moments

    @bn_moments.setter
    def bn_moments(self, value: str) -> None:
        if value not in BN_MOMENTS:
            raise ValueError(f"bn_moments {value!r}; known: {list(BN_MOMENTS)}")
        for m in self.modules():
            if isinstance(m, MomentsBatchNorm2d):
                m.moments = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        h = x
        for i, stage in enumerate(self.encoder):
            h = F.relu(stage["bn"](stage["conv"](h)))
            feats.append(h)
            if i < 5:
                h = F.max_pool2d(h, 2)
        for j, stage in enumerate(self.decoder):
            h = F.relu(stage["bn"](stage["conv"](stage["up"](h))))
            if j < 4:  # additive skip from encoder stage 5 - j (resolutions H/16 ... H/2)
                h = h + feats[4 - j]
        return self.classifier(h)


class CoarseNet(TwoScaleDeblurNet):
    """G_c: ``forward(x) -> (y_c½, y_c)`` for ``x`` ``(N, 3, H, W)`` in [0, 1]."""

    def __init__(self, **template: int):
        super().__init__(3, 6, **template)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return super().forward(half(x), [x], up_at=0)


class FineCascade(nn.Module):
    """The fine deblurring net(s): ``forward(x, prev, p) -> (outputs, half_outputs)`` lists.

    ``mode="ijcv"``: N nets G_f(x, prev, p), ``prev`` = y_c for the first and the previous
    output for the next ones (one shared net applied N times with ``share``);
    ``mode="cvpr2018"``: the CVPR 2018 generator G(x, p) (``prev`` is ignored).
    """

    def __init__(self, num_classes: int, fine_nets: int = 1, share: bool = False,
                 mode: str = "ijcv", **template: int):
        super().__init__()
        self.mode, self.steps, k = mode, fine_nets, num_classes
        if mode == "cvpr2018":
            self.nets = nn.ModuleList([TwoScaleDeblurNet(3 + k, 6 + k, **template)])
        else:
            n = 1 if share else fine_nets
            self.nets = nn.ModuleList([TwoScaleDeblurNet(6 + k, 9 + k, **template)
                                       for _ in range(n)])

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None, p: torch.Tensor
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        x_half, p_half = half(x), half_probs(p)
        if self.mode == "cvpr2018":
            y_half, y = self.nets[0](torch.cat([x_half, p_half], 1), [x, p], up_at=0)
            return [y], [y_half]
        if prev is None:
            raise ValueError("the IJCV fine net needs the coarse output y_c")
        outs, halves = [], []
        for n in range(self.steps):
            net = self.nets[min(n, len(self.nets) - 1)]
            y_half, y = net(torch.cat([x_half, half(prev), p_half], 1), [x, prev, p], up_at=2)
            outs.append(y)
            halves.append(y_half)
            prev = y
        return outs, halves


@dataclass
class ShenOutputs:
    """Everything the losses need. Images ``(N, 3, ·, ·)`` unbounded (≈ [0, 1]).

    ``coarse`` / ``coarse_half``: G_c's two scales (None for the CVPR 2018 variant);
    ``logits`` / ``probs``: P's output ``(N, K, H, W)``; ``fine`` / ``fine_half``: one entry
    per fine net (the last is the final result ``y``).
    """

    coarse: torch.Tensor | None
    coarse_half: torch.Tensor | None
    logits: torch.Tensor
    probs: torch.Tensor
    fine: list[torch.Tensor]
    fine_half: list[torch.Tensor]

    @property
    def y(self) -> torch.Tensor:
        return self.fine[-1]


def check_input(x: torch.Tensor) -> None:
    """Refuse anything but ``(N, 3, H, W)`` with ``H, W`` multiples of 64."""
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] % 64 or x.shape[-2] % 64:
        raise ValueError(f"Shen et al.'s networks expect (N, 3, H, W) with H, W multiples of 64, "
                         f"got {tuple(x.shape)}")


class ShenNet(nn.Module):
    """The full model; ``forward(x) -> ShenOutputs`` for ``x`` ``(N, 3, H, W)`` in [0, 1].

    Modules: ``coarse`` (:class:`CoarseNet` G_c, IJCV only), ``parsing`` (:class:`ParsingNet`
    P), ``fine`` (:class:`FineCascade`). ``H, W`` must be multiples of 64.
    """

    def __init__(self, config: ShenConfig | None = None):
        super().__init__()
        cfg = config or ShenConfig()
        self.config = cfg
        tpl = {"width": cfg.width, "first_kernel": cfg.first_kernel, "kernel": cfg.kernel,
               "res_blocks": cfg.res_blocks}
        self.parsing = ParsingNet(cfg.parsing, cfg.num_classes)
        self.coarse = None if cfg.variant == "cvpr2018" else CoarseNet(**tpl)
        self.fine = FineCascade(cfg.num_classes, cfg.fine_nets, cfg.share_fine, cfg.variant, **tpl)

    def forward(self, x: torch.Tensor) -> ShenOutputs:
        check_input(x)
        if self.coarse is None:
            logits = self.parsing(x)
            p = torch.softmax(logits, 1)
            fine, fine_half = self.fine(x, None, p)
            return ShenOutputs(None, None, logits, p, fine, fine_half)
        yc_half, yc = self.coarse(x)
        logits = self.parsing(yc)
        p = torch.softmax(logits, 1)
        fine, fine_half = self.fine(x, yc, p)
        return ShenOutputs(yc, yc_half, logits, p, fine, fine_half)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """D widths (not in the paper): 6 conv 4×4 stride 2 + ReLU, then a linear logit.

    ``image_size``: input side (128 in the paper; must be a multiple of 64).
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    image_size: int = 128

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscriminatorConfig:
        _check_keys(cls, d)
        kw = dict(d)
        if "widths" in kw:
            kw["widths"] = tuple(int(v) for v in kw["widths"])
        return cls(**kw)


class ShenDiscriminator(nn.Module):
    """``(N, 3, S, S)`` image in [0, 1] -> ``(N,)`` logits (``sigmoid`` = P(real))."""

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        cfg = config or DiscriminatorConfig()
        if len(cfg.widths) != 6 or cfg.image_size % 64:
            raise ValueError("ShenDiscriminator needs 6 widths and an image_size multiple of 64")
        self.config = cfg
        layers: list[nn.Module] = []
        c = 3
        for w in cfg.widths:
            layers += [nn.Conv2d(c, w, 4, 2, 1), nn.ReLU()]
            c = w
        self.features = nn.Sequential(*layers)
        side = cfg.image_size // 64
        self.logit = nn.Linear(c * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise ValueError(f"ShenDiscriminator expects (N, 3, {s}, {s}), got {tuple(x.shape)}")
        return self.logit(self.features(x).flatten(1)).squeeze(1)


_COUNT_CACHE: dict[str, dict[str, int]] = {}


def count_parameters(config: ShenConfig | None = None) -> dict[str, int]:
    """Learnable parameters per sub-net ``{"coarse", "parsing", "fine", "total"}`` (BN running
    statistics excluded), built once per configuration on the meta device."""
    cfg = config or ShenConfig()
    key = json.dumps(cfg.to_dict(), sort_keys=True)
    if key not in _COUNT_CACHE:
        with torch.device("meta"):
            net = ShenNet(cfg)

        def n(m: nn.Module | None) -> int:
            return 0 if m is None else sum(p.numel() for p in m.parameters())

        counts = {"coarse": n(net.coarse), "parsing": n(net.parsing), "fine": n(net.fine)}
        counts["total"] = sum(counts.values())
        _COUNT_CACHE[key] = counts
    return dict(_COUNT_CACHE[key])


def count_discriminator(config: DiscriminatorConfig | None = None) -> int:
    """Learnable parameters of D (meta device)."""
    with torch.device("meta"):
        d = ShenDiscriminator(config)
    return sum(p.numel() for p in d.parameters())
