"""Imports every built-in split module so that each registers itself."""

from . import demo  # noqa: F401
