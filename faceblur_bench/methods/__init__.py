"""Methods of the seed papers. Each subpackage registers itself in ``registry.methods``.

Baselines (``baselines/``) register through the ``faceblur_bench.methods`` entry-point group,
exactly as a third-party plugin does.

``Method`` and ``TorchMethod`` are imported on first use (they need torch), so the static
metadata in :mod:`.catalog` is read by listings and name checks without importing torch.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("Method", "TorchMethod"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
