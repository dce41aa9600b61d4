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
from ..stats import CI_NAME
from . import coverage, names
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
    entries = metric_entries(summaries)
    return {m: metric_column(m, entries.get(m)) for m in (metrics or metric_order(summaries))}


def metric_entries(summaries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{metric: entry}``: per metric, the first run's summary entry that names a protocol (else
    the first one) — what a column's label, direction, protocol and kind are read from."""
    entries: dict[str, dict[str, Any]] = {}
    for s in summaries:
        for m, e in (s.get("metrics") or {}).items():
            if m not in entries or (entries[m].get("protocol") is None and e.get("protocol")):
                entries[m] = e
    return entries


def metric_cell(entry: dict[str, Any] | None) -> Cell:
    """Cell of one summary metric entry (value ± std and its 95% interval, or the reason it has
    none)."""
    if entry is None:
        return Cell(note="metric not computed in this run")
    status = entry.get("status", "ok")
    value = entry.get("value")
    if status == "ok" and value is not None and not (isinstance(value, float) and math.isnan(value)):
        std, ci = entry.get("std"), entry.get("ci95")
        how = (entry.get("extra") or {}).get("ci")
        return Cell(value=float(value), std=None if std is None else float(std),
                    infinite=int((entry.get("extra") or {}).get("infinite") or 0),
                    ci=None if ci is None else (float(ci[0]), float(ci[1])),
                    ci_how={**how, "n_units": entry.get("n_units")} if isinstance(how, dict) else None)
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
    """What a table calls a run: its ``--label`` when it has one, else its method name (the run
    key stays in the provenance)."""
    r = as_run(summary)
    return r.label or r.method or "?"


def _disambiguate(summaries: list[RunSummary | dict[str, Any]]) -> list[str]:
    runs = [as_run(s) for s in summaries]
    labels = [run_label(r) for r in runs]
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


def run_entries(run: RunSummary, metrics: list[str], ci: bool = False) -> dict[str, dict[str, Any]]:
    """The metric entries of ``run`` among ``metrics``; with ``ci``, paired metrics of runs stored
    before intervals were recorded get theirs from the run's rows
    (:func:`faceblur_bench.stats.add_interval`)."""
    entries = {m: e.to_dict() for m, e in run.metrics.items() if m in metrics}
    todo = [m for m, e in entries.items() if e.get("ci95") is None and e.get("kind") == "paired"
            and e.get("status") == "ok" and e.get("value") is not None]
    if ci and todo and run.run_dir:
        from ..stats import add_interval
        from .store import read_rows

        ok = [r for r in read_rows(run.run_dir) if r["status"] == "ok"]
        for m in todo:
            add_interval(entries[m], ok, m)
    return entries


def summary_rows(summaries: list[RunSummary | dict[str, Any]], metrics: list[str],
                 ci: bool = False) -> tuple[list[Row], list[str], bool]:
    """Rows for ``summaries`` over ``metrics`` plus run-level notes; third item: any failures.

    The ranking rule (:mod:`faceblur_bench.report.coverage`): a run that is not complete, or
    whose summary did not match its rows, is labelled ("wiener † (32/720)") and never marked;
    rows are ranked only against rows on the same image set (split and data); a column whose
    values were scored on different images shows "(n/N)" and ranks only values scored on every
    image (:func:`faceblur_bench.report.render.marks`). ``ci``: see :func:`run_entries`."""
    rows: list[Row] = []
    notes: list[str] = []
    runs = [as_run(s) for s in summaries]
    any_failed = any(r.counts.failed > 0 for r in runs)
    primary = _primary_image_set(runs)
    counted: list[Row] = []  # rows of complete runs: their per-metric counts are compared
    for label, r in zip(_disambiguate(runs), runs):
        entries = run_entries(r, metrics, ci)
        cells = {m: _run_cell(r, m, entries) for m in metrics}
        total, failed = r.counts.total, r.counts.failed
        if any_failed:
            cells["__failed__"] = Cell(value=float(failed), text=f"{failed}/{total}")
        cov = coverage.coverage(r)
        ranked = coverage.rankable(r)
        other_set = ranked and coverage.image_set(r) != primary
        if not cov.complete or not cov.verified:
            label = f"{label} † ({cov.label or 'unverified'})"
            notes.append(f"† {label}: {cov.sentence}")
        elif other_set:
            notes.append(f"{label}: on another image set ({r.split}) than the ranked rows; not ranked")
        ranked = ranked and not other_set
        if failed:
            reasons = Counter(short_reason(f.get("reason")) for f in r.failures)
            if reasons:
                top = "; ".join(f"{why} ×{n}" for why, n in reasons.most_common(3))
                notes.append(f"{label}: {failed} of {total} images failed ({top})")
        rows.append(Row(label=label, cells=cells, source=None, ranked=ranked))
        if cov.complete:  # an incomplete run says its count in its label
            counted.append(rows[-1])
    notes += _count_notes(counted, metrics)
    if any(not names.is_ranked(r.method) for r in runs) and len(runs) > 1:
        notes.append("blurred (the degraded input itself) is a reference row: not marked best or second")
    return rows, notes, any_failed


