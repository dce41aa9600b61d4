"""Readers of stored results (written by :mod:`faceblur_bench.results`).

Layout of a results directory (default ``results/``)::

    runs/<split-slug>/<method>/<run_key>/summary.json   # one run: aggregate values + provenance
    runs/<split-slug>/<method>/<run_key>/rows.jsonl     # one JSON object per image
    runs/<split-slug>/<method>/<run_key>/images/<id>.png  # restored images (--save-images)

The split slug is the split name with ``/`` replaced by ``__`` (``mspl-center__ffhq``).

Every reader returns plain dicts / lists / pandas DataFrames; nothing here imports torch.
A truncated last line of ``rows.jsonl`` (a run that crashed mid-write) is ignored; a corrupt line
elsewhere is an error naming the file and the line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

from .. import results
from ..errors import UsageError
from ..results import split_slug  # noqa: F401  (re-exported for report modules)

SUMMARY = "summary.json"
ROWS = "rows.jsonl"


class ResultsInputError(UsageError):
    """A results path that does not hold usable results (exit code 2)."""


def _json_constant(name: str) -> float:
    # results may hold NaN / Infinity written by Python's json (allow_nan=True)
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """Read ``<run_dir>/summary.json``; adds ``"_run_dir"`` (str) to the returned dict.

    Raises :class:`ResultsInputError` when the file is missing or not valid JSON.
    """
    run_dir = Path(run_dir)
    path = run_dir / SUMMARY
    if not path.is_file():
        raise ResultsInputError(
            f"no {SUMMARY} in {run_dir}",
            "pass a run directory (runs/<split>/<method>/<run_key>/) or a results directory "
            "holding runs/; create results with `faceblur-bench run`",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_json_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsInputError(f"{path}: not valid JSON ({exc})",
                                "re-run the evaluation to rewrite this summary") from None
    if not isinstance(data, dict) or "metrics" not in data or "method" not in data:
        raise ResultsInputError(f"{path}: not a run summary (needs 'method' and 'metrics')",
                                "pass a run directory written by `faceblur-bench run`")
    data["_run_dir"] = str(run_dir)
    return data


def read_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-image rows of a run (``rows.jsonl``), in file order, parsed by the results store.

    Torn or corrupt lines are not data (the engine re-scores those images on resume). When an
    id occurs more than once (a retried failure) the last occurrence wins. Missing file -> [].
    """
    out: dict[str, dict[str, Any]] = {}
    for row in results.read_rows(Path(run_dir) / ROWS):
        out[str(row["id"])] = row
    return list(out.values())


def rows_frame(run_dir: str | Path) -> "Any":
    """Rows as a pandas DataFrame: columns ``id, status, reason, restore_s``, one column per
    metric (``metric:<name>``) and one per meta key (``meta:<key>``)."""
    import pandas as pd

    records = []
    for r in read_rows(run_dir):
        rec: dict[str, Any] = {"id": str(r["id"]), "status": r.get("status", "ok"),
                               "reason": r.get("reason"), "restore_s": r.get("restore_s")}
        for k, v in (r.get("metrics") or {}).items():
            rec[f"metric:{k}"] = math.nan if v is None else float(v)
        for k, v in (r.get("meta") or {}).items():
            rec[f"meta:{k}"] = v
        records.append(rec)
    return pd.DataFrame.from_records(records)


def iter_run_dirs(path: str | Path) -> Iterator[Path]:
    """Run directories under ``path`` (a run dir itself, a ``runs/`` tree or a results dir)."""
    path = Path(path)
    if (path / SUMMARY).is_file():
        yield path
        return
    root = path / "runs" if (path / "runs").is_dir() else path
    for summary in sorted(root.rglob(SUMMARY)):
        yield summary.parent


def load_summaries(path: str | Path, split: str | None = None,
                   methods: list[str] | None = None) -> list[dict[str, Any]]:
    """All run summaries under ``path`` (run dir or results dir), optionally filtered.

    ``split`` matches the full split name (``mspl-center/ffhq``) or, without a subset, every
    subset of that split (``mspl-center`` matches ``mspl-center/ffhq``). Raises
    :class:`ResultsInputError` when ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise ResultsInputError(f"results path {path} does not exist",
                                "pass --results DIR (default results/) or a run directory")
    out = []
    for d in iter_run_dirs(path):
        s = load_summary(d)
        if split is not None and not split_matches(s, split):
            continue
        if methods and s.get("method") not in methods:
            continue
        out.append(s)
    return out


def latest_runs(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per (split, method, options, checkpoint, protocol): complete before incomplete, then newest.

    Re-running on regenerated data (a new split fingerprint) makes a new run directory; tables
    and the leaderboard show the current one instead of both.
    """
    best: dict[str, tuple[tuple[bool, str], dict[str, Any]]] = {}
    for s in summaries:
        # a run on custom data never replaces (or is replaced by) one on the official data
        data = (s.get("data_origin") or {}).get("data_root") if is_custom(s) else None
        key = json.dumps([s.get("split"), *results.config_key(s), data])
        rank = (bool(s.get("complete")), str((s.get("provenance") or {}).get("date", "")))
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, s)
    return [v[1] for v in best.values()]


def split_matches(summary: dict[str, Any], split: str) -> bool:
    full = str(summary.get("split") or "")
    name, _ = summary_split(summary)
    return full == split or ("/" not in split and name == split)


def summary_split(summary: dict[str, Any]) -> tuple[str, str | None]:
    """``(split_name, subset)`` of a summary (from ``split_name``/``subset`` or ``split``)."""
    name, subset = results.split_parts(str(summary.get("split") or ""))
    return str(summary.get("split_name") or name), summary.get("subset") or subset


def is_custom(summary: dict[str, Any]) -> bool:
    """True for a run on synthesised (``make-split``) or custom data (``summary["data_origin"]``,
    see :mod:`faceblur_bench.data.origin`): such a run never goes into an official split's
    table. Summaries written before the origin was recorded count as before: not custom."""
    return (summary.get("data_origin") or {}).get("kind") in ("synthesised", "custom")


def custom_heading(summary: dict[str, Any]) -> str:
    """Heading of a custom-data table: what the data is and where it lies."""
    o = summary.get("data_origin") or {}
    return f"custom data, not the official test set — {o.get('reason')} (data root {o.get('data_root')})"


def origin_groups(summaries: list[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """``[(None, runs on official data), (heading, runs on one custom data root), ...]``; the
    official group comes first and is left out when empty, custom groups in data-root order."""
    official = [s for s in summaries if not is_custom(s)]
    custom: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        if is_custom(s):
            custom.setdefault(str((s.get("data_origin") or {}).get("data_root")), []).append(s)
    out: list[tuple[str | None, list[dict[str, Any]]]] = [(None, official)] if official else []
    return out + [(custom_heading(runs[0]), runs) for _, runs in sorted(custom.items())]
