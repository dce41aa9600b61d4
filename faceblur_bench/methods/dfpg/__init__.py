"""DFPGnet (Jung et al., WACV 2022, seed 002): generator, feature discriminator, losses, trainer."""

from . import method, training  # noqa: F401
