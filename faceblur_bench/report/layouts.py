"""The papers' table layouts, filled with published rows and rows reproduced by this harness.

A :class:`Layout` names the paper table it follows, the split(s) it reads, its columns (column
groups × metrics) and how reproduced values are computed:

- whole-split values come from ``summary.json``; when a layout needs a whole split (e.g.
  MSPL-Center) and only per-subset runs exist, paired metrics are pooled over the subsets' rows;
- per-kernel-size and per-frame-count cells are computed from ``rows.jsonl`` (``meta.kernel_size``,
  ``meta.n_frames``): mean over the images of that group with status "ok" and a finite value
  (set metrics such as FID cannot be split this way and show "–" with the reason);
- "worst" cells are the minimum over images; "mean ± std" uses the population std;
- run time is ``summary["runtime"]`` when the run measured it, else the mean ``restore_s`` of the
  rows; parameters are ``num_parameters`` / 1e6.

Published numbers appear exactly as printed, marked "reported" with the citation; reproduced rows
are marked "reproduced". A reproduced column uses the harness metric whose protocol matches the
paper's (:data:`names.HARNESS_METRICS`); when the run only has another protocol of the quantity,
that metric is used and the footnote says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UnknownNameError, UsageError
from ..results import config_key, split_parts
from . import names, published
from .published import Entry
from .render import Cell, Column, Row, Table
from .store import read_rows, summary_split
from .tables import metric_cell, run_label


@dataclass(frozen=True)
class MetricSpec:
    """One metric column: a published quantity, how reproduced values aggregate it."""

    quantity: str
    label: str | None = None
    #: "mean" (summary / mean over rows), "mean_std" (mean ± std), "min" (worst image)
    stat: str = "mean"
    #: quantity whose per-image values feed a derived column (psnr_worst <- psnr)
    source: str | None = None
    #: decimals of reproduced values (default: :data:`names.QUANTITIES`)
    decimals: int | None = None


@dataclass(frozen=True)
class Layout:
    name: str
    paper: str
    table: str
    title: str
    #: split names this layout reads; with ``per_split`` one table per split
    splits: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    #: column groups: None | "subset" | "split" | "kernel_size" | "group"
    group_by: str | None = None
    groups: tuple[str, ...] = ()
    per_split: bool = False
    #: methods as columns, metrics as rows (Yun et al.)
    transpose: bool = False
    row_header: str = "Method"
    #: published ``group`` value the table's entries carry (e.g. CFMD Table 3 "128x128")
    pub_group: str | None = None
    #: rows are (method, frame count) pairs (CFMD Table 4)
    rows_by_frames: bool = False
    #: a text column filled from the published ``note`` (e.g. "Implementation")
    note_column: str | None = None
    #: False when no reproduced run can fill this table (dataset tables)
    reproducible: bool = True
    #: evaluation protocol of the runs this table reads (``summary["protocol"]``, default s2s;
    #: CFMD Table 4 reads single-to-video runs only)
    protocol: str = "s2s"
    description: str = ""

    @property
    def citation(self) -> str:
        return f"{names.PAPERS[self.paper].short}, Table {self.table}"


M = MetricSpec
SUB = ("celeba", "celeba-hq", "ffhq")
KS = tuple(str(k) for k in range(13, 28, 2))
CF = tuple(M(q, decimals=4) for q in ("psnr", "ssim", "lpips", "fid", "arcface"))

LAYOUTS: dict[str, Layout] = {ly.name: ly for ly in (
    Layout("sappgan-t1", "sappgan", "1", "Quantitative comparison on the MSPL test set",
           ("mspl-center", "mspl-random"),
           (M("d_vgg"), M("d_arc"), M("lpips"), M("psnr"), M("ssim")),
           group_by="subset", groups=SUB, per_split=True),
    Layout("sappgan-t2", "sappgan", "2",
           "Run time, model parameters and verification accuracy (Shen et al. CelebA)",
           ("shen-celeba",), (M("runtime_s"), M("params_m"), M("verification_acc")),
           note_column="Implementation"),
    Layout("sappgan-t3", "sappgan", "3", "Ablation of SAPPGAN components on MSPL-Center",
           ("mspl-center",), (M("d_arc"), M("lpips"), M("psnr"), M("ssim")), row_header="Model"),
    Layout("dfpg-t1", "dfpg", "1", "Quantitative comparison on the Shen et al. test set",
           ("shen-helen", "shen-celeba"), (M("psnr"), M("ssim"), M("d_vgg"), M("lpips")),
           group_by="split", groups=("shen-helen", "shen-celeba")),
    Layout("dfpg-t2", "dfpg", "2", "Quantitative comparison on the MSPL test set",
           ("mspl-center", "mspl-random"), (M("psnr"), M("ssim"), M("d_vgg"), M("lpips")),
           group_by="subset", groups=SUB, per_split=True),
    Layout("dfpg-t3", "dfpg", "3", "Face detection and verification (Shen et al. CelebA)",
           ("shen-celeba",), (M("detection_rate"), M("verification_acc"))),
    Layout("dfpg-t4", "dfpg", "4", "Ablation on MSPL-Center (average over all subsets)",
           ("mspl-center",), (M("psnr"), M("ssim")), row_header="Model"),
    Layout("shen-t9", "shen", "9", "PSNR / SSIM per blur-kernel size",
           ("shen-helen", "shen-celeba"), (M("psnr"), M("ssim")),
           group_by="kernel_size", groups=KS, per_split=True),
    Layout("shen-t10", "shen", "10", "Average ± std and worst PSNR / SSIM",
           ("shen-helen", "shen-celeba"),
           (M("psnr", "Average PSNR", "mean_std"), M("psnr_worst", "Worst PSNR", "min", "psnr"),
            M("ssim", "Average SSIM", "mean_std"), M("ssim_worst", "Worst SSIM", "min", "ssim")),
           group_by="split", groups=("shen-helen", "shen-celeba")),
    Layout("shen-t11", "shen", "11", "Face detection and identification (CelebA)",
           ("shen-celeba",), (M("detection_rate"), M("top1"), M("top3"), M("top5"))),
    Layout("shen-t12", "shen", "12", "Execution time (10 images, 128x128) and model size",
           ("shen-helen", "shen-celeba"), (M("runtime_s", "Seconds"), M("params_m", "Parameters")),
           note_column="Implementation"),
    Layout("cfmd-t2", "cfmd", "2", "Single-to-single general deblurring (300VW, centre frame)",
           ("300vw",), CF, row_header="Methods"),
    Layout("cfmd-t3", "cfmd", "3", "Single-to-single face deblurring (300VW at 128x128)",
           ("300vw",), CF, pub_group="128x128", row_header="Methods"),
    Layout("cfmd-t4", "cfmd", "4", "Single-to-video deblurring per number of GT frames",
           ("300vw",), CF, pub_group="s2v", rows_by_frames=True, row_header="Methods", protocol="s2v"),
    Layout("cfmd-t5", "cfmd", "5", "Ablation of the ContAda block and FMR", ("300vw",), CF,
           row_header="Model"),
    Layout("yun-t1", "yun", "1", "Joint SR (x8) + deblurring on CelebA-HQ",
           ("celebahq-sr8",), (M("psnr"), M("ssim"), M("fid")), transpose=True,
           row_header="Metric"),
    Layout("yun-t2", "yun", "2", "Rank-1 face recognition rate at distance thresholds",
           ("celebahq-sr8",), (M("rank1_rate", "Rank-1"),), group_by="group",
           groups=("threshold 0.6", "threshold 0.7", "threshold 0.8"), transpose=True,
           row_header="Threshold"),
    Layout("yun-t3", "yun", "3", "Ablation of the network components", ("celebahq-sr8",),
           (M("psnr"), M("ssim"), M("fid")), transpose=True, row_header="Metric"),
)}

#: harness split -> default layout of ``faceblur-bench table --split S``
DEFAULT_LAYOUT = {"mspl-center": "sappgan-t1", "mspl-random": "sappgan-t1",
                  "shen-helen": "shen-t9", "shen-celeba": "shen-t9", "300vw": "cfmd-t2",
                  "celebahq-sr8": "yun-t1"}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        import difflib

        raise UnknownNameError("layout", name, sorted(LAYOUTS),
                               difflib.get_close_matches(name, sorted(LAYOUTS), n=3, cutoff=0.4))
    return LAYOUTS[name]


# -- reproduced values ----------------------------------------------------------------------------
@dataclass
class RunGroup:
    """Runs of one method configuration (one table row), keyed by full split name."""

    label: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rows(self, split_full: str) -> list[dict[str, Any]]:
        if split_full not in self._rows:
            s = self.runs[split_full]
            d = s.get("_run_dir") or s.get("run_dir")
            self._rows[split_full] = read_rows(d) if d else []
        return self._rows[split_full]


def group_runs(summaries: list[dict[str, Any]]) -> list[RunGroup]:
    """One :class:`RunGroup` per method configuration; the newest run per split wins."""
    groups: dict[tuple[str, ...], RunGroup] = {}
    for s in sorted(summaries, key=lambda s: str((s.get("provenance") or {}).get("date", ""))):
        key = config_key(s)
        g = groups.setdefault(key, RunGroup(label=key[0]))
        g.runs[str(s.get("split"))] = s
        g.label = run_label(s)  # the newest run's --label names the row (else the method)
    out = list(groups.values())
    by_label: dict[str, list[tuple[tuple[str, ...], RunGroup]]] = {}
    for k, g in groups.items():
        by_label.setdefault(g.label, []).append((k, g))
    for label, items in by_label.items():
        if len(items) > 1:
            for k, g in items:
                tag = k[1][:12] if k[1] else (k[2] if k[2] != "{}" else "default")
                g.label = f"{label} [{tag}]"
    return sorted(out, key=lambda g: g.label)


def _finite(vals: list[float]) -> np.ndarray:
    a = np.asarray(vals, dtype=np.float64)
    return a[np.isfinite(a)]


def _stat_cell(values: np.ndarray, stat: str, what: str) -> Cell:
    """Worst (min) or mean [± std] of per-image values; a mean leaves out infinite values
    (PSNR of identical pairs) and counts them in ``Cell.infinite``."""
    if values.size == 0:
        return Cell(note=f"no finite per-image {what} values")
    if stat == "min":
        return Cell(value=float(values.min()))
    fin = values[np.isfinite(values)]
    if fin.size == 0:
        return Cell(value=float(values[0])) if np.all(values == values[0]) else \
            Cell(note=f"no finite per-image {what} values")
    return Cell(value=float(fin.mean()), std=float(fin.std()) if stat == "mean_std" else None,
                infinite=int(values.size - fin.size))


def _metric_rows(rows: list[dict[str, Any]], metric: str,
                 where: tuple[str, str] | None = None) -> np.ndarray:
    vals = []
    for r in rows:
        if r.get("status", "ok") != "ok":
            continue
        if where is not None:
            mv = (r.get("meta") or {}).get(where[0])
            if mv is None or _norm(mv) != where[1]:
                continue
        v = (r.get("metrics") or {}).get(metric)
        if v is not None and not math.isnan(float(v)):
            vals.append(float(v))
    return np.asarray(vals, dtype=np.float64)  # ±inf kept: _stat_cell counts them


def _norm(v: Any) -> str:
    try:
        f = float(v)
        return str(int(f)) if f.is_integer() else str(f)
    except (TypeError, ValueError):
        return str(v)


class Resolver:
    """Chooses the harness metric for a published quantity and explains the choice."""

    def __init__(self, layout: Layout, entries: list[Entry]):
        self.protocol_id: dict[str, str] = {}
        self.protocol: dict[str, str] = {}
        for e in entries:
            self.protocol_id.setdefault(e.metric, e.protocol_id)
            self.protocol.setdefault(e.metric, e.protocol)
        self.used: dict[str, dict[str, str]] = {}  # quantity -> {harness metric: its protocol}
        self.mismatch: dict[str, set[str]] = {}

    def pick(self, quantity: str, available: dict[str, Any]) -> str | None:
        pid = self.protocol_id.get(quantity)
        if names.exact_protocol(quantity, pid):
            exact = names.harness_metric(quantity, pid, available=set(available))
            if exact in available:
                return exact
        loose = names.harness_metric(quantity, None, available=set(available))
        if loose in available:
            self.mismatch.setdefault(quantity, set()).add(loose)
            return loose
        return None

    def note_use(self, quantity: str, metric: str, entry: dict[str, Any] | None) -> None:
        proto = (entry or {}).get("protocol") or ""
        self.used.setdefault(quantity, {})[metric] = proto


def _available_metrics(g: RunGroup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in g.runs.values():
        out.update(s.get("metrics") or {})
    return out


def _run_for(g: RunGroup, split: str) -> tuple[str | None, list[str]]:
    """Full split name of ``g``'s run for ``split`` (exact), or the subset runs to pool."""
    if split in g.runs:
        return split, []
    subs = [k for k in g.runs if split_parts(k)[0] == split and split_parts(k)[1]]
    return None, sorted(subs)


