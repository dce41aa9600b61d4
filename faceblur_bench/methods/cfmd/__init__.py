"""CFMD-GAN (seed 003): continuous facial motion deblurring with a moment control factor u.

networks (G), discriminator (U-Net D + Q), losses, presets (recipes, Table 5 ablations),
official (the authors' released generator weights), method (``cfmd-gan``), data (300VW training
triples), training (trainer ``cfmd``).
"""

from . import method, training  # noqa: F401
