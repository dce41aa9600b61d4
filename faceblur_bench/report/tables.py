"""Method × metric tables from run summaries (and published rows).

:func:`summary_table` is the generic table used by ``faceblur-bench table`` without a layout and
by the leaderboard; the papers' layouts live in :mod:`faceblur_bench.report.layouts`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..results import RunSummary
from . import names
from .render import Cell, Column, Format, Row, Table, render
from .store import as_run

STATUS_TEXT = {
    "unavailable": "n/a",
    "not-applicable": "not applicable",
    "error": "error",
}


def metric_order(summaries: Iterable[RunSummary | dict[str, Any]]) -> list[str]:
    """Metric names in order of first appearance across ``summaries``."""
    order: list[str] = []
    for s in summaries:
        for name in as_run(s).metrics:
            if name not in order:
                order.append(name)
    return order


def metric_column(name: str, entry: dict[str, Any] | None, group: str | None = None,
                  key: str | None = None) -> Column:
    """Column for harness metric ``name``; label/direction/protocol from the summary entry,
    falling back to :data:`names.QUANTITIES`."""
    disp = names.display(name)
    entry = entry or {}
    hib = entry.get("higher_is_better")
    if hib is None:
        hib = disp.higher_is_better
    return Column(
        key=key or name,
        label=str(entry.get("label") or disp.label),
        higher_is_better=hib,
        group=group,
        decimals=disp.decimals,
        protocol=entry.get("protocol") or None,
    )


def metric_columns(summaries: list[dict[str, Any]], metrics: list[str] | None = None
                   ) -> dict[str, Column]:
    """``{metric: Column}`` for ``metrics`` (default: every metric of the runs, in order), each
    from the first run's entry that names a protocol (label, direction, protocol)."""
    entries: dict[str, dict[str, Any]] = {}
    for s in summaries:
        for m, e in (s.get("metrics") or {}).items():
            if m not in entries or (entries[m].get("protocol") is None and e.get("protocol")):
                entries[m] = e
    return {m: metric_column(m, entries.get(m)) for m in (metrics or metric_order(summaries))}


def metric_cell(entry: dict[str, Any] | None) -> Cell:
    """Cell of one summary metric entry (value ± std, or the reason it has none)."""
    if entry is None:
        return Cell(note="metric not computed in this run")
    status = entry.get("status", "ok")
    value = entry.get("value")
    if status == "ok" and value is not None and not (isinstance(value, float) and math.isnan(value)):
        std, ci = entry.get("std"), entry.get("ci95")
        return Cell(value=float(value), std=None if std is None else float(std),
                    infinite=int((entry.get("extra") or {}).get("infinite") or 0),
                    ci95=(float(ci[0]), float(ci[1])) if ci and None not in ci else None)
    reason = entry.get("reason") or ("no value" if status == "ok" else status)
    word = STATUS_TEXT.get(status, "no value")
    return Cell(note=f"{word} — {reason}" if word != reason else word)


def short_reason(reason: Any, width: int = 160) -> str:
    """First line of a failure reason, shortened at a word boundary (never inside a file name
    or path) with "…" when longer than ``width``."""
    line = str(reason or "?").split("\n")[0].strip()
    if len(line) <= width:
        return line
    cut = line.rfind(" ", 0, width)
    if cut <= 0:  # one long word (a path): keep it whole
        return line
    return line[:cut].rstrip(" ,;:") + " …"


def run_label(summary: RunSummary | dict[str, Any]) -> str:
    return as_run(summary).method or "?"


def _disambiguate(summaries: list[RunSummary | dict[str, Any]]) -> list[str]:
    runs = [as_run(s) for s in summaries]
    labels = [r.method or "?" for r in runs]
    if len({r.split for r in runs}) > 1:
        labels = [f"{lab} ({r.split})" for lab, r in zip(labels, runs)]
    counts = Counter(labels)
    out = []
    for lab, r in zip(labels, runs):
        if counts[lab] > 1:
            tag = (r.checkpoint.rsplit("/", 1)[-1] if r.checkpoint else None) or r.run_key or "?"
            lab = f"{lab} [{tag}]"
        out.append(lab)
    counts = Counter(out)
    return [f"{lab} [{r.run_key}]" if counts[lab] > 1 else lab for lab, r in zip(out, runs)]