def reproduced_cell(layout: Layout, g: RunGroup, split: str, group: str | None,
                    spec: MetricSpec, res: Resolver) -> Cell:
    """Cell of run group ``g`` for one (split, column group, metric) of ``layout``."""
    q = spec.source or spec.quantity
    target = split
    if layout.group_by == "subset" and group:
        target = f"{split}/{group}"
    elif layout.group_by == "split" and group:
        target = group
    exact, pool = _run_for(g, target)
    if exact is None and not pool:
        return Cell(note=f"no run of {g.label.split(' [')[0]} on {target}")
    runs = [g.runs[exact]] if exact else [g.runs[k] for k in pool]
    if q == "runtime_s":
        return _runtime_cell(g, [exact] if exact else pool)
    if q == "params_m":
        n = runs[0].get("num_parameters")
        return Cell(value=n / 1e6) if n else Cell(note="method reports no parameter count")
    available = {}
    for s in runs:
        available.update(s.get("metrics") or {})
    metric = res.pick(q, available)
    if metric is None:
        want = names.harness_metric(q, res.protocol_id.get(q)
                                    if names.exact_protocol(q, res.protocol_id.get(q)) else None)
        return Cell(note=f"{q}: metric not computed in the run (harness metric {want!r})")
    res.note_use(q, metric, available.get(metric))
    kind = (available.get(metric) or {}).get("kind", "paired")
    needs_rows = (layout.group_by == "kernel_size" or spec.stat in ("min", "mean_std")
                  or not exact)
    if not needs_rows:
        return metric_cell((runs[0].get("metrics") or {}).get(metric))
    if kind == "set":
        return Cell(note=f"{metric} is a set metric: it cannot be split per image group")
    rows: list[dict[str, Any]] = []
    for k in ([exact] if exact else pool):
        rows += g.rows(k)
    where = ("kernel_size", group) if layout.group_by == "kernel_size" and group else None
    if not rows:
        return Cell(note="rows.jsonl missing: per-image values needed")
    return _stat_cell(_metric_rows(rows, metric, where), spec.stat, metric)


