"""The one rule that turns a ``--device`` value into a torch device."""

from __future__ import annotations

import difflib

import torch

from .errors import UsageError

DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N``.

    Refuses (exit 2) an unknown device kind with "did you mean" and a CUDA device that this
    machine does not have — never a raw torch traceback.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        kind = str(device).split(":", 1)[0]
        close = difflib.get_close_matches(kind, DEVICE_KINDS, n=1)
        raise UsageError(f"unknown device {str(device)!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                         "use --device auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device} requested but no CUDA device is available",
                             "use --device cpu or --device auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                             f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    elif dev.type not in ("cpu", "mps"):
        raise UsageError(f"device {str(device)!r} is not supported", "use --device auto, cpu, cuda or cuda:N")
    return dev
