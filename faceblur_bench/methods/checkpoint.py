"""Trainer checkpoints: everything needed to continue exactly, loadable with ``weights_only=True``.

Format ``faceblur-bench-train/1`` (a dict of plain values and tensors)::

    format, trainer, method, preset, config (nested dict), epoch (epochs completed), step,
    modules {name: state_dict}, optimizers {name: state_dict}, schedulers {name: state_dict},
    rng {torch, cuda, numpy, python}, best_psnr, extra (the task's own plain state)

``faceblur-bench train export`` (and ``best.pth``) keep only ``format, trainer, method, preset,
config, epoch, step, best_psnr`` and the task's ``inference_modules``. Methods read either file
through :func:`load_trained`; files of the earlier ``faceblur-bench-gan/1`` format (``generator``
/ ``discriminator`` at the top level, ``ablation`` for the preset) are read too.

This module lives below ``methods/`` so that a method can read its checkpoints without importing
the training loop (``train/`` imports this module, never the reverse).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UsageError, WeightsMissingError
from ..files import cache_dir
from ..nets.loading import read_weights_only

FORMAT = "faceblur-bench-train/1"
LEGACY_FORMAT = "faceblur-bench-gan/1"


def default_checkpoint(method: str) -> Path:
    """Where method ``method`` looks without ``--checkpoint``: ``$FACEBLUR_CHECKPOINTS/<method>.pth``,
    else ``~/.cache/faceblur_bench/checkpoints/<method>.pth``."""
    env = os.environ.get("FACEBLUR_CHECKPOINTS")
    if env:
        return Path(env).expanduser() / f"{method}.pth"
    return cache_dir("checkpoints", f"{method}.pth")


def locate(method: str, checkpoint: str | Path | None, what_to_pass: str, *, folder_ok: bool = False) -> Path:
    """The checkpoint file (or, with ``folder_ok``, folder) a learned method loads.

    An explicit ``checkpoint`` that does not exist is a UsageError (exit 2) naming it; without one,
    :func:`default_checkpoint` is used and its absence is a WeightsMissingError whose hint is
    ``what_to_pass`` (the authors' file and/or the trainer to run) plus the default location.
    A learned method never falls back to random weights.
    """
    path = Path(checkpoint).expanduser() if checkpoint else default_checkpoint(method)
    if path.is_file() or (folder_ok and path.is_dir()):
        return path
    if checkpoint:
        raise UsageError(f"{method}: checkpoint {path} not found", "check the --checkpoint path")
    raise WeightsMissingError(
        f"{method} needs trained weights and none were given: no --checkpoint and no file at {path}",
        f"{what_to_pass}; or copy it to {path} (or set $FACEBLUR_CHECKPOINTS)")


def rng_state() -> dict[str, Any]:
    """Every RNG stream a training step draws from, as plain values and tensors."""
    st = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"bit_generator": st["bit_generator"],
                  "key": torch.as_tensor(st["state"]["key"].astype(np.int64)),
                  "pos": int(st["state"]["pos"]), "has_gauss": int(st["has_gauss"]),
                  "gauss": float(st["gauss"])},
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the streams saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary name in the same folder, fsync, then rename (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read(path: str | Path) -> Any:
    """The object stored in ``path``, read with ``weights_only=True`` (no code can run)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} not found", "pass the path of a .pth written by `faceblur-bench train`")
    try:
        return read_weights_only(path)
    except Exception as exc:
        raise UsageError(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc})",
                         "use a checkpoint written by `faceblur-bench train` (weights_only format)") from None


def is_trained(obj: Any) -> bool:
    """True when ``obj`` is a checkpoint written by ``faceblur-bench train`` (any version)."""
    return isinstance(obj, dict) and obj.get("format") in (FORMAT, LEGACY_FORMAT)


def normalise(obj: Any, path: str | Path) -> dict[str, Any]:
    """``obj`` in the current format (legacy files converted), else a UsageError naming ``path``."""
    if not is_trained(obj):
        raise UsageError(f"{path} is not a faceblur-bench training checkpoint (format {FORMAT!r})",
                         "train with `faceblur-bench train NAME` or export with `faceblur-bench train export`; "
                         "the authors' released weights load where the method says so (`faceblur-bench methods`)")
    if obj["format"] == FORMAT:
        return obj
    out = {k: obj[k] for k in ("config", "epoch", "step", "best_psnr", "rng") if k in obj}
    out |= {"format": FORMAT, "trainer": obj.get("method"), "method": obj.get("method"),
            "preset": obj.get("ablation"),
            "modules": {k: obj[k] for k in ("generator", "discriminator") if obj.get(k) is not None},
            "optimizers": {k: obj[o] for k, o in (("generator", "optim_g"), ("discriminator", "optim_d"))
                           if obj.get(o) is not None},
            "schedulers": {k: obj[o] for k, o in (("generator", "sched_g"), ("discriminator", "sched_d"))
                           if obj.get(o) is not None}}
    return out


def load(path: str | Path) -> dict[str, Any]:
    """Read a training or exported checkpoint (``weights_only=True``) in the current format."""
    return normalise(read(path), path)


def load_trained(path: str | Path, trainers: tuple[str, ...]) -> dict[str, Any]:
    """A checkpoint written by one of ``trainers``; refuses one written by another trainer."""
    ck = load(path)
    if ck.get("trainer") not in trainers:
        raise UsageError(f"{path} was trained by {ck.get('trainer')!r}, not by {' or '.join(trainers)}",
                         f"use the method trained by {ck.get('trainer')!r} (`--method {ck.get('method')}`)")
    return ck


def export(ck: dict[str, Any], path: str | Path, inference_modules: tuple[str, ...]) -> Path:
    """Write the inference part of ``ck`` (configuration and ``inference_modules`` only)."""
    keep = {k: ck[k] for k in ("format", "trainer", "method", "preset", "config", "epoch", "step", "best_psnr")
            if k in ck}
    missing = [m for m in inference_modules if m not in ck["modules"]]
    if missing:
        raise UsageError(f"checkpoint has no module {missing[0]!r} (holds {sorted(ck['modules'])})",
                         "export a checkpoint written by the matching trainer")
    keep["modules"] = {m: ck["modules"][m] for m in inference_modules}
    return save_atomic(keep, path)


__all__ = ["FORMAT", "default_checkpoint", "export", "locate", "is_trained", "load", "load_trained", "normalise", "read", "rng_state",
           "save_atomic", "set_rng_state"]
