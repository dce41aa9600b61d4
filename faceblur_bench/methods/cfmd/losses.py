"""CFMD-GAN objectives (seed 003 §4.3, eqs. 11–18; METHODS.md §A.2).

All image tensors are ``(N, 3, H, W)`` in [0, 1]; ``u2d`` is the u-map ``(N, 1, H, W)``;
discriminator outputs are the probability maps of :class:`.discriminator.CFMDDiscriminator`
(``enc`` global, ``dec`` per pixel, ``q`` = û_2D). Every term is computed in float32.

- L_Denc, L_Ddec (eq. 11) are read as the standard GAN log-losses
  ``BCE(D(b, s), 1) + BCE(D(b, G(b,u)), 0)`` (the printed "−log D(real) + log D(fake)" is
  unbounded below); the decoder term is the per-pixel mean.
- L_Q (eq. 12) = mean (u_2D − Q(b,s))² + mean (u_2D − Q(b,G))²; L_ar (eq. 14) = the second term,
  minimised by G.
- L_adv (eq. 15), the non-saturating generator form: BCE(D_enc(b,G), 1) + BCE(D_dec(b,G), 1).
- L_pix (eq. 16) = Σ over the three output scales of the element-wise Charbonnier mean
  ``mean sqrt((s_n − ŝ_n)² + ε²)``, ε = 1e-3 (MPRNet's form, the paper's ref. [83]); ground truth
  at ½ and ¼ by bilinear resizing (the released code); the released recipe uses L1 instead.
- L_per (eq. 17) = LPIPS (AlexNet trunk, v0.1 linear heads) on inputs mapped to [−1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ... import weights
from ...errors import WeightsIntegrityError

#: probabilities are clamped to [EPS, 1 - EPS] before the log (float32 sigmoid saturates at ~1e-8)
EPS = 1e-7


def bce(p: torch.Tensor, real: bool) -> torch.Tensor:
    """Mean binary cross-entropy of probabilities ``p`` against an all-1 (``real``) or all-0 target."""
    p = p.float().clamp(EPS, 1.0 - EPS)
    return -(p.log() if real else (1.0 - p).log()).mean()


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``mean sqrt((pred − target)² + ε²)`` over every element."""
    d = pred.float() - target.float()
    return torch.sqrt(d * d + eps * eps).mean()


def sharp_pyramid(sharp: torch.Tensor, outputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Ground truth at each output's size (bilinear, align_corners=False; identity at full size)."""
    out = []
    for o in outputs:
        if tuple(o.shape[-2:]) == tuple(sharp.shape[-2:]):
            out.append(sharp.float())
        else:
            out.append(F.interpolate(sharp.float(), size=o.shape[-2:], mode="bilinear", align_corners=False))
    return out


def pixel_loss(outputs: Sequence[torch.Tensor], sharp: torch.Tensor, kind: str = "charbonnier",
               eps: float = 1e-3) -> torch.Tensor:
    """L_pix: Σ_n over G's outputs [¼, ½, 1] of Charbonnier (or ``kind="l1"`` mean |·|)."""
    total = torch.zeros((), device=sharp.device)
    for o, s in zip(outputs, sharp_pyramid(sharp, outputs)):
        total = total + (charbonnier(o, s, eps) if kind == "charbonnier" else (o.float() - s).abs().mean())
    return total


def regression(q: torch.Tensor, u2d: torch.Tensor) -> torch.Tensor:
    """Per-pixel mean ``(u_2D − Q)²`` (the terms of eqs. 12 and 14)."""
    return (u2d.float() - q.float()).pow(2).mean()


def discriminator_loss(real: dict[str, torch.Tensor], fake: dict[str, torch.Tensor], u2d: torch.Tensor,
                       lambda_q: float = 0.05, gan_scale: float = 1.0
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_D = gan_scale·(L_Denc + L_Ddec) + λ_Q·L_Q (eq. 13); ``fake`` from a detached G output.

    Returns (loss, detached parts ``d_enc``, ``d_dec``, ``d_q``)."""
    l_enc = bce(real["enc"], True) + bce(fake["enc"], False)
    l_dec = bce(real["dec"], True) + bce(fake["dec"], False)
    l_q = regression(real["q"], u2d) + regression(fake["q"], u2d)
    total = gan_scale * (l_enc + l_dec) + lambda_q * l_q
    return total, {"d_enc": l_enc.detach(), "d_dec": l_dec.detach(), "d_q": l_q.detach()}


def adversarial_loss(fake: dict[str, torch.Tensor]) -> torch.Tensor:
    """L_adv (eq. 15): BCE(D_enc(b, G), 1) + BCE(D_dec(b, G), 1) (per-pixel mean for the decoder)."""
    return bce(fake["enc"], True) + bce(fake["dec"], True)


# -- LPIPS ------------------------------------------------------------------------------------------
#: lpips AlexNet trunk slice k holds torchvision ``features[i]`` for i in these ranges
_ALEX_SLICES = (range(2), range(2, 5), range(5, 8), range(8, 10), range(10, 12))
LPIPS_BACKBONE = "lpips-alex-backbone"


class LPIPSLoss(nn.Module):
    """L_per: mean over the batch of LPIPS(ŝ, s) (AlexNet, v0.1); inputs in [0, 1] are mapped to
    [−1, 1]; gradients flow to the inputs, the network itself is frozen.

    The trunk is torchvision's AlexNet file resolved by :func:`faceblur_bench.weights.resolve`
    (``lpips-alex-backbone``; never downloaded), the linear heads are the ones the ``lpips``
    package ships.
    """

    def __init__(self, overrides: dict[str, str] | None = None):
        super().__init__()
        import warnings

        import lpips

        path = weights.resolve(LPIPS_BACKBONE, overrides)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            trunk = {f"slice{k}.{i}.{p}": state[f"features.{i}.{p}"]
                     for k, idx in enumerate(_ALEX_SLICES, 1) for i in idx for p in ("weight", "bias")
                     if f"features.{i}.{p}" in state}  # ReLU / pooling layers hold nothing
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.net = lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)
            self.net.net.load_state_dict(trunk, strict=True)
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            raise WeightsIntegrityError(
                f"{path} is not a torchvision AlexNet state dict usable as the LPIPS trunk ({exc})",
                f"use the genuine {weights.get_entry(LPIPS_BACKBONE).filename} "
                f"(`faceblur-bench weights fetch {LPIPS_BACKBONE}`)") from None
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPSLoss:
        return super().train(False)  # always eval (dropout of the heads off)

    def forward(self, restored: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
        return self.net(restored.float() * 2 - 1, sharp.float() * 2 - 1).mean()
