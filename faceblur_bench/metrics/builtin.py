"""Imports every built-in metric module so that each registers itself."""

from . import pixel  # noqa: F401
