"""Yun et al., "Joint Face Super-Resolution and Deblurring Using GAN" (IEEE Access 2020).

Importing the package registers the ``yun`` method (and, with the trainer registry, the
``yun`` trainer).
"""

from . import method  # noqa: F401
