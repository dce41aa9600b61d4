"""Imports every built-in metric module so that each registers itself (one line per module)."""

from importlib import import_module

MODULES = (
    "pixel",
    "pixel_yun",
    "lpips_metric",
    "fid",
    "identity",
    "identity_dlib",
    "identity_consistency",
    "landmark_distance",
    "verification",
    "detection",
    "pyiqa_nr",
)

for _module in MODULES:
    import_module(f"{__package__}.{_module}")
