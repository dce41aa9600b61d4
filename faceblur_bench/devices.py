"""Device names given on the command line (``--device``) -> ``torch.device``, checked up front.

``auto`` (or None) is CUDA when available, else CPU. A name torch does not know (``tpu``) or a
CUDA device this machine does not have is a :class:`~faceblur_bench.errors.UsageError` (exit 2)
naming the value and the choices (with "did you mean"), never a traceback.
"""

from __future__ import annotations

import difflib

import torch

from .errors import UsageError

CHOICES = "auto, cpu, cuda or cuda:N"
DEVICE_KINDS = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``--device`` value -> an available ``torch.device`` (see the module doc)."""
    if isinstance(device, torch.device):
        dev = device
    elif device is None or str(device).strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(str(device).strip())
        except (RuntimeError, ValueError):
            close = difflib.get_close_matches(str(device).split(":", 1)[0], DEVICE_KINDS, n=1)
            raise UsageError(f"unknown --device {str(device)!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                             f"use {CHOICES}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device} requested but no CUDA device is available",
                             "use --device cpu or --device auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} "
                             "CUDA device(s)", f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    elif dev.type != "cpu":
        raise UsageError(f"--device {device} is not supported", f"use {CHOICES}")
    return dev
