"""SAPPGAN losses (seed 000 eqs. 7–18). Scalars, averaged over the batch.

Notation: ``Q`` = decoder logits ``(N, 1, H, W)``, ``l`` = encoder logits ``(N,)``;
``A(t) = softplus(t) = log(1 + e^t)``; ``p = sigmoid(Q)`` (eq. 9).

- PW decoder loss (eq. 10): ``Σ_ij ξ(1 - p_r)·A(-Q_r) + Σ_ij ξ(p_f)·A(Q_f)`` with the
  per-image normalisation ``ξ(t)_ij = t_ij / Σ_ij t_ij``. Without PW (ablations S1, S3) the
  weights are ``ξ(1) = 1/(HW)``, i.e. the plain per-pixel mean of the U-Net discriminator.
  The weights are part of the loss (gradients flow through them), as the equation is written.
- Encoder loss (eq. 12): ``-log D_enc(I_GT) - log(1 - D_enc(G(I_blur)))``.
- Generator: ``L_pixel`` L1 (eq. 13); ``L_feat`` VGGFace relu1_2/2_2/3_3 (eq. 14, see
  :func:`feat_loss`); ``L_adv = α L_adv,enc + (1 - α) L_adv,dec`` (eqs. 15–16) with the
  coarse-to-fine ``α = (η_t - η_c)/η_t`` (eq. 17); ``L_G = 1·L_pixel + 1·L_feat + 0.06·L_adv`` (eq. 18).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: λ_pixel, λ_feat, λ_adv of seed 000 eq. 18
LAMBDA_PIXEL: float = 1.0
LAMBDA_FEAT: float = 1.0
LAMBDA_ADV: float = 0.06
#: α used when coarse-to-fine training is off (ablations S1–S4): equal weight on the two
#: decisions. The paper does not state the value; this is the project's choice.
ALPHA_WITHOUT_C2F: float = 0.5
_EPS = 1e-12


def xi(t: torch.Tensor) -> torch.Tensor:
    """Per-image normalisation ξ: ``t / Σ_ij t`` over the spatial dims of ``(N, 1, H, W)``."""
    return t / (t.sum(dim=(-2, -1), keepdim=True) + _EPS)


def decoder_loss(q_real: torch.Tensor, q_fake: torch.Tensor, prediction_weighted: bool = True) -> torch.Tensor:
    """Eq. 10 (PW loss) or, with ``prediction_weighted=False``, the per-pixel mean BCE."""
    if prediction_weighted:
        w_real = xi(1.0 - torch.sigmoid(q_real))
        w_fake = xi(torch.sigmoid(q_fake))
    else:
        w_real = xi(torch.ones_like(q_real))
        w_fake = xi(torch.ones_like(q_fake))
    real = (w_real * F.softplus(-q_real)).sum(dim=(-3, -2, -1))
    fake = (w_fake * F.softplus(q_fake)).sum(dim=(-3, -2, -1))
    return (real + fake).mean()


def encoder_loss(l_real: torch.Tensor, l_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 12 on logits: ``softplus(-l_real) + softplus(l_fake)``, batch mean."""
    return (F.softplus(-l_real) + F.softplus(l_fake)).mean()


def adv_enc_loss(l_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 16, first line: ``-log D_enc(G(I_blur))``."""
    return F.softplus(-l_fake).mean()


def adv_dec_loss(q_fake: torch.Tensor, prediction_weighted: bool = True) -> torch.Tensor:
    """Eq. 16, second line: ``Σ_ij ξ(1 - p_f)·A(-Q_f)`` (``ξ(1)`` weights without PW)."""
    w = xi(1.0 - torch.sigmoid(q_fake)) if prediction_weighted else xi(torch.ones_like(q_fake))
    return (w * F.softplus(-q_fake)).sum(dim=(-3, -2, -1)).mean()


def c2f_alpha(epoch: int, total_epochs: int, coarse_to_fine: bool = True) -> float:
    """Eq. 17: ``α = (η_t - η_c) / η_t`` with ``η_c`` the 0-based current epoch (α = 1 in the
    first epoch, 1/η_t in the last); :data:`ALPHA_WITHOUT_C2F` when C2F is off."""
    if not coarse_to_fine:
        return ALPHA_WITHOUT_C2F
    if total_epochs <= 0 or not 0 <= epoch < total_epochs:
        raise ValueError(f"epoch {epoch} outside [0, {total_epochs})")
    return (total_epochs - epoch) / total_epochs


def adv_loss(l_fake: torch.Tensor, q_fake: torch.Tensor, alpha: float,
             prediction_weighted: bool = True) -> torch.Tensor:
    """Eq. 15: ``α L_adv,enc + (1 - α) L_adv,dec``."""
    return alpha * adv_enc_loss(l_fake) + (1.0 - alpha) * adv_dec_loss(q_fake, prediction_weighted)


def pixel_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 13: L1, mean over all elements."""
    return (restored - target).abs().mean()


def feat_loss(feats_restored: Sequence[torch.Tensor], feats_target: Sequence[torch.Tensor],
              distance: str = "mse") -> torch.Tensor:
    """Eq. 14: ``Σ_l ||θ_l(I_GT) - θ_l(I_deblur)||_2`` over the three VGGFace layers.

    distance ``"mse"`` (default): mean squared error over the elements of each layer (the
    usual reading of an "L2 feature loss"; keeps λ_feat = 1 independent of the image size);
    ``"l2"``: the Euclidean norm of the difference per image, averaged over the batch (the
    literal norm).
    """
    if distance not in ("mse", "l2"):
        raise ValueError(f"distance must be 'mse' or 'l2', got {distance!r}")
    total = feats_restored[0].new_zeros(())
    for a, b in zip(feats_restored, feats_target):
        if distance == "mse":
            total = total + F.mse_loss(a, b)
        else:
            total = total + (a - b).flatten(1).norm(dim=1).mean()
    return total