def _run_cell(run: RunSummary, metric: str, entries: dict[str, dict[str, Any]]) -> Cell:
    """The cell of one run's metric (its entry from :func:`run_entries`), with the images it was
    scored on (when read from disk)."""
    if metric not in entries:
        return Cell(note=f"{metric} not computed in this run")
    cell = metric_cell(entries[metric])
    info = coverage.scored(run, metric)
    if info is not None and cell.has_value:
        cell.scored, cell.total, cell.images = info["scored"], info["total"], info["images"]
    return cell


def _primary_image_set(runs: list[RunSummary]) -> tuple[str, str] | None:
    """The image set whose rankable runs compete for the marks: the one of most complete
    (whole-split) runs, then of most runs."""
    groups: dict[tuple[str, str], list[RunSummary]] = {}
    for r in runs:
        if coverage.rankable(r):
            groups.setdefault(coverage.image_set(r), []).append(r)
    if not groups:
        return None
    return max(groups, key=lambda k: (sum(coverage.coverage(r).complete for r in groups[k]),
                                      len(groups[k])))


def _count_notes(rows: list[Row], metrics: list[str]) -> list[str]:
    """Columns whose values were scored on different images: every value shows "(n/N)", and a
    note says which rows the marks compare."""
    notes = []
    for m in metrics:
        cells = [row.cells[m] for row in rows if m in row.cells and row.cells[m].has_value]
        known = [c for c in cells if c.images is not None]
        differ = len({c.scored for c in known}) > 1 or (
            len({c.images for c in known}) > 1 and len({c.total for c in known}) == 1)
        if not differ:
            continue
        for c in cells:
            c.show_count = c.scored is not None
        label = names.display(m).label if m in names.QUANTITIES else m
        notes.append(f"{label}: rows were scored on different images (n/N beside each value); "
                     "marks compare only rows scored on every image of the split")
    return notes


def interval_protocol(cells: list[Cell]) -> str:
    """The clause a column's protocol line gets under ``--ci``: method, unit(s) and their number,
    resamples, seed (from the cells' :attr:`Cell.ci_how`)."""
    how = [c.ci_how for c in cells if c.ci is not None and c.ci_how]
    if not how:
        return ""
    units = sorted({str(h.get("unit")) for h in how})
    n = sorted({h.get("n_units") for h in how if h.get("n_units") is not None})
    count = f"{n[0]} " if len(n) == 1 else ""
    return (f"; 95% CI: {CI_NAME} over {count}{'/'.join(units)}s, {how[0].get('resamples')} "
            f"resamples, seed {how[0].get('seed')}")


def summary_table(summaries: list[dict[str, Any]], metrics: list[str] | None = None,
                  fmt: Format = "md", show_std: bool = False, title: str = "",
                  published: list[Row] | None = None, ci: bool = False,
                  significance: bool = True) -> str:
    """Method × metric table of run summaries (schema of ``summary.json``).

    ``metrics``: columns in this order (default: every metric of the runs, in their order).
    Headers carry ↑/↓, best is bold and second underlined (ties share the mark), metrics without a
    value show "–" with the reason in a footnote, protocols are listed under the table, and a
    ``failed`` column (``failed/total``) appears when any run has failed images.
    ``published`` rows (see :mod:`faceblur_bench.report.published`) are appended, marked reported.
    """
    table = build_summary_table(summaries, metrics, title=title, published=published, ci=ci,
                                significance=significance)
    return render(table, fmt, show_std=show_std)


def build_summary_table(summaries: list[dict[str, Any]], metrics: list[str] | None = None,
                        title: str = "", published: list[Row] | None = None,
                        ci: bool = False, significance: bool = True) -> Table:
    """The :class:`Table` behind :func:`summary_table`.

    ``ci``: each paired value shows its 95% interval and the protocol line says how it was
    computed. ``significance`` (default): best/second marks follow
    :mod:`faceblur_bench.report.significance` for runs with stored rows (ties where the best is
    not significantly better than the runner-up); published rows keep the papers' numbers.
    """
    metrics = list(metrics) if metrics else metric_order(summaries)
    columns = list(metric_columns(summaries, metrics).values())
    rows, notes, any_failed = summary_rows(summaries, metrics, ci=ci)
    if ci:
        for col in columns:
            col.protocol = (col.protocol or "") + interval_protocol(
                [r.cells[col.key] for r in rows if col.key in r.cells])
    if any_failed:
        columns.append(Column(key="__failed__", label="failed", higher_is_better=None, decimals=0))
    if published:
        for r in rows:
            r.source = "reproduced"
        for r in published:
            if any_failed:
                r.cells.setdefault("__failed__", Cell(text=""))
        rows = rows + list(published)
    notes += small_set_notes(summaries, metrics)
    table = Table(title=title, columns=columns, rows=rows, notes=notes, show_ci=ci)
    runs = [as_run(s) for s in summaries]
    if significance and any(r.run_dir for r in runs):
        from .significance import apply_significance
        from .store import read_rows

        def rows_of(i: int) -> list[dict[str, Any]] | None:
            run_dir = runs[i].run_dir if i < len(runs) else None  # published rows come after
            return read_rows(run_dir) or None if run_dir else None

        kinds = {m: e.get("kind") for m, e in metric_entries(summaries).items()}
        apply_significance(table, rows_of, kinds)
    return table


