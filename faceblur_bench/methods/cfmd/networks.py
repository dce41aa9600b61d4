"""CFMD-GAN generator G = mapping network G_M + MIMO-UNet deblurring network G_R with ContAda
blocks (Lee, Han & Heo, "Continuous Facial Motion Deblurring"; seed 003 §4.2, METHODS.md §A.1).

``G(b, u)`` takes a blurred face ``b`` of shape ``(N, 3, H, W)`` in [0, 1] (H, W multiples of 4)
and the moment control factor ``u`` in [0, 1] (a float or an ``(N,)`` tensor) and returns the
three MIMO-UNet outputs ``[ŝ_¼, ŝ_½, ŝ]`` of shapes ``(N,3,H/4,W/4)``, ``(N,3,H/2,W/2)``,
``(N,3,H,W)``, each a residual on the (nearest-)downsampled input; the restored image is the last,
clamped to [0, 1] by the caller. ``u_k = k/(n-1)`` selects the k-th of n sharp moments in
facial-motion-reordered (FMR) order; u = 0.5 is the centre moment.

Two variants of the ContAda block and mapping network (``GeneratorConfig.variant``):

``released`` (the authors' code, default; 9,246,323 parameters at base width 32, 8 blocks)
    G_M: 8 × [1×1 conv + LeakyReLU(0.2)] on the u-map (1 -> 32 -> ... -> 32 channels), then per
    level one encoder and one decoder head (nearest ↓1/↓2/↓4, 1×1 conv 32 -> C_n + LReLU) that
    feed all blocks of that level. Block: F_o = LReLU(conv3×3(F_in)); CADC:
    F_u = conv1×1([F_o, u_n]), F_dc = DCNv2(F_u) with offsets conv3×3(F_u) and mask
    2·sigmoid(conv3×3(F_u)) (both zero-initialised: no offset, mask 1); CACA:
    X = conv1×1([F_dc, u_n]), out = X ⊙ σ(W_2 LReLU(W_1 GAP(X))) (reduction 4, no biases);
    output out + F_in.
``paper`` (seed 003 Fig. 6, §4.2.1–4.2.2)
    G_M: 8 × [1×1 conv + LReLU] to a 64-channel u_f at full resolution; every block resizes u_f
    bilinearly to its resolution and maps it by its own 1×1 conv to C_n channels. Block:
    F_u = conv1×1([F_o, u_n]) feeds both branches; F_dc = DCNv2(F_u) with mask sigmoid(·)
    initialised at 0.5; the channel attention is computed from F_u and multiplies F_dc;
    output F_dc ⊙ a + F_in.

Ablations (seed 003 Table 5): ``cadc=False`` replaces CADC by a 3×3 convolution of F_o (u then
enters only through CACA); ``caca=False`` replaces CACA by a plain RCAN channel attention on
F_dc (u enters only through CADC).

Module names follow the authors' state dict (METHODS.md §A.4) so that :mod:`.official` only
checks it; the reduced widths of tests and the paper variant add nothing to that naming.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from ...errors import UsageError

VARIANTS = ("released", "paper")


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of the CFMD-GAN generator (plain values so it can live in a checkpoint).

    base_channels: width of level 1 (levels are base, 2·base, 4·base; released 32)
    num_res:       ContAda blocks per encoder/decoder block (released 8)
    variant:       "released" | "paper" (ContAda block and mapping network, see module doc)
    cadc / caca:   the two ContAda modules (False = Table 5 ablations)
    mapping_layers: 1×1 layers of the mapping trunk (8)
    paper_uf_channels: channels of the paper variant's u_f (64)
    """

    base_channels: int = 32
    num_res: int = 8
    variant: str = "released"
    cadc: bool = True
    caca: bool = True
    mapping_layers: int = 8
    paper_uf_channels: int = 64

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            import difflib

            from ...errors import UnknownNameError

            raise UnknownNameError("CFMD-GAN generator variant", self.variant, list(VARIANTS),
                                   difflib.get_close_matches(self.variant, VARIANTS, n=1))
        if self.base_channels < 4 or self.base_channels % 4:
            raise UsageError(f"CFMD-GAN base_channels = {self.base_channels}",
                             "use a multiple of 4 (channel attention reduces by 4; released 32)")
        if self.num_res < 1 or self.mapping_layers < 1:
            raise UsageError(f"CFMD-GAN num_res = {self.num_res}, mapping_layers = {self.mapping_layers}",
                             "both must be at least 1 (released 8 and 8)")

    @property
    def widths(self) -> tuple[int, int, int]:
        b = self.base_channels
        return (b, 2 * b, 4 * b)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"unknown CFMD-GAN generator option(s) {unknown}",
                             f"known: {', '.join(sorted(known))}")
        return cls(**d)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class BasicConv(nn.Module):
    """Conv2d (padding k//2, bias) or ConvTranspose2d(k, s, padding k//2-1), + LReLU(0.2) when
    ``relu``; the only conv primitive of G (no normalisation anywhere)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True,
                 transpose: bool = False):
        super().__init__()
        if transpose:
            conv: nn.Module = nn.ConvTranspose2d(cin, cout, k, stride, padding=k // 2 - 1)
        else:
            conv = nn.Conv2d(cin, cout, k, stride, padding=k // 2)
        self.main = nn.Sequential(conv, _act()) if relu else nn.Sequential(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


# -- ContAda block -----------------------------------------------------------------------------------
class CADC(nn.Module):
    """Control-adaptive modulated deformable 3×3 conv (eq. 10) on F_u = conv1×1([F_o, u_n]).

    ``mask_scale`` 2 (released: mask 2·σ, 1 at init) or 1 (paper: σ, 0.5 at init). Offsets and
    mask logits start at zero, i.e. the block starts as a plain (scaled) 3×3 convolution.
    """

    def __init__(self, c: int, mask_scale: float):
        super().__init__()
        self.mask_scale = mask_scale
        self.conv = nn.Conv2d(2 * c, c, 1, bias=False)
        self.offset_conv = nn.Conv2d(c, 2 * 9, 3, padding=1)
        self.modulator_conv = nn.Conv2d(c, 9, 3, padding=1)
        self.regular_conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        for m in (self.offset_conv, self.modulator_conv):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def fuse(self, f_o: torch.Tensor, u_n: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([f_o, u_n], 1))

    def deform(self, f_u: torch.Tensor) -> torch.Tensor:
        offset = self.offset_conv(f_u)
        mask = self.mask_scale * torch.sigmoid(self.modulator_conv(f_u))
        # deform_conv2d has no bf16 kernel: run it in the offsets' precision
        w = self.regular_conv.weight
        dt = torch.float32 if f_u.dtype == torch.bfloat16 else f_u.dtype
        return deform_conv2d(f_u.to(dt), offset.to(dt), w.to(dt), padding=(1, 1),
                             mask=mask.to(dt)).to(f_u.dtype)


class CACA(nn.Module):
    """Control-adaptive channel attention (released): X = conv1×1([F, u_n]); X ⊙ σ(W2 φ(W1 GAP X))."""

    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(2 * c, c, 1, bias=False)
        self.conv_du = nn.Sequential(nn.Conv2d(c, c // reduction, 1, bias=False), _act(),
                                     nn.Conv2d(c // reduction, c, 1, bias=False), nn.Sigmoid())

    def forward(self, f: torch.Tensor, u_n: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([f, u_n], 1))
        return x * self.conv_du(x.mean((2, 3), keepdim=True))


class CALayer(nn.Module):
    """Plain RCAN channel attention (no control input): F ⊙ σ(W2 φ(W1 GAP F)). With ``u`` absent
    it is the ``caca=False`` ablation; the paper block computes it from F_u."""

    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(c, c // reduction, 1, bias=False), _act(),
                                     nn.Conv2d(c // reduction, c, 1, bias=False), nn.Sigmoid())

    def weights(self, f: torch.Tensor) -> torch.Tensor:
        return self.conv_du(f.mean((2, 3), keepdim=True))


class ContAdaBlock(nn.Module):
    """One ContAda residual block at C channels; ``forward(F_in, u_n) -> F_in + ...`` (same shape).

    ``u_n`` is the level's control feature (released: C channels at the block's resolution;
    paper: the full-resolution u_f, resized and projected here by ``control``).
    """

    def __init__(self, c: int, cfg: GeneratorConfig):
        super().__init__()
        self.variant, self.cadc, self.caca = cfg.variant, cfg.cadc, cfg.caca
        self.conv1 = BasicConv(c, c, 3)
        if cfg.variant == "paper":
            self.control = nn.Conv2d(cfg.paper_uf_channels, c, 1)
        if cfg.cadc:
            self.conv2: nn.Module = CADC(c, mask_scale=2.0 if cfg.variant == "released" else 1.0)
        elif cfg.variant == "paper":
            self.fuse = nn.Conv2d(2 * c, c, 1, bias=False)  # F_u still feeds the attention
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        else:
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        if cfg.caca and cfg.variant == "released":
            self.ch_att: nn.Module = CACA(c)
        else:
            self.ch_att = CALayer(c)

    def forward(self, x: torch.Tensor, u_f: torch.Tensor) -> torch.Tensor:
        f_o = self.conv1(x)
        if self.variant == "paper":
            u_n = self.control(F.interpolate(u_f, size=x.shape[-2:], mode="bilinear", align_corners=False))
            if self.cadc:
                f_u = self.conv2.fuse(f_o, u_n)
                f_dc = self.conv2.deform(f_u)
            else:
                f_u = self.fuse(torch.cat([f_o, u_n], 1))
                f_dc = self.conv2(f_u)
            # CACA computes its weights from F_u; without CACA the attention sees F_dc only
            a = self.ch_att.weights(f_u if self.caca else f_dc)
            return x + f_dc * a
        f_dc = self.conv2.deform(self.conv2.fuse(f_o, u_f)) if self.cadc else self.conv2(f_o)
        out = self.ch_att(f_dc, u_f) if self.caca else f_dc * self.ch_att.weights(f_dc)
        return x + out


class _Blocks(nn.Module):
    """An encoder/decoder block: ``num_res`` ContAda blocks sharing one control feature."""

    def __init__(self, c: int, cfg: GeneratorConfig):
        super().__init__()
        self.layers = nn.ModuleList(ContAdaBlock(c, cfg) for _ in range(cfg.num_res))

    def forward(self, x: torch.Tensor, u_f: torch.Tensor) -> torch.Tensor:
        for blk in self.layers:
            x = blk(x, u_f)
        return x


# -- mapping network ---------------------------------------------------------------------------------
class _MapLayer(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.layer = nn.Sequential(nn.Conv2d(cin, cout, 1), _act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class MappingNetwork(nn.Module):
    """G_M: u-map ``(N, 1, H, W)`` -> control features.

    released: returns ``(enc, dec)``, each three maps ``(N, C_n, H/2^n, W/2^n)`` for levels
    1, 2, 3 (decoder heads listed deepest first, as the authors' ``dec_unshared``);
    paper: returns the full-resolution u_f ``(N, paper_uf_channels, H, W)``.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.variant = cfg.variant
        dim = cfg.base_channels if cfg.variant == "released" else cfg.paper_uf_channels
        self.shared = nn.ModuleList(_MapLayer(1 if i == 0 else dim, dim) for i in range(cfg.mapping_layers))
        if cfg.variant == "released":
            w = cfg.widths
            self.enc_unshared = nn.ModuleList(_MapLayer(dim, c) for c in w)
            self.dec_unshared = nn.ModuleList(_MapLayer(dim, c) for c in reversed(w))

    def forward(self, u2d: torch.Tensor):
        t = u2d
        for layer in self.shared:
            t = layer(t)
        if self.variant == "paper":
            return t
        pyr = [t, F.interpolate(t, scale_factor=0.5), F.interpolate(t, scale_factor=0.25)]
        enc = [h(p) for h, p in zip(self.enc_unshared, pyr)]
        dec = [h(p) for h, p in zip(self.dec_unshared, reversed(pyr))]
        return enc, dec


# -- MIMO-UNet modules ---------------------------------------------------------------------------------
class SCM(nn.Module):
    """Shallow convolutional module: features of the downsampled input, ``out`` channels."""

    def __init__(self, out: int):
        super().__init__()
        self.main = nn.Sequential(BasicConv(3, out // 4, 3), BasicConv(out // 4, out // 2, 1),
                                  BasicConv(out // 2, out // 2, 3), BasicConv(out // 2, out - 3, 1))
        self.conv = BasicConv(out, out, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, self.main(x)], 1))


class FAM(nn.Module):
    """Feature attention module: a + conv3×3(a ⊙ b)."""

    def __init__(self, c: int):
        super().__init__()
        self.merge = BasicConv(c, c, 3, relu=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + self.merge(a * b)


class AFF(nn.Module):
    """Asymmetric feature fusion: conv3×3(LReLU(conv1×1([x1, x2, x4])))."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(BasicConv(cin, cout, 1), BasicConv(cout, cout, 3, relu=False))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat(xs, 1))


def _down(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=0.5)  # nearest, as the released code


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0)


def u_map(u: float | Sequence[float] | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The u-map u_2D ``(N, 1, H, W)`` filled per sample with u (float, sequence or ``(N,)``);
    a u outside [0, 1] or of the wrong length is a UsageError."""
    n, _, h, w = like.shape
    if isinstance(u, numbers.Real):
        t = torch.full((n,), float(u), dtype=torch.float32)
    else:
        t = torch.as_tensor(u, dtype=torch.float32).reshape(-1).cpu()
        if t.numel() == 1:
            t = t.expand(n)
        if t.numel() != n:
            raise UsageError(f"CFMD-GAN got {t.numel()} moment values for a batch of {n}",
                             "pass one u per image (or one for all)")
    if not bool(torch.isfinite(t).all()) or float(t.min()) < 0.0 or float(t.max()) > 1.0:
        raise UsageError(f"CFMD-GAN moment control factor u = {t.tolist()[:8]} is outside [0, 1]",
                         "u_k = k/(n-1) for the k-th of n moments (FMR order); u = 0.5 is the centre")
    return t.to(like.device, like.dtype).view(n, 1, 1, 1).expand(n, 1, h, w).contiguous()


class CFMDGenerator(nn.Module):
    """G(b, u): the released ``CMD_MIMOUNet`` architecture (see the module docstring)."""

    def __init__(self, cfg: GeneratorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or GeneratorConfig()
        c1, c2, c3 = cfg.widths
        self.mapping_net = MappingNetwork(cfg)
        self.Encoder = nn.ModuleList([_Blocks(c1, cfg), _Blocks(c2, cfg), _Blocks(c3, cfg)])
        self.feat_extract = nn.ModuleList([
            BasicConv(3, c1, 3), BasicConv(c1, c2, 3, 2), BasicConv(c2, c3, 3, 2),
            BasicConv(c3, c2, 4, 2, transpose=True), BasicConv(c2, c1, 4, 2, transpose=True),
            BasicConv(c1, 3, 3, relu=False)])
        self.Decoder = nn.ModuleList([_Blocks(c3, cfg), _Blocks(c2, cfg), _Blocks(c1, cfg)])
        self.Convs = nn.ModuleList([BasicConv(c3, c2, 1), BasicConv(c2, c1, 1)])
        self.ConvsOut = nn.ModuleList([BasicConv(c3, 3, 3, relu=False), BasicConv(c2, 3, 3, relu=False)])
        self.AFFs = nn.ModuleList([AFF(c1 + c2 + c3, c1), AFF(c1 + c2 + c3, c2)])
        self.FAM1, self.FAM2 = FAM(c3), FAM(c2)
        self.SCM1, self.SCM2 = SCM(c3), SCM(c2)

    def forward(self, x: torch.Tensor, u: float | Sequence[float] | torch.Tensor) -> list[torch.Tensor]:
        """``x`` (N,3,H,W), H and W multiples of 4; u in [0,1] -> [out¼, out½, out] (see module doc)."""
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] % 4 or x.shape[3] % 4:
            raise UsageError(f"CFMD-GAN generator input of shape {tuple(x.shape)}",
                             "pass (N, 3, H, W) with H and W multiples of 4 (pad first)")
        u2d = u if (isinstance(u, torch.Tensor) and u.dim() == 4) else u_map(u, x)
        ctrl = self.mapping_net(u2d)
        if self.cfg.variant == "paper":
            enc = dec = [ctrl] * 3
        else:
            enc, dec = ctrl
        x2 = _down(x)
        x4 = _down(x2)
        z2, z4 = self.SCM2(x2), self.SCM1(x4)
        res1 = self.Encoder[0](self.feat_extract[0](x), enc[0])
        z = self.FAM2(self.feat_extract[1](res1), z2)
        res2 = self.Encoder[1](z, enc[1])
        z = self.FAM1(self.feat_extract[2](res2), z4)
        z = self.Encoder[2](z, enc[2])
        z42 = _up(z)
        a2 = self.AFFs[1](_down(res1), res2, z42)
        a1 = self.AFFs[0](res1, _up(res2), _up(z42))
        z = self.Decoder[0](z, dec[0])
        out4 = self.ConvsOut[0](z) + x4
        z = self.Convs[0](torch.cat([self.feat_extract[3](z), a2], 1))
        z = self.Decoder[1](z, dec[1])
        out2 = self.ConvsOut[1](z) + x2
        z = self.Convs[1](torch.cat([self.feat_extract[4](z), a1], 1))
        z = self.Decoder[2](z, dec[2])
        return [out4, out2, self.feat_extract[5](z) + x]


_COUNT_CACHE: dict[str, int] = {}


def count_parameters(cfg: GeneratorConfig | None = None) -> int:
    """Learnable parameters of the generator for ``cfg`` (built once on the meta device)."""
    cfg = cfg or GeneratorConfig()
    key = json.dumps(cfg.to_dict(), sort_keys=True)
    if key not in _COUNT_CACHE:
        with torch.device("meta"):
            net = CFMDGenerator(cfg)
        _COUNT_CACHE[key] = sum(p.numel() for p in net.parameters())
    return _COUNT_CACHE[key]
