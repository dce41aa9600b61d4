"""Losses of Shen et al. (seed 004 eqs. 4–11).

Images are ``(N, 3, H, W)`` in [0, 1]; label maps ``(N, H, W)`` int64 class indices in
``[0, K)`` with the Helen classes of :data:`HELEN_CLASSES`. Every loss returns a scalar.

Reduction. The paper (MatConvNet) does not state how the norms are normalised. ``reduction``
``"sum"`` (default) sums each norm over pixels and channels of an image and averages over the
batch — MatConvNet's loss-layer convention and the only reading under which eq. 11's weights
(50, 1e-4, 1e-5, 5e-5) give terms of comparable size; ``"mean"`` averages over every element.

- :func:`parsing_loss` L_p (eq. 4): pixel-wise cross-entropy of P's logits against the labels.
- :func:`content_loss` L_c (eq. 5): ``Σ ||ŷ − y_GT||_1`` over the given outputs (the coarse
  and fine outputs at both scales; the half-scale target is ``half(y_GT)``).
- :func:`structural_loss` L_s (eqs. 6–7): ``Σ_k w_k ||M_k ⊙ ŷ − M_k ⊙ y_GT||_1`` over the eight
  components of :data:`STRUCTURAL_CLASSES` with ``w_k = c / A_k``, ``A_k = Σ M_k`` the
  component's area in pixels *in that image*; components absent from an image contribute
  nothing. Per image, then the batch mean. With ``weighting="equal"`` (the CVPR 2018 loss,
  Table 4) ``w_k = c / (H·W)``: one weight for all components (the paper's ``w_k = 1`` with our
  normalisation by the image area).
- :func:`perceptual_loss` L_VGG (eq. 8): ``Σ_l ||φ_l(ŷ) − φ_l(y_GT)||_1`` over the given
  feature maps (VGG-Face pool2 and pool5, :mod:`.vggface`).
- :func:`adversarial_loss` L_adv (eq. 10) ``−log D(ŷ)``; :func:`discriminator_loss` the
  negated eq. 9 objective ``−log D(y_GT) − log(1 − D(ŷ))``; both on D's logits, batch means.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: Helen face-parsing classes (Smith et al. 2013 labelling), index = label value
HELEN_CLASSES: tuple[str, ...] = (
    "background", "face", "left eyebrow", "right eyebrow", "left eye", "right eye", "nose",
    "upper lip", "teeth", "lower lip", "hair",
)
#: the eight components of the local structural loss (§3.3): eyes, brows, nose, lips, teeth
STRUCTURAL_CLASSES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8, 9)
#: eq. 11: λ_s, λ_p, λ_VGG, λ_adv; eq. 7: c
LAMBDA_S: float = 50.0
LAMBDA_P: float = 1e-4
LAMBDA_VGG: float = 1e-5
LAMBDA_ADV: float = 5e-5
C_STRUCT: float = 1.0
REDUCTIONS: tuple[str, ...] = ("sum", "mean")


def _l1(a: torch.Tensor, b: torch.Tensor, reduction: str) -> torch.Tensor:
    a, b = a.float(), b.float()  # losses in float32 under bf16 autocast
    if reduction == "sum":
        return (a - b).abs().flatten(1).sum(1).mean()
    if reduction == "mean":
        return (a - b).abs().mean()
    raise ValueError(f"reduction {reduction!r}; known: {list(REDUCTIONS)}")


def content_loss(outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
                 reduction: str = "sum") -> torch.Tensor:
    """Eq. 5 summed over pairs ``(outputs[i], targets[i])`` (e.g. every scale of G_c and G_f)."""
    if len(outputs) != len(targets) or not outputs:
        raise ValueError("content_loss needs one target per output (at least one)")
    return sum((_l1(o, t, reduction) for o, t in zip(outputs, targets)),
               outputs[0].new_zeros(()))


def parsing_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "sum"
                 ) -> torch.Tensor:
    """Eq. 4: cross-entropy of ``(N, K, H, W)`` logits against ``(N, H, W)`` labels."""
    ce = F.cross_entropy(logits.float(), labels.long(), reduction="none")  # (N, H, W)
    if reduction == "sum":
        return ce.flatten(1).sum(1).mean()
    if reduction == "mean":
        return ce.mean()
    raise ValueError(f"reduction {reduction!r}; known: {list(REDUCTIONS)}")


def component_masks(labels: torch.Tensor, classes: Sequence[int] = STRUCTURAL_CLASSES
                    ) -> torch.Tensor:
    """Binary masks ``(N, len(classes), H, W)`` float of ``labels == k`` for each class."""
    ks = torch.as_tensor(list(classes), device=labels.device).view(1, -1, 1, 1)
    return (labels.unsqueeze(1) == ks).float()


def structural_loss(output: torch.Tensor, target: torch.Tensor, masks: torch.Tensor,
                    weighting: str = "adaptive", c: float = C_STRUCT) -> torch.Tensor:
    """Eqs. 6–7 for masks ``(N, C, H, W)`` in [0, 1] (binary, down-sampled or soft).

    ``weighting="adaptive"``: ``w_k = c / A_k`` with ``A_k = Σ_ij M_k`` of that image (absent
    components, ``A_k = 0``, are skipped); ``"equal"``: ``w_k = c / (H·W)``.
    """
    if masks.shape[0] != output.shape[0] or masks.shape[-2:] != output.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(output.shape)}")
    diff = (output.float() - target.float()).abs().sum(1, keepdim=True)  # (N, 1, H, W)
    per_comp = (masks * diff).flatten(2).sum(2)  # (N, C): ||M_k ⊙ (y − y_GT)||_1
    if weighting == "adaptive":
        area = masks.flatten(2).sum(2)
        w = torch.where(area > 0, c / area.clamp_min(1e-12), torch.zeros_like(area))
    elif weighting == "equal":
        w = torch.full_like(per_comp, c / (output.shape[-2] * output.shape[-1]))
    else:
        raise ValueError(f"structural weighting {weighting!r}; known: ['adaptive', 'equal']")
    return (w * per_comp).sum(1).mean()


def half_masks(masks: torch.Tensor) -> torch.Tensor:
    """Masks at half resolution (2×2 average: the fraction of each coarse pixel covered)."""
    return F.avg_pool2d(masks, 2)


def perceptual_loss(feats_output: Sequence[torch.Tensor], feats_target: Sequence[torch.Tensor],
                    reduction: str = "sum") -> torch.Tensor:
    """Eq. 8: ``Σ_l ||φ_l(ŷ) − φ_l(y_GT)||_1`` over matching feature maps."""
    return sum((_l1(a.float(), b.float(), reduction) for a, b in zip(feats_output, feats_target)),
               feats_output[0].new_zeros((), dtype=torch.float32))


def adversarial_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 10: ``−log D(ŷ) = softplus(−logit)``, batch mean."""
    return F.softplus(-logits_fake.float()).mean()


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """D's side of eq. 9: ``−log D(y_GT) − log(1 − D(ŷ))``, batch mean."""
    return (F.softplus(-logits_real.float()) + F.softplus(logits_fake.float())).mean()
