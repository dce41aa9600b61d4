"""Imports every built-in split module so that each registers itself."""

from . import (
    demo,  # noqa: F401
    mspl,  # noqa: F401
    real,  # noqa: F401
    shen,  # noqa: F401
    sr,  # noqa: F401
    vw300,  # noqa: F401
)
