"""Split layouts (demo, MSPL, Shen, 300VW, CelebA-HQ x8, real blur), kernels, degradations.

Built-in splits are registered by importing :mod:`faceblur_bench.data.builtin` (the registry
does this on first lookup).
"""

from .base import Sample, Split, default_data_root  # noqa: F401