def summary_rows(summaries: list[RunSummary | dict[str, Any]], metrics: list[str],
                 ) -> tuple[list[Row], list[str], bool]:
    """Rows for ``summaries`` over ``metrics`` plus run-level notes; third item: any failures."""
    rows: list[Row] = []
    notes: list[str] = []
    runs = [as_run(s) for s in summaries]
    any_failed = any(r.counts.failed > 0 for r in runs)
    for label, r in zip(_disambiguate(runs), runs):
        cells = {m: metric_cell(r.metrics[m].to_dict()) if m in r.metrics else
                 Cell(note=f"{m} not computed in this run") for m in metrics}
        total, failed = r.counts.total, r.counts.failed
        if any_failed:
            cells["__failed__"] = Cell(value=float(failed), text=f"{failed}/{total}")
        if not r.complete or r.partial:
            if r.limit:
                what = f"first {r.limit} samples only (--limit)"
            elif r.partial:
                what = "partial split (files missing)"
            else:
                what = "incomplete run"
            label = f"{label} †"
            notes.append(f"† {label[:-2]}: {what}; {r.counts.ok} of {total} images scored")
        if failed:
            reasons = Counter(short_reason(f.get("reason")) for f in r.failures)
            if reasons:
                top = "; ".join(f"{why} ×{n}" for why, n in reasons.most_common(3))
                notes.append(f"{label}: {failed} of {total} images failed ({top})")
        rows.append(Row(label=label, cells=cells, source=None, ranked=names.is_ranked(r.method)))
    if any(not names.is_ranked(r.method) for r in runs) and len(runs) > 1:
        notes.append("blurred (the degraded input itself) is a reference row: not marked best or second")
    return rows, notes, any_failed


def summary_table(summaries: list[dict[str, Any]], metrics: list[str] | None = None,
                  fmt: Format = "md", show_std: bool = False, title: str = "",
                  published: list[Row] | None = None) -> str:
    """Method × metric table of run summaries (schema of ``summary.json``).

    ``metrics``: columns in this order (default: every metric of the runs, in their order).
    Headers carry ↑/↓, best is bold and second underlined (ties share the mark), metrics without a
    value show "–" with the reason in a footnote, protocols are listed under the table, and a
    ``failed`` column (``failed/total``) appears when any run has failed images.
    ``published`` rows (see :mod:`faceblur_bench.report.published`) are appended, marked reported.
    """
    table = build_summary_table(summaries, metrics, title=title, published=published)
    return render(table, fmt, show_std=show_std)


def build_summary_table(summaries: list[dict[str, Any]], metrics: list[str] | None = None,
                        title: str = "", published: list[Row] | None = None) -> Table:
    """The :class:`Table` behind :func:`summary_table`."""
    metrics = list(metrics) if metrics else metric_order(summaries)
    columns = list(metric_columns(summaries, metrics).values())
    rows, notes, any_failed = summary_rows(summaries, metrics)
    if any_failed:
        columns.append(Column(key="__failed__", label="failed", higher_is_better=None, decimals=0))
    if published:
        for r in rows:
            r.source = "reproduced"
        for r in published:
            if any_failed:
                r.cells.setdefault("__failed__", Cell(text=""))
        rows = rows + list(published)
    return Table(title=title, columns=columns, rows=rows, notes=notes)


def has_reference(summaries: list[dict[str, Any]], split: str | None = None) -> bool:
    """False when these runs are on a split without ground truth (real blur, ``folder:DIR``).

    Uses the summaries' ``has_reference`` field; older summaries (and a split with no run) fall
    back to the registered split class of ``split`` or of the summaries' split name."""
    flags = [s["has_reference"] for s in summaries if "has_reference" in s]
    if flags:
        return any(bool(f) for f in flags)
    name = split or (str(summaries[0].get("split_name") or summaries[0].get("split") or "")
                     if summaries else "")
    base = name.split(":")[0].split("/")[0]
    from ..registry import splits

    return bool(getattr(splits.get(base), "has_reference", True)) if base in splits else True


NO_REFERENCE_HEADING = "real blur, no ground truth: no-reference metrics only"


def applicable_metrics(summaries: list[dict[str, Any]], metrics: list[str]) -> tuple[list[str], str | None]:
    """``metrics`` without those every run reports "not applicable", and a note naming them.

    On a split without ground truth the reference metrics are not applicable in every run; a
    table of such columns says nothing, so they are left out and listed in one note."""
    keep, dropped = [], []
    for m in metrics:
        entries = [(s.get("metrics") or {}).get(m) for s in summaries]
        if entries and all(e is not None and e.get("status") == "not-applicable" for e in entries):
            dropped.append(m)
        else:
            keep.append(m)
    note = f"not applicable without ground truth (left out): {', '.join(dropped)}" if dropped else None
    return keep, note