def _runtime_cell(g: RunGroup, keys: list[str]) -> Cell:
    s = g.runs[keys[0]]
    rt = s.get("runtime") or {}
    for k in ("per_image_s", "mean_s", "seconds_per_image"):
        if isinstance(rt.get(k), (int, float)):
            return Cell(value=float(rt[k]))
    vals = _finite([r.get("restore_s") for r in g.rows(keys[0]) if r.get("status", "ok") == "ok"
                    and r.get("restore_s") is not None])
    if vals.size == 0:
        return Cell(note="no runtime measured")
    return Cell(value=float(vals.mean()))


# -- building tables ----------------------------------------------------------------------------
def _entries(layout: Layout, split: str | None, directory: Any = None) -> list[Entry]:
    es = published.select(published.load(directory), paper=layout.paper, table=layout.table)
    if layout.pub_group is not None:
        es = [e for e in es if e.group == layout.pub_group]
    elif layout.group_by != "group":
        es = [e for e in es if not e.group]
    if split is not None and layout.per_split:
        es = [e for e in es if e.split == split]
    return es


def _col_key(group: str | None, q: str) -> str:
    return f"{group}|{q}" if group else q


def _group_label(layout: Layout, g: str) -> str:
    if layout.group_by == "subset":
        return names.SUBSET_LABELS.get(g, g)
    if layout.group_by == "split":
        return {"shen-helen": "Helen", "shen-celeba": "CelebA"}.get(g, g)
    if layout.group_by == "kernel_size":
        return f"{g}×{g}"
    if layout.group_by == "group":
        return g.replace("threshold ", "")
    return g


