"""Imports every built-in (paper) method package so that each registers itself."""

from . import cfmd  # noqa: F401
from .dfpg import method as _dfpg  # noqa: F401
from .sappgan import method as _sappgan  # noqa: F401
