"""MSPL-GAN (Lee, Jung & Heo, "Progressive Semantic Face Deblurring", IEEE Access 2020).

One package: networks (:mod:`.networks`), losses (:mod:`.losses`), the authors' weight layout
(:mod:`.official`), the ``mspl-gan`` method (:mod:`.method`) and trainer (:mod:`.training`),
recipe and presets (:mod:`.presets`). Importing the package registers the method and trainer.
"""

from . import method, training  # noqa: F401
