"""Imports every built-in metric module so that each registers itself."""

from . import (
    detection,  # noqa: F401
    fid,  # noqa: F401
    identity,  # noqa: F401
    lpips_metric,  # noqa: F401
    pixel,  # noqa: F401
    verification,  # noqa: F401
)