def _entry_group(layout: Layout, e: Entry) -> str | None:
    return {None: None, "subset": e.subset, "split": e.split, "kernel_size": e.kernel_size,
            "group": e.group}[layout.group_by]


def build_layout(layout: Layout, summaries: list[dict[str, Any]], split: str | None = None,
                 methods: list[str] | None = None, include_published: bool = True,
                 published_dir: Any = None) -> list[Table]:
    """Tables of ``layout`` (one per split when ``per_split``) from run summaries + published rows.

    ``split``: one of ``layout.splits`` (per-split layouts render only that one); ``methods``
    filters reproduced rows by method name and published rows by harness method.
    """
    if split is not None:
        base, _ = split_parts(split)
        if base not in layout.splits:
            raise UsageError(f"layout {layout.name!r} does not cover split {split!r}",
                             f"use --split {' or '.join(layout.splits)} with this layout, or "
                             f"another layout (`faceblur-bench table --list-layouts`)")
        split = base
    splits = ([split] if split else list(layout.splits)) if layout.per_split else [None]
    # a paper's table holds runs on its official test sets only: runs on custom or synthesised
    # data (make-split output, other counts) are left out and named in a note
    from .store import is_custom

    dropped = [s for s in summaries if is_custom(s)
               and split_parts(str(s.get("split")))[0] in ([split] if split else layout.splits)]
    summaries = [s for s in summaries if not is_custom(s)]
    tables = []
    for sp in splits:
        tables.append(_build_one(layout, summaries, sp, methods, include_published,
                                 published_dir))
    if dropped and tables:
        d = dropped[0]
        tables[0].notes.append(
            f"{len(dropped)} run(s) on custom data left out of this table of the official test "
            f"sets (e.g. {d.get('method')} on {d.get('split')}: "
            f"{(d.get('data_origin') or {}).get('reason')}); `faceblur-bench table --split "
            f"{d.get('split')} --metrics psnr,ssim` and the leaderboard show them under their own heading")
    return tables


