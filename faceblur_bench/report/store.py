"""Readers of stored results (written by :mod:`faceblur_bench.results`).

Layout of a results directory (default ``results/``)::

    runs/<split-slug>/<method>/<run_key>/summary.json   # one run: aggregate values + provenance
    runs/<split-slug>/<method>/<run_key>/rows.jsonl     # one JSON object per image
    runs/<split-slug>/<method>/<run_key>/images/<id>.png  # restored images (--save-images)

The split slug is the split name with ``/`` replaced by ``__`` (``mspl-center__ffhq``).

Summaries are parsed into :class:`faceblur_bench.results.RunSummary` (typed, validated):
:func:`load_run` / :func:`load_runs` return those; :func:`load_summary` / :func:`load_summaries`
return their :meth:`~faceblur_bench.results.RunSummary.to_dict` (every field present, with its
type) for report code that takes dicts. A summary that is not valid JSON or has a field of the
wrong type makes :func:`load_summary` raise (one run asked for by name), while
:func:`load_runs` / :func:`load_summaries` skip that run with a :class:`ResultsWarning` naming the
file, so one corrupt run never blocks the tables of all. Nothing here imports torch.
A truncated or malformed line of ``rows.jsonl`` is not data (warned about, naming file and line).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import results
from ..errors import UsageError, warn_stored
from ..results import (
    RunSummary,
    SummaryFormatError,
    split_slug,  # noqa: F401  (re-exported for report modules)
)

SUMMARY = "summary.json"
ROWS = "rows.jsonl"


class ResultsInputError(UsageError):
    """A results path that does not hold usable results (exit code 2)."""


def _json_constant(name: str) -> float:
    # results may hold NaN / Infinity written by Python's json (allow_nan=True)
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def load_run(run_dir: str | Path) -> RunSummary:
    """Read and type-check ``<run_dir>/summary.json`` (``run_dir`` recorded on the result).

    Raises :class:`ResultsInputError` when the file is missing, not valid JSON, or not a run
    summary with fields of the right types (the message names the file and the field).
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
    except OSError as exc:
        raise ResultsInputError(f"{path}: cannot be read ({exc.strerror})",
                                "check the file's permissions") from None
    try:
        run = RunSummary.parse(data, path)
    except SummaryFormatError as exc:
        raise ResultsInputError(exc.message, exc.hint) from None
    run.run_dir = str(run_dir)
    verify_against_rows(run, data, run_dir)
    return run


#: reason of a set metric's value that the rows cannot confirm (the summary does not match them)
WITHHELD = ("withheld: summary.json does not match its rows.jsonl — re-run the same "
            "`faceblur-bench run` command to rebuild it")


