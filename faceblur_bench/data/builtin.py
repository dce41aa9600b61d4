"""Imports every built-in split module so that each registers itself (one line per module)."""

from importlib import import_module

MODULES = (
    "demo",
    "mspl",
    "real",
    "shen",
    "sr",
    "vw300",
    "photos",
)

for _module in MODULES:
    import_module(f"{__package__}.{_module}")