def _build_one(layout: Layout, summaries: list[dict[str, Any]], split: str | None,
               methods: list[str] | None, include_published: bool, published_dir: Any) -> Table:
    entries = _entries(layout, split, published_dir)
    res = Resolver(layout, entries)
    groups: list[str | None] = list(layout.groups) if layout.group_by else [None]
    columns: list[Column] = []
    if layout.rows_by_frames:
        columns += [Column("n_gt", "# of GT"), Column("n_pairs", "# of pairs", decimals=0)]
    proto_of = {e.metric: e.protocol for e in entries}
    for g in groups:
        for spec in layout.metrics:
            disp = names.display(spec.quantity)
            columns.append(Column(
                key=_col_key(g, spec.quantity), label=spec.label or disp.label,
                higher_is_better=disp.higher_is_better,
                group=_group_label(layout, g) if g else None,
                decimals=spec.decimals if spec.decimals is not None else disp.decimals,
                protocol=None))
    if layout.note_column:
        columns.append(Column("__note__", layout.note_column))
    rows: list[Row] = []
    notes: list[str] = []
    if include_published:
        rows += _published_rows(layout, entries, methods)
    reproduced: list[Row] = []
    if layout.reproducible:
        runs = [s for s in summaries
                if summary_split(s)[0] in ((split,) if split else layout.splits)
                and (not methods or s.get("method") in methods or s.get("label") in methods)
                and (s.get("protocol") or "s2s") == layout.protocol]
        for grp in group_runs(runs):
            reproduced += _reproduced_rows(layout, grp, split, groups, res)
    rows += reproduced
    # protocol footnotes: the paper's protocol per quantity, then what the reproduced rows used
    proto_lines = []
    for spec in layout.metrics:
        q = spec.quantity
        src = spec.source or q
        hib = names.display(q).higher_is_better
        arrow = "" if hib is None else ("↑" if hib else "↓")
        header = f"{spec.label or names.display(q).label} {arrow}".strip()
        if q in proto_of:
            proto_lines.append(f"{header} — reported: {proto_of[q]}")
        for m, p in sorted(res.used.get(src, {}).items()):
            flag = (" (not the paper's protocol, or the paper does not state it)"
                    if m in res.mismatch.get(src, set()) else "")
            stat = {"min": "minimum over images of ", "mean_std": "mean ± std over images of "}.get(
                spec.stat, "")
            proto_lines.append(f"{header} — reproduced: {stat}harness metric `{m}`{flag}: {p}")
    if layout.rows_by_frames:
        notes.append("Best and second best are marked among rows with the same number of GT "
                     "frames (values of different frame counts are not comparable).")
    star = published.marker_notes([e for e in entries if include_published])
    notes += star
    if layout.group_by == "kernel_size":
        notes.append("Reproduced per-kernel-size values: mean over the images whose "
                     "meta.kernel_size equals the column's size (rows.jsonl).")
    title = f"{layout.citation}: {layout.title}" + (f" — {split}" if split else "")
    table = Table(title=title, columns=columns, rows=rows, row_header=layout.row_header,
                  notes=notes)
    table.notes = (["Protocols:"] if proto_lines else []) + [f"- {p}" for p in proto_lines] + notes + [
        f"Reported rows: {names.PAPERS[layout.paper].citation}."]
    table.transpose = layout.transpose  # type: ignore[attr-defined]
    return table