def verify_against_rows(run: RunSummary, raw: dict[str, Any], run_dir: str | Path) -> None:
    """Make ``run`` (parsed from ``raw``, the JSON of ``<run_dir>/summary.json``) say only what
    its rows say; the rule every reader shares (tables, leaderboard, plots, figures, ``check``).

    - A sealed summary (``digest``, :func:`faceblur_bench.aggregates.summary_digest`) must match
      the summary and the latest row of every id; one written before summaries were sealed has
      its paired metrics recomputed from the rows (:func:`~faceblur_bench.aggregates.paired_aggregate`,
      equal to 1e-9 relative) and its counts checked instead.
    - On a mismatch (a value, count or row edited by hand, an ``Infinity`` typed into a row, a
      missing ``rows.jsonl``) a :class:`ResultsWarning` names the file; counts, failures and
      paired values are rebuilt from the rows with the engine's rules, values the rows cannot
      give (set metrics: FID, verification) are withheld (:data:`WITHHELD`), and the run is
      marked unverified (``other["_verified"]``), so it is never ranked.
    - ``other["_scored"]``: per metric ``{"scored", "total", "images"}`` — images with a value,
      images of the run, and a name of the scored image set
      (:func:`~faceblur_bench.aggregates.image_set_digest`): tables show "n/N" and rank only
      values on the same images.
    """
    from ..aggregates import image_set_digest, paired_aggregate, scored_ids, summary_digest

    run_dir = Path(run_dir)
    rows_path = run_dir / ROWS
    has_rows = rows_path.is_file() or bool(results.row_shard_paths(run_dir))
    rows = read_rows(run_dir) if has_rows else []
    ok_rows = [r for r in rows if r["status"] == "ok"]
    problems: list[str] = []
    sealed = isinstance(raw.get("digest"), str)
    damage = _damaged_rows(run_dir, run.rows_discarded) if has_rows else None
    if damage:  # the rows file was damaged, not (or not provably) the summary: say which
        problems.append(damage)
    if not has_rows and (run.counts.done or run.counts.ok or any(
            e.value is not None for e in run.metrics.values())):
        problems.append(f"{ROWS} is missing, so its values cannot be checked")
    elif sealed and raw["digest"] != summary_digest(raw, rows) and not damage:
        problems.append(f"it does not match {ROWS} (the summary was edited after it was sealed)")
    counts = (len(rows), len(ok_rows), len(rows) - len(ok_rows))
    if has_rows and (run.counts.done, run.counts.ok, run.counts.failed) != counts:
        problems.append(f"counts done/ok/failed {run.counts.done}/{run.counts.ok}/"
                        f"{run.counts.failed}, the rows hold {counts[0]}/{counts[1]}/{counts[2]}")
    paired = {n for n, e in run.metrics.items()
              if e.kind == "paired" or (e.kind is None and any(n in r["metrics"] for r in rows))}
    rebuilt: dict[str, dict[str, Any]] = {}
    for name in paired:
        entry = run.metrics[name]
        if entry.status != "ok":
            continue
        agg = paired_aggregate(name, ok_rows)
        rebuilt[name] = agg
        if not sealed and has_rows and not _same_aggregate(entry, agg):
            problems.append(f"{name} is {entry.value!r} over {entry.count} image(s), the rows "
                            f"give {agg['value']!r} over {agg['count']}")
    fp = run.split_fingerprint
    scored: dict[str, dict[str, Any]] = {}
    for name in run.metrics:
        ids = scored_ids(name, ok_rows) if name in paired else [r["id"] for r in ok_rows]
        scored[name] = {"scored": len(ids), "total": run.counts.total,
                        "images": image_set_digest(ids, fp)}
    run.other["_scored"] = scored
    if not problems:
        run.other["_verified"] = {"ok": True}
        return
    warn_stored(
        f"{run_dir / SUMMARY}: {'; '.join(problems[:3])} — shown as its rows give it (values "
        "the rows cannot give are withheld, the run is not ranked); re-run the same "
        "`faceblur-bench run` command to rebuild the summary", stacklevel=3)
    run.other["_verified"] = {"ok": False, "why": problems}
    if has_rows:
        run.counts.done, run.counts.ok, run.counts.failed = counts
        run.failures = [{"id": r["id"], "reason": r.get("reason")} for r in rows if r["status"] != "ok"]
        run.complete = counts[0] >= run.counts.total
    for name, entry in run.metrics.items():
        if name in rebuilt and has_rows:
            agg = rebuilt[name]
            entry.value, entry.std, entry.count = agg["value"], agg["std"], agg["count"]
            entry.extra = {**{k: v for k, v in entry.extra.items()
                              if k not in ("infinite", "unscored", "errors")}, **agg["extra"]}
        elif entry.status == "ok":
            entry.value, entry.std = None, None
            entry.status, entry.reason = "error", WITHHELD


def _damaged_rows(run_dir: Path, known: int) -> str | None:
    """The damage of a run's rows files that its summary does not account for, or None.

    A summary counts the malformed lines of ``rows.jsonl`` it was sealed with (``rows_discarded``:
    their images were scored again, the summary is true of the valid rows). More malformed lines
    now (a line of ``rows.jsonl`` or a rank shard damaged after sealing) mean a row the summary
    stands on may be gone: the run is not what it was, whatever the summary says."""
    found: list[tuple[str, list[int]]] = []
    for path in [run_dir / ROWS, *results.row_shard_paths(run_dir)]:
        lines = [n for n, _ in results.scan_rows(path, warn=False).discarded]  # read_rows warned
        if lines:
            found.append((path.name, lines))
    if sum(len(lines) for _, lines in found) <= known:
        return None
    parts = []
    for name, lines in found:
        many = "s" if len(lines) > 1 else ""
        shown = ", ".join(map(str, lines[:5])) + (", …" if len(lines) > 5 else "")
        parts.append(f"{name} has {len(lines)} malformed line{many} (line{many} {shown})")
    sealed = f"it counted {known}" if known else "it counted none"
    return "; ".join(parts) + f": the rows file was damaged after the summary was sealed ({sealed})"


