"""SAPPGAN defaults and the ablation presets of seed 000 Table 3.

Table 3 columns: UD (U-Net discriminator adversarial loss), SAPP (pixel-wise projection
conditioned on the label map), PW (prediction-weighted decoder loss), C2F (coarse-to-fine α).
From the paper's text (§IV-E):

====  ==========================================================
S0    generator only: L_pixel + L_feat (no adversarial loss)
S1    + U-Net discriminator (unconditional decoder, per-pixel mean BCE, α = 0.5)
S2    S1 + PW loss
S3    S1 with the SAPP (conditional) discriminator instead of the U-Net discriminator
S4    S3 + PW loss
S5    S4 + coarse-to-fine α (the full SAPPGAN)
====  ==========================================================
"""

from __future__ import annotations

from typing import Any

from ..dfpg.model import GeneratorConfig
from ..training import lookup_preset
from .discriminator import SAPPDiscriminatorConfig

FULL = "S5"

DEFAULTS: dict[str, Any] = {
    "model": {
        "generator": GeneratorConfig().to_dict(),
        "discriminator": SAPPDiscriminatorConfig().to_dict(),
    },
    "loss": {
        "adversarial": True,
        "prediction_weighted": True,
        "coarse_to_fine": True,
        # eq. 14 compares VGGFace features of the restored and the sharp image ("output");
        # "prior" instead supervises the generator's estimated priors (the released code)
        "feat_on": "output",
        "feat_distance": "mse",
        "lambda_pixel": 1.0,
        "lambda_feat": 1.0,
        "lambda_adv": 0.06,
    },
}


def _p(adv: bool, cond: bool, pw: bool, c2f: bool) -> dict[str, Any]:
    return {"loss": {"adversarial": adv, "prediction_weighted": pw, "coarse_to_fine": c2f},
            "model": {"discriminator": {"conditional": cond}}}


PRESETS: dict[str, dict[str, Any]] = {
    "S0": _p(False, False, False, False),
    "S1": _p(True, False, False, False),
    "S2": _p(True, False, True, False),
    "S3": _p(True, True, False, False),
    "S4": _p(True, True, True, False),
    "S5": _p(True, True, True, True),
}

DESCRIPTIONS: dict[str, str] = {
    "S0": "DFPGnet generator, L_pixel + L_feat, no adversarial loss",
    "S1": "+ U-Net discriminator (per-image + per-pixel BCE)",
    "S2": "+ U-Net discriminator with PW loss",
    "S3": "+ SAPP discriminator (pixel-wise projection), no PW",
    "S4": "+ SAPP discriminator + PW loss",
    "S5": "+ SAPP + PW + coarse-to-fine α (full SAPPGAN)",
}


def preset(name: str) -> dict[str, Any]:
    """Override dict of a SAPPGAN ablation preset (case-insensitive name)."""
    return lookup_preset("SAPPGAN ablation", PRESETS, name)
