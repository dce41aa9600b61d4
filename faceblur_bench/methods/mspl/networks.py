"""MSPL-GAN networks (Lee, Jung & Heo, "Progressive Semantic Face Deblurring", IEEE Access 2020).

Generator (METHODS.md §D; the authors' ``MSPL_Generator(3, 3, n_feats=128, n_blocks=[4,4,4,4])``):

- ``head``: 1x1 convolution 3 -> ``width`` (the authors' ``from_rgb``);
- four stacked U-Nets ``unets[k]`` working on ``width``-channel features, each::

      e1 = enc1(x)                     2 residual blocks at H
      e2 = enc2(down1(e1))             4x4 stride-2 conv, 2 residual blocks at H/2
      m  = middle(down2(e2))           4x4 stride-2 conv, ``middle_blocks[k]`` blocks at H/4
                                       plus a skip over the group
      d2 = dec2(up2(m) + e2)           4x4 stride-2 transposed conv, 2 blocks at H/2
      y  = dec1(up1(d2) + e1)          4x4 stride-2 transposed conv, 2 blocks at H

  U-Net ``k + 1`` takes U-Net ``k``'s output features;
- ``tails[k]``: 1x1 convolution ``width`` -> 3 and ``tanh`` on U-Net ``k``'s output gives the
  stage image ``out_k`` (the authors' ``to_rgb{k}``). Stages 0, 1, 2 are trained on the face
  regions of classes 1, 2, 3 (:mod:`.losses`); ``out_3`` is the restored face.

Residual block: conv3x3 -> LeakyReLU(0.2) -> conv3x3 -> squeeze-excitation (reduction 16), plus
identity (the same block as DFPGnet's, :class:`~faceblur_bench.methods.dfpg.model.ResBlock`). No
normalisation anywhere. The paper configuration has 18,471,308 parameters (SAPPGAN Table 2:
18.5 M).

Input and outputs are ``(N, 3, H, W)`` in [-1, 1] with ``H`` and ``W`` multiples of 4.

Discriminator (:class:`MultiStageDiscriminator`): the paper's discriminator is not described in
our sources and the released ``src/`` has no discriminator file. The authors' repository holds a
"multi-stage progressive" discriminator elsewhere (``scripts/model/discriminator.py``,
``MSPDiscriminator``) that takes the four stage images; this module follows that structure
(one conv stem per stage image, each stage fused with the previous stage's features by channel
concatenation, then a strided patch trunk, spectral norm on every conv) with this project's own
layer sizes and without the LeakyReLU the authors' version applies to its final logits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..dfpg.model import ResBlock, ResGroup

#: number of progressive stages (and stage images) of MSPL-GAN
N_STAGES = 4


def _from_dict(cls: type, d: dict[str, Any], what: str) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} config keys {unknown}; known: {sorted(known)}")
    return dict(d)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of the MSPL-GAN generator (plain values so it can live in a checkpoint).

    ``middle_blocks[k]``: residual blocks in the middle of U-Net ``k`` (its length is the number
    of U-Nets, 4 in the paper); ``level_blocks``: blocks in each encoder / decoder group (2).
    """

    width: int = 128
    middle_blocks: tuple[int, ...] = (4, 4, 4, 4)
    level_blocks: int = 2
    se_reduction: int = 16

    def __post_init__(self) -> None:
        if len(self.middle_blocks) != N_STAGES:
            raise ValueError(
                f"MSPL-GAN has {N_STAGES} U-Nets; "
                f"middle_blocks has {len(self.middle_blocks)} entries"
            )
        if self.width < 1 or self.level_blocks < 1 or min(self.middle_blocks) < 1:
            raise ValueError(f"generator sizes must be positive: {self}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["middle_blocks"] = list(self.middle_blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        kw = _from_dict(cls, d, "MSPL generator")
        if "middle_blocks" in kw:
            kw["middle_blocks"] = tuple(int(v) for v in kw["middle_blocks"])
        return cls(**kw)


def _group(width: int, n: int, se_reduction: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(width, se_reduction) for _ in range(n)])


