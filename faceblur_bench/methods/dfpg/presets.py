"""DFPGnet defaults and the ablation presets of seed 002 Table 4.

====  ===============================================================================
B1    deblurring stream only (no prior stream, no transforms), L_pixel
B2    B1 + perceptual loss on the output (VGGFace relu1_2/2_2/3_3, "Per")
B3    + prior stream ("DFP") without feature transforms; L_pixel + L_prior (uniform)
B4    B3 + SSFT/SFT feature transforms ("FT")
B5    B4 + feature discriminator without channel attention ("Dis"), uniform prior loss
B6    B4 + channel-attention feature discriminator and CA-weighted prior loss (full DFPGnet)
====  ===============================================================================

The paper does not give the perceptual-loss weight of B2 (λ_per = 1 here) nor how B3–B5
supervise the prior stream without the CA modules (eq. 9 with uniform channel weights here).
"""

from __future__ import annotations

from typing import Any

from ..training import lookup_preset
from .discriminator import FeatureDiscriminatorConfig
from .model import GeneratorConfig

FULL = "B6"

DEFAULTS: dict[str, Any] = {
    "optim": {"lr_d": 1e-5},  # seed 002 §4.1: G 1e-4, D 1e-5
    "model": {
        "generator": GeneratorConfig().to_dict(),
        "discriminator": FeatureDiscriminatorConfig().to_dict(),
    },
    "loss": {
        "perceptual": False,
        "prior": True,
        "adversarial": True,
        "lambda_adv": 0.05,
        "lambda_prior": 1.0,
        "lambda_per": 1.0,
        "prior_reduction": "mean",
    },
}


def _p(prior_stream: bool, ft: bool, per: bool, prior: bool, adv: bool, ca: bool) -> dict[str, Any]:
    return {
        "model": {"generator": {"prior_stream": prior_stream, "feature_transform": ft},
                  "discriminator": {"channel_attention": ca}},
        "loss": {"perceptual": per, "prior": prior, "adversarial": adv},
    }


PRESETS: dict[str, dict[str, Any]] = {
    "B1": _p(False, False, False, False, False, False),
    "B2": _p(False, False, True, False, False, False),
    "B3": _p(True, False, False, True, False, False),
    "B4": _p(True, True, False, True, False, False),
    "B5": _p(True, True, False, True, True, False),
    "B6": _p(True, True, False, True, True, True),
}

DESCRIPTIONS: dict[str, str] = {
    "B1": "deblurring stream only, L_pixel",
    "B2": "B1 + VGGFace perceptual loss",
    "B3": "+ prior stream without feature transforms, L_prior",
    "B4": "+ SSFT/SFT feature transforms",
    "B5": "+ feature discriminator (no channel attention)",
    "B6": "+ channel-attention discriminator and prior loss (full DFPGnet)",
}


def preset(name: str) -> dict[str, Any]:
    """Override dict of a DFPG ablation preset (case-insensitive name)."""
    return lookup_preset("DFPG ablation", PRESETS, name)
