"""``sappgan`` method: SAPPGAN's generator (DFPGnet architecture) restored from a trainer checkpoint.

SAPPGAN changes only the discriminator and losses, so inference is the DFPGnet generator
(:class:`~faceblur_bench.methods.dfpg.method.DFPGFamilyMethod`); checkpoints come from
``faceblur-bench train sappgan``; default location ``~/.cache/faceblur_bench/checkpoints/sappgan.pth``
(or ``$FACEBLUR_CHECKPOINTS/sappgan.pth``).
"""

from __future__ import annotations

from ...registry import methods
from ..dfpg.method import DFPGFamilyMethod


@methods.register("sappgan")
class SAPPGAN(DFPGFamilyMethod):
    description = ("SAPPGAN (Han et al., IEEE Access 2023): DFPGnet generator trained with the SAPP "
                   "discriminator, PW loss and coarse-to-fine α, from a trained checkpoint")
    trained_by = ("sappgan",)