def small_set_notes(summaries: list[dict[str, Any]], metrics: list[str]) -> list[str]:
    """A footnote per FID column whose value carries the small-set warning of
    :mod:`faceblur_bench.metrics.fid` (fewer than 2,048 images per set: biased upwards, by an
    amount that depends on n); it points to KID, which is unbiased."""
    out = []
    for m in metrics:
        if not m.startswith("fid"):
            continue
        sizes = sorted({f"{ex.get('n')}/{ex.get('n_reference')}" for s in summaries
                        if (e := (s.get("metrics") or {}).get(m)) and e.get("status") == "ok"
                        and (ex := e.get("extra") or {}).get("warning")})
        if sizes:
            kid = "kid-clean" if m == "fid-clean" else "kid"
            out.append(f"{m}: computed on fewer than 2048 images per set (restored/reference: "
                       f"{', '.join(sizes)}), where FID is biased upwards by an amount that "
                       f"depends on n; compare only equal n, or use {kid} (unbiased).")
    return out


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
#: heading of a ``folder:DIR`` split: photos of any kind, not known to be blurred
FOLDER_HEADING = "photos without ground truth: no-reference metrics only"


def no_reference_heading(summaries: list[dict[str, Any]]) -> str:
    """:data:`FOLDER_HEADING` for ``folder:`` splits (nothing says the photos are blurred),
    :data:`NO_REFERENCE_HEADING` for real-blur splits (``lai-real``)."""
    folder = summaries and all(str(s.get("split", "")).startswith("folder:") for s in summaries)
    return FOLDER_HEADING if folder else NO_REFERENCE_HEADING


def dropped_notes(summaries: list[dict[str, Any]]) -> list[str]:
    """One note per photo folder whose photos were left out (no face passed detection)."""
    notes, seen = [], set()
    for s in summaries:
        dropped = (s.get("data_origin") or {}).get("dropped") or []
        if dropped and s.get("split") not in seen:
            seen.add(s.get("split"))
            shown = ", ".join(dropped[:10]) + (f", … ({len(dropped) - 10} more)" if len(dropped) > 10 else "")
            notes.append(f"{s.get('split')}: {len(dropped)} photo(s) left out — no face passed "
                         f"detection: {shown}")
    return notes


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
                notes: list[str] | None = None, ci: bool = False, significance: bool = True) -> str:
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
                                              notes=notes, ci=ci, significance=significance))
            else:
                parts.append(_split_table_one(runs, metrics, fmt, show_std, title, None, split,
                                              suffix=heading, ci=ci, significance=significance))
        return "\n".join(p.rstrip("\n") + "\n" for p in parts)
    return _split_table_one(summaries, metrics, fmt, show_std, title, published, split, notes=notes,
                            ci=ci, significance=significance)


def split_table_with_published(summaries: list[dict[str, Any]], split: str, fmt: Format = "md",
                               metrics: list[str] | None = None, show_std: bool = False,
                               include_published: bool = True,
                               methods: list[str] | None = None, ci: bool = False,
                               significance: bool = True) -> str:
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
                       published=pub_rows or None, split=split, notes=pub_notes, ci=ci,
                       significance=significance)


def _split_table_one(summaries: list[dict[str, Any]], metrics: list[str] | None, fmt: Format,
                     show_std: bool, title: str, published: list[Row] | None,
                     split: str | None, suffix: str | None = None,
                     notes: list[str] | None = None, ci: bool = False,
                     significance: bool = True) -> str:
    note = None
    if summaries and not has_reference(summaries, split):
        metrics, note = applicable_metrics(summaries, list(metrics) if metrics else metric_order(summaries))
        title = f"{title or summaries[0].get('split', '')} — {no_reference_heading(summaries)}"
    if suffix:  # e.g. the custom-data heading, after the split's own
        title = f"{title or (summaries[0].get('split', '') if summaries else '')} — {suffix}"
    table = build_summary_table(summaries, metrics, title=title, published=published, ci=ci,
                                significance=significance)
    table.notes += list(notes or []) + dropped_notes(summaries)
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


__all__ = ["console_split_table", "split_table_with_published", "metrics_with_values", "has_reference", "split_table", "applicable_metrics", "NO_REFERENCE_HEADING", "FOLDER_HEADING", "summary_table", "build_summary_table", "metric_column", "metric_columns", "metric_cell",
           "metric_order", "summary_rows"]
