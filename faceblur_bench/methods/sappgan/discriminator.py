"""SAPP discriminator: U-Net discriminator with a pixel-wise projection (seed 000 §III-A).

- Encoder body ``D_enc^body``: ``levels`` (5 for 128x128) residual down-sampling stages, each
  ``[ReLU] conv3x3 -> ReLU -> conv3x3 -> avgpool 2x2`` with a 1x1-conv shortcut, widths
  ``ch·(1, 2, 4, 8, 16)``, giving ``Z`` of shape ``(N, 16ch, H/32, W/32)``; an optional
  self-attention block after the first stage (the released code has one at 64x64).
- Encoder head ``D_enc^head``: global sum pooling of ``ReLU(Z)`` and a linear layer -> one
  logit per image (eq. 2).
- Decoder body ``D_dec^body``: ``levels`` up-sampling stages ``ReLU -> nearest x2 -> conv3x3
  -> ReLU -> conv3x3`` (+ shortcut), each fed the previous output concatenated with the
  encoder features of the same resolution, ending in ``L`` of shape ``(N, d, H, W)`` with
  ``d = ch`` (eq. 3).
- Decoder head: ``Q_dec = M ⊕ conv1x1(L)`` where ``M_ij = F_ij · L_ij`` and ``F`` is the
  one-hot label map projected through the label embedding ``V ∈ R^{N_cls × d}`` (eqs. 4–6).
  ``F`` is built as ``V[y]`` permuted to channels-first — the released code reshapes the
  embedding with ``view`` instead, which scrambles positions and channels; not copied.
  Without ``conditional`` (U-Net discriminator of ablations S1/S2) ``Q_dec = conv1x1(L)``.

Every convolution, linear and embedding layer is spectrally normalised (U-Net GAN / BigGAN).
Input images are ``(N, 3, H, W)`` in [-1, 1] with H, W multiples of ``2**levels``; label maps
are ``(N, H, W)`` integer class indices in ``[0, n_classes)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True)
class SAPPDiscriminatorConfig:
    ch: int = 64
    levels: int = 5
    n_classes: int = 19
    conditional: bool = True
    attention: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SAPPDiscriminatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SAPP discriminator config keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def _sn_conv(c_in: int, c_out: int, k: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, k, 1, k // 2))


class DownBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, preactivate: bool = True):
        super().__init__()
        self.preactivate = preactivate
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.shortcut = _sn_conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivate else x
        h = self.conv2(F.relu(self.conv1(h)))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.shortcut(x), 2)


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.shortcut = _sn_conv(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(x), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.conv1(h)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SelfAttention(nn.Module):
    """SAGAN self-attention (keys/values max-pooled 2x2), output scaled by a learned γ (init 0)."""

    def __init__(self, channels: int):
        super().__init__()
        self.q = _sn_conv(channels, max(1, channels // 8), 1)
        self.k = _sn_conv(channels, max(1, channels // 8), 1)
        self.v = _sn_conv(channels, max(1, channels // 2), 1)
        self.o = _sn_conv(max(1, channels // 2), channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.q(x).flatten(2)  # (N, c', HW)
        pool = (lambda t: F.max_pool2d(t, 2)) if min(h, w) >= 2 else (lambda t: t)
        k = pool(self.k(x)).flatten(2)  # (N, c', HW/4)
        v = pool(self.v(x)).flatten(2)  # (N, c/2, HW/4)
        att = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (N, HW, HW/4)
        out = (v @ att.transpose(1, 2)).view(n, -1, h, w)
        return x + self.gamma * self.o(out)


class SAPPDiscriminator(nn.Module):
    """``forward(x, labels=None) -> (enc_logits (N,), dec_logits (N, 1, H, W))``.

    ``labels`` is required when ``config.conditional``; it is ignored otherwise.
    """

    def __init__(self, config: SAPPDiscriminatorConfig | None = None):
        super().__init__()
        cfg = config or SAPPDiscriminatorConfig()
        self.config = cfg
        ch, n = cfg.ch, cfg.levels
        enc_ch = [ch * 2 ** i for i in range(n)]
        self.enc_ch = enc_ch
        self.down = nn.ModuleList(
            [DownBlock(3 if i == 0 else enc_ch[i - 1], enc_ch[i], preactivate=i > 0) for i in range(n)]
        )
        self.attention = SelfAttention(enc_ch[0]) if cfg.attention else None
        ups = []
        c_prev = enc_ch[-1]
        for k in range(n):
            skip = enc_ch[n - 1 - k] if k > 0 else 0
            out = enc_ch[n - 2 - k] if n - 2 - k >= 0 else ch
            ups.append(UpBlock(c_prev + skip, out))
            c_prev = out
        self.up = nn.ModuleList(ups)
        self.enc_head = spectral_norm(nn.Linear(enc_ch[-1], 1))
        self.dec_head = spectral_norm(nn.Conv2d(ch, 1, 1))
        self.embedding = spectral_norm(nn.Embedding(cfg.n_classes, ch)) if cfg.conditional else None

    def project(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Image-label matching map ``M`` (eqs. 4–5): ``(N, d, H, W)`` x ``(N, H, W)`` -> ``(N, 1, H, W)``."""
        assert self.embedding is not None
        emb = self.embedding(labels)  # (N, H, W, d) = one-hot(y) @ V
        return (emb.permute(0, 3, 1, 2) * features).sum(1, keepdim=True)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        mult = 2 ** cfg.levels
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] % mult or x.shape[-2] % mult:
            raise ValueError(
                f"SAPPDiscriminator expects (N, 3, H, W) with H, W multiples of {mult}, got {tuple(x.shape)}"
            )
        if cfg.conditional:
            if labels is None:
                raise ValueError("the conditional SAPP discriminator needs a label map (N, H, W)")
            if labels.shape != (x.shape[0],) + tuple(x.shape[-2:]):
                raise ValueError(f"label map shape {tuple(labels.shape)} does not match images {tuple(x.shape)}")
            labels = labels.long()
        feats = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h)
            if i == 0 and self.attention is not None:
                h = self.attention(h)
            feats.append(h)
        enc_logits = self.enc_head(F.relu(h).sum(dim=(2, 3))).squeeze(1)
        for k, block in enumerate(self.up):
            if k > 0:
                h = torch.cat([h, feats[cfg.levels - 1 - k]], 1)
            h = block(h)
        dec = self.dec_head(h)
        if cfg.conditional:
            dec = dec + self.project(h, labels)
        return enc_logits, dec
