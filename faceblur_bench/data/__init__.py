"""Split layouts (demo, MSPL, Shen, 300VW, CelebA-HQ x8, real blur), kernels, degradations.

Importing this package registers every built-in split in ``registry.splits``.
"""

from .base import Sample, Split, default_data_root  # noqa: F401
from . import demo  # noqa: F401  (registers "demo")