def split_table(summaries: list[dict[str, Any]], metrics: list[str] | None = None,
                fmt: Format = "md", show_std: bool = False, title: str = "",
                published: list[Row] | None = None, split: str | None = None,
                notes: list[str] | None = None) -> str:
    """:func:`summary_table` of one split's runs; on a split without ground truth the title says
    so (:data:`NO_REFERENCE_HEADING`) and the columns every run reports "not applicable" are
    left out and named in a note (:func:`applicable_metrics`).

    Runs on custom or synthesised data (:func:`store.is_custom`) get a table of their own under
    a heading that names the data; ``published`` rows go only with the official runs."""
    from .store import origin_groups

    groups = origin_groups(summaries)
    if groups and (len(groups) > 1 or groups[0][0] is not None):
        metrics = list(metrics) if metrics else metric_order(summaries)
        parts = []
        if published and groups[0][0] is not None:  # no official run: the papers' rows alone
            parts.append(_split_table_one([], metrics, fmt, show_std, title or split or "", published, split))
        for heading, runs in groups:
            if heading is None:
                parts.append(_split_table_one(runs, metrics, fmt, show_std, title, published, split,
                                              notes=notes))
            else:
                parts.append(_split_table_one(runs, metrics, fmt, show_std, title, None, split,
                                              suffix=heading))
        return "\n".join(p.rstrip("\n") + "\n" for p in parts)
    return _split_table_one(summaries, metrics, fmt, show_std, title, published, split, notes=notes)


def split_table_with_published(summaries: list[dict[str, Any]], split: str, fmt: Format = "md",
                               metrics: list[str] | None = None, show_std: bool = False,
                               include_published: bool = True,
                               methods: list[str] | None = None) -> str:
    """The plain table ``faceblur-bench table --split`` prints: :func:`split_table` of
    ``summaries`` with the papers' numbers for ``split`` appended (their notes under the table)
    unless ``include_published`` is off or ``methods`` restricts the rows to stored runs."""
    from ..results import split_parts
    from . import published

    pub_rows: list[Row] = []
    pub_notes: list[str] = []
    if include_published and not methods:
        name, subset = split_parts(split)
        pub_rows = published.rows_for_split(name, subset or None, metrics or metric_order(summaries),
                                            notes=pub_notes)
    return split_table(summaries, metrics=metrics, fmt=fmt, show_std=show_std, title=split,
                       published=pub_rows or None, split=split, notes=pub_notes)


def _split_table_one(summaries: list[dict[str, Any]], metrics: list[str] | None, fmt: Format,
                     show_std: bool, title: str, published: list[Row] | None,
                     split: str | None, suffix: str | None = None,
                     notes: list[str] | None = None) -> str:
    note = None
    if summaries and not has_reference(summaries, split):
        metrics, note = applicable_metrics(summaries, list(metrics) if metrics else metric_order(summaries))
        title = f"{title or summaries[0].get('split', '')} — {NO_REFERENCE_HEADING}"
    if suffix:  # e.g. the custom-data heading, after the split's own
        title = f"{title or (summaries[0].get('split', '') if summaries else '')} — {suffix}"
    table = build_summary_table(summaries, metrics, title=title, published=published)
    table.notes += list(notes or [])
    if note:
        table.notes.append(note)
    return render(table, fmt, show_std=show_std)


def metrics_with_values(summaries: list[dict[str, Any]],
                        metrics: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Split ``metrics`` (default: every metric of the runs) into (those at least one run has a
    value for, those no run has a value for), each in order."""
    has, lacks = [], []
    for m in list(metrics) if metrics else metric_order(summaries):
        entries = [(s.get("metrics") or {}).get(m) for s in summaries]
        if any(metric_cell(e).value is not None for e in entries if e is not None):
            has.append(m)
        else:
            lacks.append(m)
    return has, lacks


def console_split_table(summaries: list[dict[str, Any]], fmt: Format = "md",
                        split: str | None = None, full_table: str | None = None) -> str:
    """What ``run`` prints: :func:`split_table` with only the metrics that have a value in some
    run, then one line per reason naming the metrics left out (the reason carries the fix, e.g.
    the ``weights fetch`` command). ``full_table`` names the file holding the full table.
    With no metric value at all (every image failed) the full table is printed."""
    has, lacks = metrics_with_values(summaries)
    if not has or not lacks:
        return split_table(summaries, fmt=fmt, split=split)
    text = split_table(summaries, metrics=has, fmt=fmt, split=split).rstrip("\n")
    groups: dict[str, list[str]] = {}
    for m in lacks:
        entry = next((e for e in ((s.get("metrics") or {}).get(m) for s in summaries)
                      if e is not None), None)
        why = metric_cell(entry).note or "no value"
        label = str((entry or {}).get("label") or names.display(m).label)
        groups.setdefault(why, []).append(f"{label} ({m})")
    where = f" (the full table is in {full_table})" if full_table else ""
    lines = ["", f"Not shown — no value on this machine{where}:"]
    lines += [f"- {', '.join(ms)}: {why}" for why, ms in groups.items()]
    return text + "\n" + "\n".join(lines) + "\n"


__all__ = ["console_split_table", "split_table_with_published", "metrics_with_values", "has_reference", "split_table", "applicable_metrics", "NO_REFERENCE_HEADING", "summary_table", "build_summary_table", "metric_column", "metric_columns", "metric_cell",
           "metric_order", "summary_rows"]
