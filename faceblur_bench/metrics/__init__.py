"""Metric protocols. Built-in metrics are registered by importing
:mod:`faceblur_bench.metrics.builtin` (the registry does this on first lookup).

``Batch``, ``Metric`` and ``MetricContext`` are imported on first use (they need torch), so the
static metadata in :mod:`.catalog` is read by listings and name checks without importing torch.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("Batch", "Metric", "MetricContext"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
