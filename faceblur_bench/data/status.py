"""``split_status(data_root)``: what ``faceblur-bench splits`` / ``data status`` show for every split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FaceblurError
from ..registry import splits
from .base import default_data_root


def split_status(data_root: str | Path | None = None, count: bool = True) -> list[dict[str, Any]]:
    """One record per registered split: ``name``, ``found`` (bool), ``samples`` (int or None),
    ``where`` (the directory found, or where it looked), ``description``, ``subsets``,
    ``partial``, ``error`` (why it is unusable, or None) and ``layout`` (expected tree, for
    missing ones). The demo split is reported as found only once built (it builds on first use)."""
    root = Path(data_root).expanduser() if data_root else default_data_root()
    out: list[dict[str, Any]] = []
    for name, cls in splits.items():
        rec: dict[str, Any] = {"name": name, "found": False, "samples": None, "where": str(root),
                               "description": getattr(cls, "description", ""),
                               "subsets": list(getattr(cls, "subsets", ())), "partial": False,
                               "error": None, "layout": getattr(cls, "layout", "")}
        try:
            split = cls(data_root=root)
        except Exception as exc:  # a plugin that cannot even be constructed
            rec["error"] = f"cannot construct: {exc}"
            out.append(rec)
            continue
        if name == "demo":
            d = root / "demo"
            rec["where"] = str(d)
            if not (d / "manifest.json").is_file():
                rec["error"] = "not built yet (built automatically on first use)"
                out.append(rec)
                continue
        try:
            where = split.find()
            rec["where"] = str(where)
            rec["found"] = True
            if count:
                rec["samples"] = len(split.samples())
                rec["partial"] = bool(split.partial)
        except FaceblurError as exc:
            rec["error"] = exc.message
            if not rec["found"]:
                cand = getattr(split, "candidates", None)
                if callable(cand):
                    rec["where"] = " | ".join(str(c) for c in cand())
        out.append(rec)
    return out
