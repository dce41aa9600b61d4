"""Imports every built-in (paper) method package so that each registers its method and trainer.

A new method package adds one line to :data:`PACKAGES`; its ``__init__`` imports its
``method`` and ``training`` modules, whose decorators fill ``registry.methods`` and
``registry.trainers``.
"""

from importlib import import_module

PACKAGES = (
    "cfmd",
    "dfpg",
    "mspl",
    "sappgan",
    "shen",
    "yun",
)

for _package in PACKAGES:
    import_module(f"{__package__}.{_package}")
