"""Device names given on the command line (``--device``) -> ``torch.device``, checked up front.

``auto`` (or None) is CUDA when available, else CPU. A name torch does not know (``tpu``) or a
CUDA device this machine does not have is a :class:`~faceblur_bench.errors.UsageError` (exit 2)
naming the value and the choices (with "did you mean"), never a traceback.

The spelling (:func:`check_device_name`) is checked without importing torch, so a typo in
``--device`` answers at once; only availability (:func:`resolve_device`) needs torch.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    import torch

CHOICES = "auto, cpu, cuda or cuda:N"
DEVICE_KINDS = ("auto", "cpu", "cuda")
#: device types torch parses (the list its ``torch.device`` error names); of these only cpu and
#: cuda run here — the others are "not supported" rather than unknown
#: (tests/test_devices.py checks torch accepts each)
TORCH_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                      "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                      "privateuseone")
#: ``TYPE`` or ``TYPE:INDEX`` as torch spells a device (no sign, no leading zero, no space)
_DEVICE = re.compile(r"([a-z]+)(?::(0|[1-9][0-9]*))?")


def check_device_name(device: str | None) -> None:
    """Refuse a ``--device`` value that is not ``auto``, ``cpu``, ``cuda`` or ``cuda:N``
    (:class:`UsageError`, exit 2: "did you mean" for an unknown name, "not supported" for a
    device type torch knows but this package does not run on). Imports no torch; whether the
    device exists is :func:`resolve_device`'s question."""
    if device is None:
        return
    text = str(device).strip()
    if text.lower() == "auto":
        return
    m = _DEVICE.fullmatch(text)
    if m is None or m.group(1) not in TORCH_DEVICE_TYPES:
        close = difflib.get_close_matches(text.split(":", 1)[0], DEVICE_KINDS, n=1)
        raise UsageError(f"unknown --device {str(device)!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                         f"use {CHOICES}")
    if m.group(1) not in ("cpu", "cuda"):
        raise UsageError(f"--device {device} is not supported", f"use {CHOICES}")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``--device`` value -> an available ``torch.device`` (see the module doc)."""
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif device is None or str(device).strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        check_device_name(device)
        dev = torch.device(str(device).strip())
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
