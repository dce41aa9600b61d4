"""Run aggregates from per-image rows: the one rule the engine writes and every reader checks.

A run's number is a function of its rows (``rows.jsonl``), never an independent fact:

- :func:`paired_aggregate` is the value of a *paired* metric (mean, population std and count
  over the finite per-image values; ±inf counted beside it, NaN/null unscored) — what
  :class:`faceblur_bench.engine.scoring.PairedState` stores and what
  :func:`faceblur_bench.report.store.load_run` recomputes from the rows it reads, so a row
  edited by hand (or an ``Infinity`` typed into it) gets exactly the treatment of a computed one;
- :func:`summary_digest` seals a summary to the rows it summarises: sha256 over the summary's
  JSON (without the digest itself) and the latest row of every id. Set metrics (FID,
  verification) cannot be recomputed without their networks; a reader that finds a different
  digest withholds their values instead of showing them.

Torch-free (report code imports this without loading torch).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

#: summary fields that are not part of what it summarises (the digest itself, and what a
#: reader or the engine adds in memory)
UNSEALED = ("digest", "run_dir", "_run_dir", "this_session")


def finite_mean_std(values: np.ndarray) -> tuple[float, float, int, int]:
    """Aggregate of per-image values: mean, population std and count over the *finite* entries,
    and the number of infinite ones.

    NaN marks an image the metric could not score (excluded). ±inf is a real per-image value
    (PSNR of an image identical to its reference, as MATLAB/skimage give) that would make the
    mean ∞ and hide every other image: it is kept in the rows, left out of the mean and counted
    (the fourth item). When every value is infinite the mean is that infinity.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    fin = v[np.isfinite(v)]
    n_inf = int(v.size - fin.size)
    if fin.size == 0:
        if n_inf:
            return float(v[0]) if np.all(v == v[0]) else float("nan"), float("nan"), 0, n_inf
        return float("nan"), float("nan"), 0, 0
    return float(fin.mean()), float(fin.std()), int(fin.size), n_inf


def row_value(row: dict, metric: str) -> float:
    """The stored per-image value of ``metric`` in ``row`` (NaN when absent or null: unscored)."""
    v = (row.get("metrics") or {}).get(metric)
    return math.nan if v is None else float(v)


def paired_aggregate(metric: str, ok_rows: list[dict]) -> dict[str, Any]:
    """``{"value", "std", "count", "extra"}`` of paired metric ``metric`` over ``ok_rows``
    (the rows with status ``ok``, in split order).

    ``value`` is the mean of the finite per-image values (None when there is none), ``count``
    their number; ``extra`` holds ``infinite`` (±inf values, left out of the mean), ``unscored``
    (NaN / null / absent) and ``errors`` (up to 5 distinct per-image error messages) when any.
    """
    vals = np.array([row_value(r, metric) for r in ok_rows], dtype=np.float64)
    mean, std, n, n_inf = finite_mean_std(vals)
    out: dict[str, Any] = {"value": None if np.isnan(mean) else mean,
                           "std": None if np.isnan(std) else std, "count": n, "extra": {}}
    if n_inf:
        out["extra"]["infinite"] = n_inf
    n_nan = int(np.isnan(vals).sum())
    if n_nan:
        out["extra"]["unscored"] = n_nan
    errs = {(r.get("metric_errors") or {}).get(metric) for r in ok_rows} - {None}
    if errs:
        out["extra"]["errors"] = sorted(errs)[:5]
    return out


def scored_ids(metric: str, ok_rows: Iterable[dict]) -> list[str]:
    """Ids of the ok rows on which paired metric ``metric`` has a value (±inf included: a
    value; NaN / null / absent: unscored)."""
    return [r["id"] for r in ok_rows if not math.isnan(row_value(r, metric))]


def image_set_digest(ids: Iterable[str], fingerprint: str | None = None) -> str:
    """A short name of a set of images (sorted ids, and the split fingerprint they belong to):
    two values computed on the same images of the same data have the same one."""
    blob = json.dumps([fingerprint, sorted(ids)], ensure_ascii=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _canonical(obj: Any) -> bytes:
    # NaN / Infinity are written the way Python's json writes them (the store's own form)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True,
                      ensure_ascii=True, default=_jsonable).encode()


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)  # paths


def summary_digest(summary: dict[str, Any], rows: Iterable[dict]) -> str:
    """sha256 (hex) sealing ``summary`` (every field but :data:`UNSEALED`) to ``rows`` (the
    latest row of every id, in any order).

    Computed over the JSON form (what ``summary.json`` and ``rows.jsonl`` hold after a round
    trip), so the writer and a reader of the files get the same digest; any edit of a value,
    a count or a row gives another."""
    body = {k: v for k, v in summary.items() if k not in UNSEALED}
    # through JSON once: tuples become lists, numpy scalars floats, as the files hold them
    body = json.loads(_canonical(body))
    ordered = sorted(rows, key=lambda r: str(r.get("id")))
    h = hashlib.sha256()
    h.update(_canonical(body))
    for r in ordered:
        h.update(b"\n")
        h.update(_canonical(json.loads(_canonical(r))))
    return h.hexdigest()
