"""Metric protocols. Built-in metrics are registered by importing
:mod:`faceblur_bench.metrics.builtin` (the registry does this on first lookup)."""

from .base import Batch, Metric, MetricContext  # noqa: F401
