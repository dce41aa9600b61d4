"""Metric protocols. Importing this package registers every built-in metric."""

from .base import Batch, Metric, MetricContext  # noqa: F401
from . import pixel  # noqa: F401  (psnr, ssim)
