"""MSPL-GAN training recipe and presets (METHODS.md §D; the authors' train_configs.py).

Recipe: Adam 1e-4 with β (0.9, 0.999) for generator and discriminator, ExponentialLR γ 0.99 per
epoch, batch 16, 200 epochs; stage L1 ×1, adversarial ×0.05, VGGFace16 ``conv3_2`` L1 ×0.05.
Data: the MSPL training layout with MSPL's 4-class label maps (``train_label_cls4``; the
19-class CelebAMask-HQ maps merged to 4 classes when only those exist), colour jitter 0.5
(brightness, contrast, saturation), random crop 448, resize 128, horizontal flip, rotation by
up to ±270°, blur k13…k27 (or none) drawn per batch, Gaussian noise σ = 2/255 on [0, 1].

=========  ==========================================================================
full       the paper's objective: stage L1 + adversarial + VGGFace L1 (default)
no-adv     stage L1 + VGGFace L1 (no discriminator)
no-vgg     stage L1 + adversarial
l1         stage L1 only — what the released trainer effectively optimised, since it
           detached the outputs before the adversarial and VGG terms
=========  ==========================================================================
"""

from __future__ import annotations

from typing import Any

from .losses import LAMBDA_ADV, LAMBDA_L1, LAMBDA_VGG, VGG_LAYER
from .networks import DiscriminatorConfig, GeneratorConfig

FULL = "full"

DEFAULTS: dict[str, Any] = {
    "epochs": 200,
    "batch_size": 16,
    "optim": {"lr_g": 1e-4, "lr_d": 1e-4},
    "model": {
        "generator": GeneratorConfig().to_dict(),
        "discriminator": DiscriminatorConfig().to_dict(),
    },
    "loss": {
        "adversarial": True,
        "vgg": True,
        "lambda_l1": LAMBDA_L1,
        "lambda_adv": LAMBDA_ADV,
        "lambda_vgg": LAMBDA_VGG,
    },
    "data": {"color_jitter": 0.5, "labels": "auto"},
    "vgg_layers": [VGG_LAYER],
}


def _p(adv: bool, vgg: bool) -> dict[str, Any]:
    return {"loss": {"adversarial": adv, "vgg": vgg}}


PRESETS: dict[str, dict[str, Any]] = {
    "full": _p(True, True),
    "no-adv": _p(False, True),
    "no-vgg": _p(True, False),
    "l1": _p(False, False),
}

DESCRIPTIONS: dict[str, str] = {
    "full": "stage L1 + adversarial ×0.05 + VGGFace L1 ×0.05 (the paper)",
    "no-adv": "stage L1 + VGGFace L1 (no discriminator)",
    "no-vgg": "stage L1 + adversarial",
    "l1": "stage L1 only (what the released trainer optimised: it detached D/VGG inputs)",
}

#: tiny networks for smoke runs (``--tiny``) and the contract tests — never for results
SMOKE_MODEL: dict[str, Any] = {
    "generator": {"width": 8, "middle_blocks": [1, 1, 1, 1], "level_blocks": 1, "se_reduction": 4},
    "discriminator": {"width": 4},
}