def _published_rows(layout: Layout, entries: list[Entry], methods: list[str] | None) -> list[Row]:
    by_row: dict[int, list[Entry]] = {}
    for e in entries:
        by_row.setdefault(e.row, []).append(e)
    out = []
    for r in sorted(by_row):
        es = by_row[r]
        e0 = es[0]
        if methods and e0.harness_method not in methods:
            continue
        cells: dict[str, Cell] = {}
        for e in es:
            if e.metric in ("n_pairs",) and layout.rows_by_frames:
                cells["n_pairs"] = Cell(value=e.number, text=e.value)
                continue
            g = _entry_group(layout, e)
            key = _col_key(g, e.metric)
            if e.value:
                std = published.parse_number(e.std)
                cells[key] = Cell(value=e.number, std=None if math.isnan(std) else std,
                                  text=e.value + (f" ± {e.std}" if e.std else ""))
            else:
                cells[key] = Cell(note=f"not reported in {layout.citation}"
                                  + (f" ({e.note})" if e.note and "not reported" not in e.note
                                     else " (printed as a dash)" if e.note else ""))
        if layout.rows_by_frames:
            cells["n_gt"] = Cell(text=e0.n_frames or "ALL")
        if layout.note_column:
            cells["__note__"] = Cell(text=e0.note.split(";")[0] if e0.note else "")
        for spec in layout.metrics:  # columns the paper leaves empty for this row
            for g in (layout.groups or (None,)):
                cells.setdefault(_col_key(g if layout.group_by else None, spec.quantity),
                                 Cell(note=f"not reported in {layout.citation}"))
        out.append(Row(label=e0.method, cells=cells,
                       ranked=names.is_ranked(e0.harness_method),
                       source="reported", section="reported",
                       rank_group=(e0.n_frames or "ALL") if layout.rows_by_frames else None))
    return out