def _same_aggregate(entry: Any, agg: dict[str, Any]) -> bool:
    """A stored paired value equals the one recomputed from the rows (summation order may
    differ between the writer's split order and the file order: 1e-9 relative)."""
    a, b = entry.value, agg["value"]
    if (a is None) != (b is None) or entry.count != agg["count"]:
        return False
    if int(entry.extra.get("infinite") or 0) != int(agg["extra"].get("infinite") or 0):
        return False
    if a is None or a == b:
        return True
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """:func:`load_run` as a dict (:meth:`RunSummary.to_dict`, with ``"_run_dir"``)."""
    return load_run(run_dir).to_dict()


def load_runs(path: str | Path, split: str | None = None,
              methods: list[str] | None = None) -> list[RunSummary]:
    """Every readable run under ``path`` (run dir or results dir), optionally filtered.

    A run whose summary is corrupt or of the wrong shape is skipped with a
    :class:`ResultsWarning` naming the file (``run`` rebuilds it from the rows). ``split``
    matches the full split name (``mspl-center/ffhq``) or, without a subset, every subset of
    that split. Raises :class:`ResultsInputError` when ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise ResultsInputError(f"results path {path} does not exist",
                                "pass --results DIR (default results/) or a run directory")
    out = []
    for d in iter_run_dirs(path):
        try:
            run = load_run(d)
        except ResultsInputError as exc:
            warn_stored(f"skipped run {d}: {exc.message}", stacklevel=2)
            continue
        if split is not None and not split_matches(run, split):
            continue
        if methods and run.method not in methods and run.label not in methods:  # a name or a --label
            continue
        out.append(run)
    return out


def read_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-image rows of a run (``rows.jsonl``), one per id in first-seen order, parsed and
    validated by the results store.

    Torn, corrupt or malformed lines are not data (the engine re-scores those images on resume;
    malformed ones are warned about by file and line). When an id occurs more than once (a
    retried failure) the last occurrence wins — except a row that contradicts an already stored
    ok row, which is ignored with a :class:`ResultsWarning` (:func:`results.latest_rows`).
    Missing file -> [].
    """
    path = Path(run_dir) / ROWS
    by_id, conflicts = results.latest_rows(results.read_rows(path))
    for c in conflicts:
        warn_stored(
            f"{path}: a second row for {c['id']!r} disagrees with the stored ok row "
            f"({c['metric'] or 'status'}: kept {c['kept']!r}, ignored {c['ignored']!r})", stacklevel=2)
    return list(by_id.values())


def rows_frame(run_dir: str | Path) -> Any:
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
    """:func:`load_runs` as dicts (:meth:`RunSummary.to_dict`)."""
    return [r.to_dict() for r in load_runs(path, split, methods)]


def as_run(s: RunSummary | dict[str, Any]) -> RunSummary:
    """A summary as a :class:`RunSummary` (a dict, e.g. the engine's return value, is parsed)."""
    return s if isinstance(s, RunSummary) else RunSummary.parse(s, s.get("_run_dir") or "summary")


def latest_runs(summaries: list[Any]) -> list[Any]:
    """One run per (split, :func:`~faceblur_bench.results.config_key`): complete before
    incomplete, then newest. Takes and returns :class:`RunSummary` objects or summary dicts.

    Re-running on regenerated data (a new split fingerprint) makes a new run directory; tables
    and the leaderboard show the current one instead of both.
    """
    best: dict[str, tuple[tuple[bool, str], Any]] = {}
    for s in summaries:
        run = as_run(s)
        # a run on custom data never replaces (or is replaced by) one on the official data
        data = (s.get("data_origin") or {}).get("data_root") if is_custom(s) else None
        key = json.dumps([run.split, *run.key(), data])
        rank = (run.complete, run.date)
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, s)
    return [v[1] for v in best.values()]


def split_matches(summary: RunSummary | dict[str, Any], split: str) -> bool:
    """Whether a run is of ``split`` (full name, or every subset of a split name)."""
    run = as_run(summary)
    name, _ = summary_split(run)
    return run.split == split or ("/" not in split and name == split)


def summary_split(summary: RunSummary | dict[str, Any]) -> tuple[str, str | None]:
    """``(split_name, subset)`` of a summary (from ``split_name``/``subset`` or ``split``)."""
    run = as_run(summary)
    name, subset = results.split_parts(run.split)
    return run.split_name or name, run.subset or subset


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
