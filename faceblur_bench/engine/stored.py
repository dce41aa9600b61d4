"""Stored runs of a results directory: list them, remove one, prune those where every image failed
(``faceblur-bench runs``).

A run is a directory ``<results>/runs/<split-slug>/<method>/<run_key>/`` (:func:`results.run_dir`).
Removal follows the rules ``run`` writes under:

- **containment**: only a directory exactly three levels below ``<results>/runs/``, reached
  without a symlink (neither the run directory nor its parents inside ``runs/``), is removed; a
  run named by a path outside the results directory is refused;
- **the run lock**: the run's ``.lock`` is taken exactly as ``run`` takes it
  (:class:`~faceblur_bench.results.RunStore`, ``--wait`` seconds); a run being written is refused
  with the same message as a second ``run``. Under the lock the directory is renamed out of
  ``runs/`` (readers never see half a run), then deleted; emptied method / split folders go too.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..results import RunStore, latest_rows, scan_rows

#: depth of a run directory below ``<results>/runs``: <split-slug>/<method>/<run_key>
RUN_DEPTH = 3


@dataclass(frozen=True)
class StoredRun:
    """One stored run as ``runs`` lists it (counts from the rows when there is no summary)."""

    dir: Path
    split: str
    method: str
    run_key: str
    label: str | None
    ok: int
    failed: int
    date: str

    @property
    def all_failed(self) -> bool:
        """Every stored image failed (a wrong pattern, a missing folder): nothing to show."""
        return self.ok == 0 and self.failed > 0

    def to_dict(self) -> dict:
        return {"run": str(self.dir), "split": self.split, "method": self.method, "label": self.label,
                "run_key": self.run_key, "ok": self.ok, "failed": self.failed, "date": self.date}


def runs_root(results_dir: str | Path) -> Path:
    root = Path(results_dir) / "runs"
    if not root.is_dir():
        raise UsageError(f"{results_dir} holds no runs (no {root})",
                         "pass the results directory of `faceblur-bench run --out DIR` (default results/)")
    return root


def list_runs(results_dir: str | Path) -> list[StoredRun]:
    """Every run directory under ``<results_dir>/runs`` (symlinks are not followed), sorted by
    split, method and date."""
    root = runs_root(results_dir)
    out = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for method_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            for d in sorted(p for p in method_dir.iterdir()
                            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")):
                out.append(_describe(d))
    return sorted(out, key=lambda r: (r.split, r.method, r.date))


def _describe(d: Path) -> StoredRun:
    try:
        summary = json.loads((d / "summary.json").read_text())
        if not isinstance(summary, dict):
            summary = {}
    except (OSError, ValueError):
        summary = {}
    counts = summary.get("counts") if isinstance(summary.get("counts"), dict) else None
    if counts is None:  # a run stopped before its first summary: count its rows
        rows = list(latest_rows(scan_rows(d / "rows.jsonl", warn=False).rows)[0].values())
        counts = {"ok": sum(r.get("status") == "ok" for r in rows),
                  "failed": sum(r.get("status") != "ok" for r in rows)}
    label = summary.get("label")
    return StoredRun(dir=d, split=str(summary.get("split") or d.parent.parent.name),
                     method=str(summary.get("method") or d.parent.name), run_key=d.name,
                     label=label if isinstance(label, str) and label.strip() else None,
                     ok=int(counts.get("ok") or 0), failed=int(counts.get("failed") or 0),
                     date=str((summary.get("provenance") or {}).get("date") or ""))


def find_run(results_dir: str | Path, ref: str) -> StoredRun:
    """The run ``ref`` names: its directory (a path), its run key, or its ``--label``.

    :class:`UsageError` (exit 2) when nothing or several runs match, listing them."""
    runs = list_runs(results_dir)
    hit = [r for r in runs if r.run_key == ref or r.label == ref]
    if not hit and (os.sep in ref or Path(ref).is_dir()):  # a directory
        d = contained_run_dir(results_dir, ref)
        hit = [r for r in runs if r.dir.resolve() == d.resolve()]
    if len(hit) == 1:
        return hit[0]
    if hit:
        raise UsageError(f"{ref!r} names {len(hit)} runs: " + "; ".join(str(r.dir) for r in hit),
                         "name one by its run key or directory (`faceblur-bench runs` lists them)")
    names = sorted({r.run_key for r in runs} | {r.label for r in runs if r.label})
    close = difflib.get_close_matches(ref, names, n=2, cutoff=0.5)
    raise UsageError(f"no run {ref!r} under {results_dir}"
                     + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""),
                     "`faceblur-bench runs --results DIR` lists the stored runs (key, label, directory)")


def contained_run_dir(results_dir: str | Path, d: str | Path) -> Path:
    """``d`` when it is a run directory of ``results_dir`` (see the module docstring); else a
    :class:`UsageError` saying why it is not removed."""
    root = runs_root(results_dir)
    d = Path(os.path.abspath(d))
    root_abs = Path(os.path.abspath(root))
    try:
        rel = d.relative_to(root_abs)
    except ValueError:
        raise UsageError(f"{d} is not a run of {results_dir} (not under {root_abs})",
                         "runs are <results>/runs/<split>/<method>/<run_key>/") from None
    if len(rel.parts) != RUN_DEPTH or any(part.startswith(".") for part in rel.parts):
        raise UsageError(f"{d} is not a run directory (runs are <results>/runs/<split>/<method>/<run_key>/)",
                         "`faceblur-bench runs` lists them")
    cur = root_abs
    for part in rel.parts:
        cur = cur / part
        if cur.is_symlink():
            raise UsageError(f"{cur} is a symlink (to {os.readlink(cur)}): runs reached through a link "
                             "are never removed", "remove the link yourself if it is not wanted")
    if not d.is_dir():
        raise UsageError(f"run directory {d} does not exist", "`faceblur-bench runs` lists them")
    return d


def remove_run(results_dir: str | Path, run: StoredRun | str | Path, wait: float = 0.0) -> Path:
    """Remove one run (under its lock; see the module docstring); returns its directory."""
    d = contained_run_dir(results_dir, run.dir if isinstance(run, StoredRun) else run)
    trash = d.parent / f".{d.name}.removing-{os.getpid()}"
    with RunStore(d, wait=wait):  # the lock `run` takes: refuses while a run writes here
        d.rename(trash)  # out of sight of every reader at once
    shutil.rmtree(trash)
    for parent in (d.parent, d.parent.parent):  # an emptied method folder, then split folder
        try:
            parent.rmdir()
        except OSError:
            break
    return d


def prune_failed(results_dir: str | Path, wait: float = 0.0, dry_run: bool = False) -> list[StoredRun]:
    """Remove every run in which every stored image failed; returns them (nothing removed with
    ``dry_run``)."""
    doomed = [r for r in list_runs(results_dir) if r.all_failed]
    if not dry_run:
        for r in doomed:
            remove_run(results_dir, r, wait)
    return doomed