class UNet(nn.Module):
    """One stage: ``(N, C, H, W)`` features -> ``(N, C, H, W)`` features (H, W multiples of 4)."""

    def __init__(
        self, width: int, middle_blocks: int, level_blocks: int = 2, se_reduction: int = 16
    ):
        super().__init__()
        self.enc1 = _group(width, level_blocks, se_reduction)
        self.down1 = nn.Conv2d(width, width, 4, 2, 1)
        self.enc2 = _group(width, level_blocks, se_reduction)
        self.down2 = nn.Conv2d(width, width, 4, 2, 1)
        self.middle = ResGroup(width, middle_blocks, se_reduction)  # blocks + skip over the group
        self.up2 = nn.ConvTranspose2d(width, width, 4, 2, 1)
        self.dec2 = _group(width, level_blocks, se_reduction)
        self.up1 = nn.ConvTranspose2d(width, width, 4, 2, 1)
        self.dec1 = _group(width, level_blocks, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.down1(e1))
        m = self.middle(self.down2(e2))
        d2 = self.dec2(self.up2(m) + e2)
        return self.dec1(self.up1(d2) + e1)


class MSPLGenerator(nn.Module):
    """``forward(x) -> (out_0, out_1, out_2, out_3)``, each ``(N, 3, H, W)`` in (-1, 1).

    ``x``: ``(N, 3, H, W)`` in [-1, 1], H and W multiples of 4. ``out_3`` is the restored face.
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        cfg = config or GeneratorConfig()
        self.config = cfg
        self.head = nn.Conv2d(3, cfg.width, 1)
        self.unets = nn.ModuleList(
            [UNet(cfg.width, n, cfg.level_blocks, cfg.se_reduction) for n in cfg.middle_blocks]
        )
        self.tails = nn.ModuleList([nn.Conv2d(cfg.width, 3, 1) for _ in cfg.middle_blocks])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.head(x)
        outs = []
        for unet, tail in zip(self.unets, self.tails):
            h = unet(h)
            outs.append(torch.tanh(tail(h)))
        return tuple(outs)


_COUNT_CACHE: dict[str, int] = {}


def count_parameters(config: GeneratorConfig | None = None) -> int:
    """Learnable parameters of the generator for ``config``, built once on the meta device."""
    cfg = config or GeneratorConfig()
    key = json.dumps(cfg.to_dict(), sort_keys=True)
    if key not in _COUNT_CACHE:
        with torch.device("meta"):
            net = MSPLGenerator(cfg)
        _COUNT_CACHE[key] = sum(p.numel() for p in net.parameters())
    return _COUNT_CACHE[key]


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-stage discriminator: stem width ``width``; patch trunk ``width, 2w, 4w, 8w``."""

    width: int = 64
    spectral_norm: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscriminatorConfig:
        return cls(**_from_dict(cls, d, "MSPL discriminator"))


class MultiStageDiscriminator(nn.Module):
    """``forward(stages) -> (N, 1, h, w)`` patch logits; ``stages``: the 4 stage images
    ``(N, 3, H, W)`` in [-1, 1] (masked as in the stage L1 loss), H and W multiples of 8.

    Stage ``k`` enters through its own 3x3 stem; from stage 1 on the stem output is concatenated
    with the previous stage's features and fused by a 3x3 conv (the progression of the
    generator's stages); a 4x4 stride-2 patch trunk (3 downsamplings) gives logits at H/8 - 2.
    """

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        cfg = config or DiscriminatorConfig()
        self.config = cfg
        w = cfg.width

        def sn(m: nn.Module) -> nn.Module:
            return spectral_norm(m) if cfg.spectral_norm else m

        act = nn.LeakyReLU(0.2)
        self.stems = nn.ModuleList([sn(nn.Conv2d(3, w, 3, 1, 1)) for _ in range(N_STAGES)])
        self.fuse = nn.ModuleList(
            [
                nn.Sequential(sn(nn.Conv2d(w if k == 0 else 2 * w, w, 3, 1, 1)), act)
                for k in range(N_STAGES)
            ]
        )
        self.trunk = nn.Sequential(
            sn(nn.Conv2d(w, w, 4, 2, 1)),
            act,
            sn(nn.Conv2d(w, 2 * w, 4, 2, 1)),
            act,
            sn(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)),
            act,
            sn(nn.Conv2d(4 * w, 8 * w, 4, 1, 1)),
            act,
            sn(nn.Conv2d(8 * w, 1, 4, 1, 1)),
        )

    def forward(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(stages) != N_STAGES:
            raise ValueError(
                f"the MSPL discriminator takes {N_STAGES} stage images, got {len(stages)}"
            )
        h: torch.Tensor | None = None
        for k, (img, stem, fuse) in enumerate(zip(stages, self.stems, self.fuse)):
            s = stem(img)
            h = fuse(s if h is None else torch.cat([s, h], 1))
        assert h is not None
        return self.trunk(h)
