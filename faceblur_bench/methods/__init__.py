"""Methods of the seed papers. Each subpackage registers itself in ``registry.methods``.

Baselines (``baselines/``) register through the ``faceblur_bench.methods`` entry-point group,
exactly as a third-party plugin does.
"""

from .base import Method, TorchMethod  # noqa: F401
