"""SAPPGAN (Han et al., IEEE Access 2023, seed 000): SAPP discriminator, losses, trainer (DFPGnet generator)."""

from . import method, training  # noqa: F401
