"""MSPL-GAN losses (METHODS.md §D; the authors' ``src/train.py``). Scalars are batch means.

Semantic progression: stage ``k < 3`` restores only the face region of class ``k + 1`` of the
4-class label map (MSPL's ``train_label_cls4``; channel ``k + 1`` of its one-hot encoding
``Y``), stage 3 the whole face::

    target_k = S * Y[:, k+1]     out_k' = out_k * Y[:, k+1]      (k = 0, 1, 2)
    target_3 = S                 out_3' = out_3

    L_G = Σ_k |out_k' - target_k|_1  +  0.05 · L_adv  +  0.05 · |φ(out_3) - φ(S)|_1
    L_D = ½ (BCE(D(targets), 1) + BCE(D(outs'), 0))

``|·|_1`` is the mean absolute difference over all elements (masked-out pixels included, as
``nn.L1Loss`` averages them); ``D`` is the multi-stage discriminator on the four stage images
(:class:`.networks.MultiStageDiscriminator`); ``L_adv = BCE(D(outs'), 1)``; ``φ`` is VGGFace16
``conv3_2`` (``vgg16.features[:13]``, before its ReLU; with several layers configured, the
sum of their L1 terms), inputs in [-1, 1]. All images are in [-1, 1].

Unlike the released trainer, which feeds *detached* outputs to ``D`` and ``φ`` in the generator
step (so only the L1 terms trained the generator), these losses keep the graph: the adversarial
and VGG terms reach the generator.

Discriminator outputs are logits ``l``: ``BCE(sigmoid(l), 1) = softplus(-l)`` and
``BCE(sigmoid(l), 0) = softplus(l)`` (the numerically stable forms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .networks import N_STAGES

LAMBDA_L1: float = 1.0
LAMBDA_ADV: float = 0.05
LAMBDA_VGG: float = 0.05
#: VGGFace16 layer of the feature loss (the release's ``vgg16.features[:13]``)
VGG_LAYER: str = "conv3_2"
#: 4-class label map of MSPL's training set
N_CLASSES: int = 4


def one_hot(labels: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """``(N, H, W)`` int class map -> ``(N, n_classes, H, W)`` float one-hot."""
    if labels.dim() != 3:
        raise ValueError(f"label maps must be (N, H, W), got {tuple(labels.shape)}")
    return F.one_hot(labels.long(), n_classes).permute(0, 3, 1, 2).float()


def stage_masks(onehot: torch.Tensor) -> list[torch.Tensor]:
    """Masks ``(N, 1, H, W)`` of stages 0, 1, 2: channels 1, 2, 3 of the one-hot label map."""
    if onehot.dim() != 4 or onehot.shape[1] != N_CLASSES:
        raise ValueError(
            f"one-hot label maps must be (N, {N_CLASSES}, H, W), got {tuple(onehot.shape)}"
        )
    return [onehot[:, k + 1 : k + 2] for k in range(N_STAGES - 1)]


def stage_targets(sharp: torch.Tensor, onehot: torch.Tensor) -> list[torch.Tensor]:
    """Ground truths of the four stages: the sharp face masked per stage, then the whole face."""
    return [sharp * m for m in stage_masks(onehot)] + [sharp]


def masked_stages(outputs: Sequence[torch.Tensor], onehot: torch.Tensor) -> list[torch.Tensor]:
    """The generator's stage outputs masked like :func:`stage_targets` (``out_3`` unmasked)."""
    if len(outputs) != N_STAGES:
        raise ValueError(f"MSPL-GAN has {N_STAGES} stage outputs, got {len(outputs)}")
    return [o * m for o, m in zip(outputs, stage_masks(onehot))] + [outputs[-1]]


def stage_l1_loss(
    outputs: Sequence[torch.Tensor], sharp: torch.Tensor, onehot: torch.Tensor
) -> torch.Tensor:
    """``Σ_k mean |out_k' - target_k|`` over the four stages (weight 1 each)."""
    total = sharp.new_zeros(())
    for o, t in zip(masked_stages(outputs, onehot), stage_targets(sharp, onehot)):
        total = total + (o - t).abs().mean()
    return total


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``½ (BCE(D(real), 1) + BCE(D(fake), 0))`` on logits (any shape, mean over elements)."""
    return 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())


def generator_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``BCE(D(fake), 1)`` on logits (unweighted; the trainer multiplies by λ_adv)."""
    return F.softplus(-fake_logits).mean()


def vgg_l1_loss(fake_features: torch.Tensor, real_features: torch.Tensor) -> torch.Tensor:
    """``mean |φ(out_3) - φ(S)|`` (unweighted; the trainer multiplies by λ_vgg)."""
    if fake_features.shape != real_features.shape:
        raise ValueError(
            f"VGG features {tuple(fake_features.shape)} vs {tuple(real_features.shape)}"
        )
    return (fake_features - real_features).abs().mean()


def discriminator_objective(
    outputs: Sequence[torch.Tensor],
    sharp: torch.Tensor,
    onehot: torch.Tensor,
    disc: Callable[[list[torch.Tensor]], torch.Tensor],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_D`` of one batch: real = the stage targets, fake = the masked outputs (detached here,
    so the discriminator step never reaches the generator). Returns (loss, detached logs)."""
    real = stage_targets(sharp, onehot)
    fake = [o.detach().to(sharp.dtype) for o in masked_stages(outputs, onehot)]
    n = sharp.shape[0]
    # one forward over real and fake together (one spectral-norm power iteration per step)
    logits = disc([torch.cat([r, f], 0) for r, f in zip(real, fake)]).float()
    loss = discriminator_loss(logits[:n], logits[n:])
    return loss, {
        "d_loss": loss.detach(),
        "d_real_p": torch.sigmoid(logits[:n]).mean().detach(),
        "d_fake_p": torch.sigmoid(logits[n:]).mean().detach(),
    }


def generator_objective(
    outputs: Sequence[torch.Tensor],
    sharp: torch.Tensor,
    onehot: torch.Tensor,
    disc: Callable[[list[torch.Tensor]], torch.Tensor] | None,
    vgg: Callable[[torch.Tensor], Sequence[torch.Tensor]] | None,
    lambda_l1: float = LAMBDA_L1,
    lambda_adv: float = LAMBDA_ADV,
    lambda_vgg: float = LAMBDA_VGG,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_G`` of one batch (module docstring). ``disc`` (frozen by the caller) and ``vgg`` see the
    outputs *with* their graph; either may be None to drop its term.
    Returns (loss, detached logs)."""
    outs = [o.float() for o in outputs]
    l1 = stage_l1_loss(outs, sharp, onehot)
    total = lambda_l1 * l1
    logs = {"g_l1": l1.detach()}
    if disc is not None:
        adv = generator_adv_loss(disc(masked_stages(outs, onehot)).float())
        total = total + lambda_adv * adv
        logs["g_adv"] = adv.detach()
    if vgg is not None:
        with torch.no_grad():
            real = [f.float() for f in vgg(sharp)]
        fake = [f.float() for f in vgg(outs[-1])]
        feat = sum((vgg_l1_loss(f, r) for f, r in zip(fake, real)), sharp.new_zeros(()))
        total = total + lambda_vgg * feat
        logs["g_vgg"] = feat.detach()
    logs["g_total"] = total.detach()
    return total, logs
