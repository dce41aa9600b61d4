"""Imports every built-in (paper) method package so that each registers its method and trainer.

A new method package adds one line here; its ``__init__`` imports its ``method`` and
``training`` modules, whose decorators fill ``registry.methods`` and ``registry.trainers``.
"""

from . import cfmd  # noqa: F401
from . import dfpg  # noqa: F401
from . import sappgan  # noqa: F401
