"""DFPGnet losses (seed 002 eqs. 6–10). All return scalar tensors (means over the batch).

Discriminator and generator outputs are *logits* ``l``; ``D = sigmoid(l)``, so
``-log D = softplus(-l)`` and ``-log(1 - D) = softplus(l)`` (numerically stable forms).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

#: λ_G,adv and λ_prior of seed 002 eq. 10
LAMBDA_ADV: float = 0.05
LAMBDA_PRIOR: float = 1.0


def pixel_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 7: L1 distance, mean over all elements."""
    return (restored - target).abs().mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 6: ``-E[log D(P)] - E[log(1 - D(P̂))]`` on ``(N,)`` logits."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 8: ``-E[log D(P̂)]``."""
    return F.softplus(-fake_logits).mean()


def channel_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit L2 norm along channels at every position of ``(N, C, H, W)``."""
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)


def prior_loss(pred: Sequence[torch.Tensor], target: Sequence[torch.Tensor],
               attend: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
               reduction: str = "mean") -> torch.Tensor:
    """Eq. 9: ``Σ_i Σ_hw || n(CA_i(P_i))_hw - n(CA_i(P̂_i))_hw ||²`` with ``n`` = channel normalisation.

    pred / target: the 3 estimated / VGGFace feature maps (same shapes pairwise).
    attend: ``CA_i`` of the (frozen) feature discriminator, or None for uniform channel
      weights (ablations B3–B5).
    reduction: ``"mean"`` (default) averages the per-position squared distance over ``h, w``;
      ``"sum"`` sums it as eq. 9 is written. With ``"sum"`` the loss grows with the image area
      (16,384 positions at 128x128), which would make λ_prior = 1 dwarf the L1 pixel loss; the
      authors' released training code averages, so ``"mean"`` is the default. Both then average
      over the batch.
    """
    if len(pred) != len(target):
        raise ValueError(f"{len(pred)} predicted priors but {len(target)} targets")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    total = pred[0].new_zeros(())
    for i, (p, t) in enumerate(zip(pred, target)):
        if p.shape != t.shape:
            raise ValueError(f"prior {i}: predicted {tuple(p.shape)} vs target {tuple(t.shape)}")
        if attend is not None:
            p, t = attend(i, p), attend(i, t)
        d = (channel_normalize(t) - channel_normalize(p)).pow(2).sum(1)  # (N, H, W)
        per_image = d.flatten(1).mean(1) if reduction == "mean" else d.flatten(1).sum(1)
        total = total + per_image.mean()
    return total


def feature_loss(pred: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> torch.Tensor:
    """Perceptual / feature loss ``Σ_l MSE(θ_l(a), θ_l(b))`` (mean over elements per layer)."""
    total = pred[0].new_zeros(())
    for p, t in zip(pred, target):
        total = total + F.mse_loss(p, t)
    return total