def _reproduced_rows(layout: Layout, grp: RunGroup, split: str | None,
                     groups: list[str | None], res: Resolver) -> list[Row]:
    base = split or layout.splits[0]
    if layout.rows_by_frames:
        return _frame_rows(layout, grp, base, res)
    cells: dict[str, Cell] = {}
    for g in groups:
        for spec in layout.metrics:
            sp = base
            if layout.group_by == "split":
                sp = g or base
            cell = reproduced_cell(layout, grp, sp, g, spec, res)
            if spec.stat == "mean_std" and cell.has_value and cell.std is not None:
                d = spec.decimals if spec.decimals is not None else \
                    names.display(spec.quantity).decimals
                inf = f" ({cell.infinite}×∞)" if cell.infinite else ""
                cell = Cell(value=round(float(cell.value), d), std=cell.std,  # type: ignore[arg-type]
                            text=f"{cell.value:.{d}f} ± {cell.std:.{d}f}{inf}", infinite=cell.infinite)
            cells[_col_key(g, spec.quantity)] = cell
    if all(not c.has_value for c in cells.values()):
        return []
    if layout.note_column:
        prov = next(iter(grp.runs.values())).get("provenance") or {}
        cells["__note__"] = Cell(text=f"faceblur-bench ({prov.get('device', '?')})")
    label, ranked = _coverage_label(grp)
    return [Row(label=label, cells=cells, source="reproduced", section="reproduced", ranked=ranked)]


def _coverage_label(grp: RunGroup) -> tuple[str, bool]:
    """The row label of a group of runs and whether it may be marked: the rule of
    :mod:`faceblur_bench.report.coverage` — a run that is not complete (or whose summary did not
    match its rows) says so ("† 32/720") and is never marked."""
    from . import coverage

    tags = [coverage.coverage(r) for r in grp.runs.values()]
    bad = [c.label or "unverified" for c in tags if not c.complete or not c.verified]
    ranked = all(coverage.rankable(r) for r in grp.runs.values())
    return (f"{grp.label} † ({', '.join(bad)})" if bad else grp.label), ranked


def _frame_rows(layout: Layout, grp: RunGroup, split: str, res: Resolver) -> list[Row]:
    exact, pool = _run_for(grp, split)
    keys = [exact] if exact else pool
    if not keys:
        return []
    rows: list[dict[str, Any]] = []
    for k in keys:
        rows += grp.rows(k)
    available: dict[str, Any] = {}
    for k in keys:
        available.update(grp.runs[k].get("metrics") or {})
    frames = sorted({_norm((r.get("meta") or {}).get("n_frames")) for r in rows
                     if (r.get("meta") or {}).get("n_frames") is not None}, key=float)
    out = []
    label, ranked = _coverage_label(grp)
    for nf in frames + ["ALL"]:
        where = None if nf == "ALL" else ("n_frames", nf)
        sel = [r for r in rows if where is None or
               _norm((r.get("meta") or {}).get("n_frames")) == nf]
        cells: dict[str, Cell] = {"n_gt": Cell(text=nf)}
        # an s2v row is one (blurred image, moment) pair; a per-window row stands for n_frames
        n_pairs = sum(1 if "moment" in (r.get("meta") or {}) else int((r.get("meta") or {}).get("n_frames") or 1)
                      for r in sel if r.get("status", "ok") == "ok")
        cells["n_pairs"] = Cell(value=float(n_pairs), text=str(n_pairs))
        for spec in layout.metrics:
            metric = res.pick(spec.quantity, available)
            key = _col_key(None, spec.quantity)
            if metric is None:
                cells[key] = Cell(note=f"{spec.quantity}: metric not computed in the run")
                continue
            res.note_use(spec.quantity, metric, available.get(metric))
            if (available.get(metric) or {}).get("kind") == "set":
                if nf == "ALL" and exact:
                    cells[key] = metric_cell(available.get(metric))
                else:
                    cells[key] = Cell(note=f"{metric} is a set metric: no per-frame-count value")
                continue
            cells[key] = _stat_cell(_metric_rows(sel, metric), "mean", metric)
        out.append(Row(label=label, cells=cells, source="reproduced", section="reproduced",
                       rank_group=nf, ranked=ranked))
    return out


def render_layout(layout: Layout, summaries: list[dict[str, Any]], split: str | None = None,
                  methods: list[str] | None = None, fmt: str = "md",
                  include_published: bool = True, published_dir: Any = None) -> str:
    """Rendered text of every table of ``layout`` (see :func:`build_layout`)."""
    from .render import render

    tables = build_layout(layout, summaries, split, methods, include_published, published_dir)
    return "\n".join(render(t, fmt) for t in tables)  # type: ignore[arg-type]
