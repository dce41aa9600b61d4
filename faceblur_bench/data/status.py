"""What ``faceblur-bench splits`` shows: every registered split, found or not, where, how many."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FaceblurError
from ..registry import splits


def split_status(data_root: str | Path | None = None) -> list[dict[str, Any]]:
    """One dict per split (and per subset): name, found, samples, where, description, layout."""
    rows = []
    for name, cls in splits.items():
        for sub in (None, *cls.subsets):
            split = cls(data_root=data_root, subset=sub)
            row = {"name": split.full_name, "found": False, "samples": None, "where": str(split.data_root),
                   "description": cls.description if sub is None else f"subset {sub}", "layout": cls.layout,
                   "error": None}
            try:
                if name == "demo":  # built on demand; do not build it just to list it
                    row["where"] = str(split.data_root / "demo")
                    row["found"] = (split.data_root / "demo" / "manifest.json").exists()
                    row["samples"] = len(split.samples()) if row["found"] else None
                    if not row["found"]:
                        row["description"] += " (built on first use)"
                else:
                    row["where"] = str(split.find())
                    row["samples"] = len(split.samples())
                    row["found"] = True
            except FaceblurError as exc:
                row["error"] = exc.message
            rows.append(row)
    return rows
