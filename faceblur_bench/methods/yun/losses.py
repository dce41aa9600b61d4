"""Yun et al. losses (seed 001 eqs. 1–6). Every function returns a scalar tensor.

Images are ``(N, 3, 256, 256)`` in [-1, 1]; the face mask ``M_face`` is ``(N, 1 or 3, 256,
256)`` in [0, 1] and multiplies images in that range (as the notebooks do: outside the face the
masked image is 0, mid-grey). Discriminator outputs are LSGAN score maps (no sigmoid).

- :func:`lsgan_d_loss` — the discriminator side of eqs. 2–3 for one discriminator:
  ``mean((D(real) - 1)²) + mean(D(fake)²)``. The notebooks average the four terms of D_g and
  D_l with 0.25 (:func:`discriminators_loss`).
- :func:`lsgan_g_loss` — the generator side: ``mean((D(fake) - 1)²)``.
- :func:`pixel_loss` — eq. 4: ``L1(Î_HRB, I_HRB) + L1(Î_HR, I_HR) + L1(Î_HR⊙M, I_HR⊙M)``, each a
  mean over elements.
- :func:`vgg_loss` — eq. 5: ``Σ_i w_i · mean|f_i(Î_HR) - f_i(I_HR)|`` (L1 mean per layer; the
  paper's weights are 1, the notebooks' 1/32 … 1).
- :func:`generator_loss` — eq. 6: ``L_GAN(D_g) + L_GAN(D_l) + λ1·L_pix + λ2·L_VGG`` with
  λ1 = 100, λ2 = 10.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

LAMBDA_PIX: float = 100.0
LAMBDA_VGG: float = 10.0


def lsgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``mean((D(real) - 1)²) + mean(D(fake)²)`` (fake scores from detached generator outputs)."""
    return (real_scores - 1.0).pow(2).mean() + fake_scores.pow(2).mean()


def lsgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """``mean((D(fake) - 1)²)``: the generator wants the discriminator to say 1."""
    return (fake_scores - 1.0).pow(2).mean()


def discriminators_loss(g_real: torch.Tensor, g_fake: torch.Tensor,
                        l_real: torch.Tensor | None, l_fake: torch.Tensor | None) -> torch.Tensor:
    """The notebooks' joint D loss: ``0.25·[LS(D_g) + LS(D_l)]`` over the four terms; without
    D_l (the paper's first stage) ``0.5·LS(D_g)``, the same per-term weight ×2 for two terms."""
    if l_real is None or l_fake is None:
        return 0.5 * lsgan_d_loss(g_real, g_fake)
    return 0.25 * (lsgan_d_loss(g_real, g_fake) + lsgan_d_loss(l_real, l_fake))


def pixel_loss(blurred_hr_hat: torch.Tensor, blurred_hr: torch.Tensor, sharp_hr_hat: torch.Tensor,
               sharp_hr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 4 (three L1 means); ``mask`` broadcasts over channels."""
    return ((blurred_hr_hat - blurred_hr).abs().mean() + (sharp_hr_hat - sharp_hr).abs().mean()
            + (sharp_hr_hat * mask - sharp_hr * mask).abs().mean())


def vgg_loss(feats_hat: Sequence[torch.Tensor], feats_gt: Sequence[torch.Tensor],
             weights: Sequence[float]) -> torch.Tensor:
    """Eq. 5: weighted sum over layers of the L1 mean between feature maps (targets detached)."""
    if not len(feats_hat) == len(feats_gt) == len(weights):
        raise ValueError(f"{len(feats_hat)} predicted and {len(feats_gt)} target feature maps, "
                         f"{len(weights)} weights: give one weight per VGG layer")
    total = feats_hat[0].new_zeros(())
    for w, a, b in zip(weights, feats_hat, feats_gt):
        total = total + float(w) * (a - b.detach()).abs().mean()
    return total


def generator_loss(g_fake: torch.Tensor, l_fake: torch.Tensor | None, l_pix: torch.Tensor,
                   l_vgg: torch.Tensor, lambda_pix: float = LAMBDA_PIX,
                   lambda_vgg: float = LAMBDA_VGG) -> torch.Tensor:
    """Eq. 6: ``LS_G(D_g) + LS_G(D_l) + λ1·L_pix + λ2·L_VGG`` (no D_l term when ``l_fake`` is None)."""
    adv = lsgan_g_loss(g_fake)
    if l_fake is not None:
        adv = adv + lsgan_g_loss(l_fake)
    return adv + lambda_pix * l_pix + lambda_vgg * l_vgg
