"""Training configuration: paper defaults, ablation presets, config files, CLI overrides.

A configuration is a nested dict of plain values (so it can be stored in a checkpoint that
loads with ``torch.load(weights_only=True)``). Layers, lowest first:

1. :data:`COMMON` (paper defaults shared by both trainers: Adam (0.9, 0.999), lr 1e-4 decayed
   x0.99 per epoch, batch 16, 300 epochs, 128x128 crops, flips and rotations, MSPL blur);
2. the method's defaults (``faceblur_bench.methods.<m>.presets.DEFAULTS``);
3. the ablation preset (``--ablation S0..S5`` / ``B1..B6``; the full model when omitted);
4. a JSON or TOML file (``--config FILE``), merged key by key;
5. command-line options (``--epochs``, ``--batch-size``).
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError, UsageError

#: shared defaults (seed 000 §IV-A-2, seed 002 §4.1, MSPL-GAN training pipeline)
COMMON: dict[str, Any] = {
    "epochs": 300,
    "batch_size": 16,
    "optim": {"lr_g": 1e-4, "lr_d": 1e-4, "betas": [0.9, 0.999], "lr_decay": 0.99},
    "data": {
        "image_size": 128,
        "crop": 448,            # random square crop before resizing (MSPL-GAN / SAPPGAN loaders)
        "hflip": True,
        "rotate_deg": 270.0,    # uniform angle in [-270, 270] deg, as the released loaders draw it
        "color_jitter": 0.0,    # MSPL-GAN used 0.5; the SAPPGAN / DFPG papers name only flips and rotations
        "labels": "auto",       # auto | cls19 | cls4 | cls19to4 (see faceblur_bench.train.data)
        "kernels": "auto",      # auto | spline | random-walk | path to a folder of blur_k{K}.mat
        "kernel_sizes": [13, 15, 17, 19, 21, 23, 25, 27],
        "no_blur_option": True,  # draw "k0" (no blur) as a 9th option per batch, as MSPL-GAN does
        "kernel_bank_size": 250,  # kernels per size when generated (spline / random-walk)
        "kernel_seed": 0,
        "noise_sigma": 2.0 / 255.0,  # on [0, 1] (= (1/255) N(0, 4) on [-1, 1], MSPL-GAN)
        "val_images": 100,      # held out from train_img/ when no validationset/ folder exists
        "num_workers": 4,
    },
    "seed": 0,
    "amp": "bf16",              # bf16 autocast on CUDA; ignored on CPU; "off" disables it
    "log_every": 50,            # steps between lines in steps.csv
    "keep_every": 50,           # also keep checkpoints/epoch_NNNN.pth every N epochs (0: never)
    "vgg_layers": ["relu1_2", "relu2_2", "relu3_3"],
}

METHODS = ("sappgan", "dfpg")


def deep_merge(base: dict[str, Any], override: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; unknown keys are refused (typos fail loudly)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        where = f"{path}.{k}" if path else k
        if k not in out:
            close = difflib.get_close_matches(k, list(out), n=2)
            raise UsageError(
                f"unknown config key {where!r}" + (f"; did you mean {close}?" if close else ""),
                f"known keys at this level: {', '.join(sorted(out))}",
            )
        if isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = deep_merge(out[k], v, where)
        else:
            out[k] = copy.deepcopy(v)
    return out


def method_module(method: str):
    if method == "sappgan":
        from ..methods.sappgan import presets
    elif method == "dfpg":
        from ..methods.dfpg import presets
    else:
        raise UnknownNameError("trainable method", method, list(METHODS),
                               difflib.get_close_matches(method, METHODS, n=2))
    return presets


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON (``.json``) or TOML (``.toml``) config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} not found", "pass an existing .json or .toml file to --config")
    text = p.read_text()
    try:
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except Exception as exc:  # JSONDecodeError / TOMLDecodeError
        raise UsageError(f"config file {p} cannot be parsed: {exc}",
                         "use valid JSON (.json) or TOML (.toml)") from None


def build_config(method: str, ablation: str | None = None, file: str | Path | dict | None = None,
                 epochs: int | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """The resolved training configuration of ``method`` (see the module docstring)."""
    presets = method_module(method)
    cfg = deep_merge(COMMON, {}) | {"method": method}
    cfg = _merge_new(cfg, presets.DEFAULTS)
    name = ablation or presets.FULL
    cfg = deep_merge(cfg, presets.preset(name))
    cfg["ablation"] = name
    if file is not None:
        over = file if isinstance(file, dict) else read_config_file(file)
        over = {k: v for k, v in over.items() if k not in ("method", "ablation")}
        cfg = deep_merge(cfg, over)
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    if batch_size is not None:
        cfg["batch_size"] = int(batch_size)
    validate(cfg)
    return cfg


def _merge_new(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Add the method's own sections (``model``, ``loss``) and override shared values."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = deep_merge(out[k], v, k)
        else:
            out[k] = copy.deepcopy(v)
    return out


def validate(cfg: dict[str, Any]) -> None:
    if int(cfg["epochs"]) < 1:
        raise UsageError(f"epochs = {cfg['epochs']}", "use at least 1 epoch")
    if int(cfg["batch_size"]) < 1:
        raise UsageError(f"batch_size = {cfg['batch_size']}", "use a batch size >= 1")
    size = int(cfg["data"]["image_size"])
    if size % 32:
        raise UsageError(f"data.image_size = {size} is not a multiple of 32",
                         "the discriminators downsample 5 times (use 32, 64, 128, ...)")
    if cfg["amp"] not in ("bf16", "off"):
        raise UsageError(f"amp = {cfg['amp']!r}", "use 'bf16' or 'off'")
    if cfg["data"]["labels"] not in ("auto", "cls19", "cls4", "cls19to4"):
        raise UsageError(f"data.labels = {cfg['data']['labels']!r}", "use auto, cls19, cls4 or cls19to4")
