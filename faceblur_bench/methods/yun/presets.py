"""Yun et al. training recipes: the paper's description and the released notebooks' recipe.

==========  ==================================================================================
paper       seed 001 §III-C/D, §IV-A: 7-layer discriminators with one score per image, L_VGG on
            VGG-19 pool1–pool5 (equal weights), batch 64, staged training (G + D_g for 200
            epochs, then D_l is added), horizontal flips
notebooks   ``FaceSRnDeblur_train.ipynb`` (METHODS.md §B.2): 5-layer PatchGAN (30×30 map),
            L_VGG on relu1_1 … relu5_1 weighted 1/32, 1/16, 1/8, 1/4, 1, batch 16, both
            discriminators from the start, no flips, 1001 epochs
==========  ==================================================================================

Both: L = L_GAN(D_g) + L_GAN(D_l) + 100·L_pix + 10·L_VGG (LSGAN), Adam lr 2e-4, β (0.5, 0.999),
one Adam for both discriminators, no lr schedule, the generator with batch norm. The paper
gives no total epoch count; its preset keeps the notebooks' 1001.
"""

from __future__ import annotations

from typing import Any

from .discriminators import YunDiscriminatorConfig
from .networks import YunGeneratorConfig

DEFAULT_PRESET = "notebooks"

#: pix2pixHD-style per-layer weights of the notebooks' VGGLoss
NOTEBOOK_VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)

DEFAULTS: dict[str, Any] = {
    "epochs": 1001,
    "batch_size": 16,
    "model": {
        "generator": YunGeneratorConfig().to_dict(),
        "discriminator": YunDiscriminatorConfig().to_dict(),
    },
    "optim": {"lr": 2e-4, "betas": [0.5, 0.999]},
    "loss": {
        "lambda_pix": 100.0,
        "lambda_vgg": 10.0,
        "vgg_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        "vgg_weights": list(NOTEBOOK_VGG_WEIGHTS),
        # epoch (0-based) from which D_l and its adversarial term are active (paper: 200)
        "local_from_epoch": 0,
    },
    "data": {
        "hflip": False,
        # images held out for validation ("auto": 10 %, at most 100); the release's valx8/ +
        # val_GT/ are used instead when the data root holds them
        "val_images": "auto",
        # on-the-fly synthesis from sharp faces (used when --data-root holds no trainx8/);
        # Gong et al.'s motion flow is not released: the project's kernels stand in (methods/yun/data.py)
        "kernel_kind": "random-walk",
        "kernel_sizes": [13, 15, 17, 19, 21, 23, 25, 27],
        "kernel_bank_size": 32,
        "kernel_seed": 0,
        "noise_sigma": 0.0,
    },
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "batch_size": 64,
        "model": {"discriminator": {"layers": 7}},
        "loss": {"vgg_layers": ["pool1", "pool2", "pool3", "pool4", "pool5"],
                 "vgg_weights": [1.0] * 5, "local_from_epoch": 200},
        "data": {"hflip": True},
    },
    "notebooks": {},
}

DESCRIPTIONS: dict[str, str] = {
    "paper": "as the paper describes: 7-layer Ds, VGG-19 pool1-5, batch 64, D_l added after 200 epochs, flips",
    "notebooks": "as the released notebooks train: PatchGAN Ds, VGG-19 relu1_1-5_1 (1/32..1), batch 16, no staging",
}
