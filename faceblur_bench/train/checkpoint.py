"""Trainer checkpoints: everything needed to continue exactly, loadable with ``weights_only=True``.

Format ``faceblur-bench-gan/1`` (a dict of plain values and tensors)::

    format, method, ablation, config (nested dict), epoch (epochs completed), step,
    generator, discriminator (state dicts; None without adversarial loss),
    optim_g, optim_d, sched_g, sched_d, rng {torch, cuda, numpy, python}, best_psnr

Inference (``faceblur_bench.methods.{sappgan,dfpg}``) needs only ``config`` and ``generator``;
:func:`export_generator` writes such a small file.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UsageError

FORMAT = "faceblur-bench-gan/1"


def rng_state() -> dict[str, Any]:
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
    """``torch.save`` to a temporary name in the same folder, then rename (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def read(path: str | Path) -> Any:
    """The object stored in ``path``, read with ``weights_only=True`` (no code can run)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} not found", "pass the path of a .pth written by `faceblur-bench train`")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc})",
                         "use a checkpoint written by `faceblur-bench train` (weights_only format)") from None


def check_format(ck: Any, path: str | Path) -> dict[str, Any]:
    """``ck`` when it is a faceblur-bench GAN checkpoint, else a UsageError naming ``path``."""
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise UsageError(f"{path} is not a faceblur-bench GAN checkpoint (format {FORMAT!r})",
                         "train with `faceblur-bench train sappgan|dfpg` or export with `faceblur-bench train export`; "
                         "the generator weights saved by the authors' code (G_*_best.pth) also load")
    return ck


def load(path: str | Path) -> dict[str, Any]:
    """Load a trainer or exported checkpoint (``weights_only=True``) and check its format."""
    return check_format(read(path), path)


def export_generator(ck: dict[str, Any], path: str | Path) -> Path:
    """Write the inference part (format, method, ablation, config, epoch, generator)."""
    keep = {k: ck[k] for k in ("format", "method", "ablation", "config", "epoch", "step", "best_psnr") if k in ck}
    keep["generator"] = ck["generator"]
    return save_atomic(keep, path)
