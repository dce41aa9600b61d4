"""``split_status(data_root)``: what ``faceblur-bench splits`` / ``data status`` show for every split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FaceblurError
from ..registry import splits
from .base import default_data_root


def _row(cls: type, name: str, root: Path, sub: str | None, count: bool) -> dict[str, Any]:
    full = f"{name}/{sub}" if sub else name
    rec: dict[str, Any] = {"name": full, "found": False, "located": False, "samples": None,
                           "where": str(root),
                           "description": getattr(cls, "description", "") if sub is None else f"subset {sub}",
                           "subsets": list(getattr(cls, "subsets", ())) if sub is None else [],
                           "partial": False, "error": None, "layout": getattr(cls, "layout", "")}
    try:
        split = cls(data_root=root, subset=sub)
    except Exception as exc:  # a plugin that cannot even be constructed
        rec["error"] = f"cannot construct: {exc}"
        return rec
    if name == "demo" and not (root / "demo" / "manifest.json").is_file():
        rec["where"] = str(root / "demo")
        rec["error"] = "not built yet (built automatically on first use)"
        return rec
    try:
        rec["where"] = str(split.find())
        rec["located"] = True
        if count:
            rec["samples"] = len(split.samples())
            rec["partial"] = bool(split.partial)
        rec["found"] = True
    except FaceblurError as exc:
        rec["error"] = exc.message
        cand = getattr(split, "candidates", None)
        if not rec["located"] and callable(cand):
            rec["where"] = " | ".join(str(c) for c in cand())
    return rec


def found_text(rec: dict[str, Any]) -> str:
    """The "found" column: ``yes``, ``no``, or ``incomplete`` (its folder exists but the split or
    subset cannot be listed, e.g. a missing subset folder; ``error`` says why)."""
    if rec.get("found"):
        return "yes"
    return "incomplete" if rec.get("located") else "no"


def missing_layouts(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(name, expected layout)`` of every split that is not found, once per split (its subsets
    share the split's layout)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for r in records:
        base = r["name"].split("/")[0]
        if r.get("found") or not r.get("layout") or base in seen:
            continue
        seen.add(base)
        out.append((base, r["layout"]))
    return out


def split_status(data_root: str | Path | None = None, count: bool = True,
                 subsets: bool = True) -> list[dict[str, Any]]:
    """One record per registered split (and, with ``subsets``, per subset ``split/sub``):
    ``name``, ``found`` (bool: usable — its samples could be listed; with ``count=False`` only
    whether its folder exists), ``located`` (bool: its folder exists), ``samples`` (int or None),
    ``where`` (the directory found, or where it looked), ``description``, ``subsets``, ``partial``, ``error`` (why it is unusable,
    or None) and ``layout`` (expected tree, for missing ones). The demo split counts as found only
    once built (listing it never builds it)."""
    root = Path(data_root).expanduser() if data_root else default_data_root()
    out: list[dict[str, Any]] = []
    for name, cls in splits.items():
        out.append(_row(cls, name, root, None, count))
        if subsets:
            out.extend(_row(cls, name, root, sub, count) for sub in getattr(cls, "subsets", ()))
    return out
