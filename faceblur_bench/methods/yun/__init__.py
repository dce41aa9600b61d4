"""Yun et al., "Joint Face Super-Resolution and Deblurring Using GAN" (IEEE Access 2020).

Importing the package registers the ``yun`` method and the ``yun`` trainer.
"""

from . import method, training  # noqa: F401
