"""CFMD-GAN training defaults, the released recipe and the ablation presets of seed 003 Table 5.

Defaults = the paper's objective (seed 003 §4.3, eqs. 11–18) on the released generator
architecture (the authors' weights load into it):

- D: L_D = L_Denc + L_Ddec + λ_Q·L_Q, λ_Q = 0.05 (log-losses; the decoder term per pixel);
- G: L_G = 0.05·L_ar + 0.1·L_adv + 1·L_pix + 0.01·L_per, L_pix = Charbonnier (ε = 1e-3) summed
  over the three output scales, L_per = LPIPS (AlexNet, v0.1);
- Adam(1e-4, β = (0.9, 0.999)) for G and D, ×0.99 per epoch; batch 8; random scale 1.0–1.5 and a
  random 256² crop; (blur, FMR-ordered frame i, u_i = i/(n−1)) triples.

===========  ====================================================================================
paper        the defaults above (Table 5 row 4: CADC + CACA + FMR)
released     the authors' train.py losses (METHODS.md §A.2) without its bugs: L1 over the three
             scales (GT bilinear ↓½, ↓¼), no LPIPS term, λ_adv 0.01, G's λ_ar 0.05,
             D = ½·(BCE terms) + ½·(both Q MSEs); BCE applied once to the sigmoid outputs (the
             release applies a second sigmoid), crops really crop
cadc-only    Table 5 row 1: CADC without CACA (plain channel attention)
caca-only    Table 5 row 2: CACA without CADC (3×3 conv instead)
no-fmr       Table 5 row 3: frames in temporal order instead of FMR order
paper-block  the paper's ContAda block / mapping variant (Fig. 6) instead of the released one
===========  ====================================================================================
"""

from __future__ import annotations

import difflib
from typing import Any

from ...errors import UnknownNameError
from .discriminator import DiscriminatorConfig
from .networks import GeneratorConfig

DEFAULT_PRESET = "paper"

DEFAULTS: dict[str, Any] = {
    "model": {
        "generator": GeneratorConfig().to_dict(),
        "discriminator": DiscriminatorConfig().to_dict(),
    },
    "optim": {"lr": 1e-4, "betas": [0.9, 0.999], "gamma": 0.99},
    "loss": {
        "pixel": "charbonnier",       # "charbonnier" | "l1"
        "charbonnier_eps": 1e-3,
        "lambda_pix": 1.0,
        "lambda_per": 0.01,           # 0 = no LPIPS term (no LPIPS network is built)
        "lambda_adv": 0.1,
        "lambda_ar": 0.05,
        "lambda_q": 0.05,             # weight of L_Q in L_D
        "d_gan_scale": 1.0,           # factor on L_Denc + L_Ddec in L_D (released ½)
    },
    "data": {
        "crop": 256,
        "scale_min": 1.0,
        "scale_max": 1.5,
        "frame_order": "fmr",         # "fmr" (the training list's order) | "temporal"
        "samples_per_epoch": 12000,   # released TRAINSET_ARGS.num_images; None = every triple once
        "videos": "train",            # "train" (the release's 83 TRAIN_DIRS) | "all-but-test"
        "val_moment": 0.5,
    },
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "released": {"loss": {"pixel": "l1", "lambda_per": 0.0, "lambda_adv": 0.01, "lambda_ar": 0.05,
                          "lambda_q": 0.5, "d_gan_scale": 0.5}},
    "cadc-only": {"model": {"generator": {"cadc": True, "caca": False}}},
    "caca-only": {"model": {"generator": {"cadc": False, "caca": True}}},
    "no-fmr": {"data": {"frame_order": "temporal"}},
    "paper-block": {"model": {"generator": {"variant": "paper"}}},
}

DESCRIPTIONS: dict[str, str] = {
    "paper": "paper objective (Charbonnier x3 + LPIPS + adv enc/dec + λ_Q regression), CADC+CACA+FMR",
    "released": "authors' train.py losses without its bugs (L1 x3, no LPIPS, λ_adv 0.01, Q weight ½)",
    "cadc-only": "Table 5 row 1: CADC, no CACA",
    "caca-only": "Table 5 row 2: CACA, no CADC",
    "no-fmr": "Table 5 row 3: temporal frame order instead of FMR",
    "paper-block": "paper's ContAda block and 64-ch bilinear mapping (Fig. 6) instead of the release's",
}

def preset(name: str) -> dict[str, Any]:
    """Override dict of a CFMD-GAN preset (case-insensitive); unknown -> "did you mean"."""
    key = name.lower()
    if key not in PRESETS:
        raise UnknownNameError("CFMD-GAN preset", name, list(PRESETS),
                               difflib.get_close_matches(key, list(PRESETS), n=2))
    return PRESETS[key]


def generator_config(name: str | None = None, **overrides: Any) -> GeneratorConfig:
    """The generator of preset ``name`` (default: the released architecture) with ``overrides``."""
    d = GeneratorConfig().to_dict()
    if name is not None:
        d.update(preset(name).get("model", {}).get("generator", {}))
    d.update(overrides)
    return GeneratorConfig.from_dict(d)
