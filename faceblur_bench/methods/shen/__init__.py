"""Shen et al., "Exploiting Semantics for Face Image Deblurring" (IJCV 2020, seed 004) and its
CVPR 2018 predecessor: networks, losses, the MatConvNet release loader, methods and trainer.

Importing the package registers the ``shen*`` methods (:mod:`.method`).
"""

from . import method, training  # noqa: F401
