"""Crash injection for the crash-safety tests.

``FACEBLUR_CRASH_AT=<point>:<n>`` makes the process SIGKILL itself the n-th time it reaches
``<point>`` (1-based). Points: ``restore`` (before a restore() call), ``metrics`` (between two
metrics of a batch), ``features-write`` (half-way through a feature file), ``rows-write``
(half-way through appending a batch of rows), ``summary-write`` (before the summary rename).
``<point>:<n>@<rank>`` does so only in that rank of a sharded run (``RANK``, torchrun).
Unset (the normal case) this is a dictionary lookup per call and does nothing.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get("FACEBLUR_CRASH_AT")
    if not spec:
        return None
    spec, _, rank = spec.partition("@")
    if rank and rank != os.environ.get("RANK", "0"):
        return None
    point, _, n = spec.partition(":")
    return point, int(n or 1)


def crash_point(point: str) -> None:
    """SIGKILL this process if ``FACEBLUR_CRASH_AT`` names this point and its count is reached."""
    t = _target()
    if t is None or t[0] != point:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] >= t[1]:
        os.kill(os.getpid(), signal.SIGKILL)
