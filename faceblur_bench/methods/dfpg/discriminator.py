"""DFPGnet channel-attention feature discriminator ``D^c`` (seed 002 §3.4, eqs. 4–5, Fig. 4a).

The authors did not release this network; it is built here from the paper's description:

- ``CA_i``: a channel-attention (squeeze-excitation) module on each input prior
  ``P_i`` (64 / 128 / 256 channels at 1, 1/2, 1/4 resolution): ``P_i' = P_i * w_i(P_i)`` with
  ``w_i = sigmoid(W2 relu(W1 avgpool(P_i)))`` (eq. 4);
- ``D_f,i``: feature processing blocks ``conv3x3 (to half the output width) -> LeakyReLU(0.2)
  -> conv4x4 stride 2 -> LeakyReLU(0.2)``, chained with channel concatenation (eq. 5):
  ``D^c(P) = D_h(D_f,3(P_3' ⊕ D_f,2(P_2' ⊕ D_f,1(P_1'))))``;
- ``D_h``: conv3x3, LeakyReLU, global average pool, linear -> one logit per image.

Layer sizes (block outputs ``2w, 4w, 8w`` with ``w = 64``) and the block form are this project's
choice: the paper gives only the structure above. ``channel_attention=False`` replaces every
``CA_i`` by the identity (ablation B5, "Dis").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

import torch
from torch import nn

from .model import VGG_PRIOR_CHANNELS, SqueezeExcitation


@dataclass(frozen=True)
class FeatureDiscriminatorConfig:
    width: int = 64
    channel_attention: bool = True
    se_reduction: int = 16
    in_channels: tuple[int, int, int] = VGG_PRIOR_CHANNELS

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_channels"] = list(self.in_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureDiscriminatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown feature-discriminator config keys {unknown}; known: {sorted(known)}")
        kw = dict(d)
        if "in_channels" in kw:
            kw["in_channels"] = tuple(int(v) for v in kw["in_channels"])
        return cls(**kw)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    hidden = max(1, c_out // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, hidden, 3, 1, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(hidden, c_out, 4, 2, 1), nn.LeakyReLU(0.2),
    )


class ChannelAttentionFeatureDiscriminator(nn.Module):
    """``forward(priors) -> (N,)`` logits; ``priors`` = 3 feature maps as the prior stream gives them.

    ``priors[i]``: ``(N, in_channels[i], H / 2**i, W / 2**i)`` with H, W multiples of 8.
    :meth:`attend` exposes ``CA_i`` for the prior loss (eq. 9).
    """

    def __init__(self, config: FeatureDiscriminatorConfig | None = None):
        super().__init__()
        cfg = config or FeatureDiscriminatorConfig()
        self.config = cfg
        w = cfg.width
        c1, c2, c3 = cfg.in_channels
        if cfg.channel_attention:
            self.ca = nn.ModuleList([SqueezeExcitation(c, cfg.se_reduction) for c in cfg.in_channels])
        else:
            self.ca = nn.ModuleList([nn.Identity() for _ in cfg.in_channels])
        self.f1 = _block(c1, 2 * w)
        self.f2 = _block(2 * w + c2, 4 * w)
        self.f3 = _block(4 * w + c3, 8 * w)
        self.head_conv = nn.Sequential(nn.Conv2d(8 * w, 8 * w, 3, 1, 1), nn.LeakyReLU(0.2))
        self.head_fc = nn.Linear(8 * w, 1)

    def attend(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """``CA_i(x)`` (identity without channel attention)."""
        return self.ca[i](x)

    def forward(self, priors: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(priors) != 3:
            raise ValueError(f"the feature discriminator takes 3 prior maps, got {len(priors)}")
        p1, p2, p3 = (self.attend(i, p) for i, p in enumerate(priors))
        h = self.f1(p1)
        h = self.f2(torch.cat([p2, h], 1))
        h = self.f3(torch.cat([p3, h], 1))
        h = self.head_conv(h).mean(dim=(2, 3))
        return self.head_fc(h).squeeze(1)
