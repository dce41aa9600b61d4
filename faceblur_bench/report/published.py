"""Published numbers of the five seed papers, transcribed as data (``results/published/*.csv``).

One CSV per paper, one line per printed number. Columns (:data:`COLUMNS`):

``paper``         key of :data:`faceblur_bench.report.names.PAPERS` (sappgan, yun, dfpg, cfmd, shen)
``table``         the paper's table number
``row``           row order within the table (1-based, as printed)
``method``        row label exactly as printed (reference numbers dropped, e.g. "MSPL-GAN")
``harness_method``harness method name this row corresponds to ("" when none; "gt" / "blurred"
                  for the ground-truth / blurred-input reference rows)
``split``/``subset``  harness split names (:data:`names.SPLITS`); "" when not a test split
``scope``         "main" (comparison tables), "ablation" (variants of the paper's own model) or
                  "dataset" (counts describing a test set)
``kernel_size``/``n_frames``  set for per-kernel-size / per-frame-count cells, else ""
``group``         a column-group label of the printed table when it is not a split/subset/size
                  (e.g. "Average" or an ablation setting), else ""
``metric``        quantity name (:data:`names.QUANTITIES`)
``protocol_id``   short id of how the paper computed it (maps to harness metrics through
                  :data:`names.HARNESS_METRICS`)
``protocol``      one line: how the paper computed the number
``value``         the number exactly as printed (string; "" for a printed "-")
``std``           a printed standard deviation, else ""
``arrow``         ↑ / ↓ as printed in the paper's header ("" when the paper prints none)
``note``          anything else printed with the number (e.g. "retrained", "*")
"""

from __future__ import annotations

import csv
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import names

COLUMNS = ("paper", "table", "row", "method", "harness_method", "split", "subset", "scope",
           "kernel_size", "n_frames", "group", "metric", "protocol_id", "protocol", "value",
           "std", "arrow", "note")


def published_dir() -> Path:
    """``results/published`` of this checkout (next to the package), or ``$FACEBLUR_PUBLISHED``."""
    import os

    env = os.environ.get("FACEBLUR_PUBLISHED")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "results" / "published"


@dataclass(frozen=True)
class Entry:
    """One printed number."""

    paper: str
    table: str
    row: int
    method: str
    harness_method: str
    split: str
    subset: str
    scope: str
    kernel_size: str
    n_frames: str
    group: str
    metric: str
    protocol_id: str
    protocol: str
    value: str
    std: str
    arrow: str
    note: str
    file: str = ""
    line: int = 0

    @property
    def number(self) -> float:
        """The printed value as a float (NaN when the paper printed no number)."""
        return parse_number(self.value, self.metric)

    @property
    def split_full(self) -> str:
        return f"{self.split}/{self.subset}" if self.subset else self.split

    @property
    def source(self) -> str:
        p = names.PAPERS.get(self.paper)
        return f"reported, {p.short if p else self.paper}, Table {self.table}"


def parse_number(text: str, metric: str = "") -> float:
    """A printed number as float; NaN for "" / "-".

    Suffixes as printed: ``%`` is dropped (percent quantities are stored in percent);
    ``M`` / ``K`` mean millions / thousands: for ``params_m`` the value is in millions
    (``558K`` -> 0.558), for counts the absolute number (``130 M`` -> 130e6).
    """
    t = (text or "").strip().replace("%", "").replace(",", "").replace("−", "-").replace(" ", "")
    if t in ("", "-", "–", "—", "N/A", "n/a", "N.A."):
        return math.nan
    mult = 1.0
    if t[-1:] in ("M", "K"):
        unit, t = t[-1], t[:-1]
        if metric == "params_m":
            mult = 1.0 if unit == "M" else 1e-3
        else:
            mult = 1e6 if unit == "M" else 1e3
    try:
        return float(t) * mult
    except ValueError:
        return math.nan


def load(directory: str | Path | None = None) -> list[Entry]:
    """Every published entry under ``directory`` (default :func:`published_dir`).

    Raises :class:`UsageError` naming the file and line for a malformed CSV.
    """
    return list(_load_cached(str(Path(directory) if directory else published_dir())))


@functools.lru_cache(maxsize=8)
def _load_cached(directory: str) -> tuple[Entry, ...]:
    d = Path(directory)
    out: list[Entry] = []
    if not d.is_dir():
        return ()
    for path in sorted(d.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"{path}: missing columns {missing}",
                                 f"published CSVs need the columns {', '.join(COLUMNS)}")
            for i, rec in enumerate(reader, start=2):
                try:
                    row = int(rec["row"])
                except (TypeError, ValueError):
                    raise UsageError(f"{path}:{i}: 'row' must be an integer, got {rec['row']!r}",
                                     "fix the transcription") from None
                out.append(Entry(**{c: (rec[c] or "").strip() for c in COLUMNS if c != "row"},
                                 row=row, file=path.name, line=i))
    return tuple(out)


def select(entries: list[Entry], **where: Any) -> list[Entry]:
    """Entries whose fields equal every ``where`` value (``None`` = any, ``""`` = unset)."""
    out = []
    for e in entries:
        if all(v is None or str(getattr(e, k)) == str(v) for k, v in where.items()):
            out.append(e)
    return out


def frame(directory: str | Path | None = None) -> "Any":
    """All entries as a pandas DataFrame (``value_num`` = the parsed number)."""
    import pandas as pd

    rows = [dict(e.__dict__, value_num=e.number) for e in load(directory)]
    return pd.DataFrame.from_records(rows)


def marker_notes(entries: list[Entry]) -> list[str]:
    """Explanations of marks the papers print in method names: ``*Zhang et al.`` is the
    method retrained by the paper's authors (DFPGnet §4.2 "termed as *"); the entry's ``note``
    says how. One line per distinct explanation, naming the tables that use the mark."""
    by_note: dict[str, list[str]] = {}
    for e in entries:
        if e.method.startswith("*"):
            where = e.source.removeprefix("reported, ")
            lst = by_note.setdefault(e.note or "marked * in the paper", [])
            if where not in lst:
                lst.append(where)
    return [f"* before a method name (as printed in {' and '.join(w)}): {n}." for n, w in by_note.items()]


_REF = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")


def _same_method_key(e: Entry) -> str:
    """Rows of two papers that name the same method: the harness method when mapped, else the
    printed name without the paper-specific reference number ("Zhang et al. [44]" and
    "Zhang et al. [57]" are one method; "*Zhang et al." is another)."""
    return e.harness_method or _REF.sub("", e.method).strip().lower()


def _unshown_cell(column: str, row: dict[str, Any]) -> Any:
    """The missing cell of a published row: "reported under protocol X" when the paper prints
    the column's quantity under a protocol this column does not follow (its number is not
    comparable, so it is not put here), else "not reported"."""
    from .render import Cell

    other: Entry | None = row["elsewhere"].get(names.quantity_of(column))
    if other is not None:
        how = other.protocol or other.protocol_id
        return Cell(note=f"reported under another protocol in {other.source.removeprefix('reported, ')}: "
                         f"{other.protocol_id}" + (f" ({how})" if how != other.protocol_id else "")
                         + f" — not comparable with the {column} column")
    return Cell(note="not reported in " + " or ".join(row["sources"]))


def rows_for_split(split: str, subset: str | None, metrics: list[str],
                   directory: str | Path | None = None,
                   notes: list[str] | None = None) -> list["Any"]:
    """Published rows (one per paper table × method) of ``split``/``subset`` for the leaderboard.

    Only whole-split numbers (no kernel size / frame count / group) are used. A published number
    goes to the column of the harness metric that :func:`names.harness_metric` maps its
    (quantity, protocol id) to; numbers with no such column in ``metrics`` are left out.

    The same method reported by two papers (SAPPGAN Table 1 repeats DFPGnet Table 2's MSPL rows)
    becomes one row citing both tables when every number both print is the same; when the
    printed numbers differ both rows stay and a line appended to ``notes`` says where they
    differ. ``notes`` also receives :func:`marker_notes` for the rows shown.
    """
    from .render import Cell, Row

    entries = [e for e in load(directory)
               if e.split == split and (e.subset or None) == (subset or None)
               and e.scope == "main" and not e.kernel_size and not e.n_frames and not e.group]
    by_row: dict[tuple[str, str, int], dict[str, Any]] = {}
    # numbers a row prints under a protocol no shown column follows: (row key) -> {quantity: entry}
    elsewhere: dict[tuple[str, str, int], dict[str, Entry]] = {}
    for e in entries:
        col = names.harness_metric(e.metric, e.protocol_id, available=set(metrics), strict=True)
        key = (e.paper, e.table, e.row)
        if col is None or col not in metrics:
            if e.value:
                elsewhere.setdefault(key, {}).setdefault(e.metric, e)
            continue
        rec = by_row.setdefault(key, {"entry": e, "cells": {}})
        if e.value:
            std = parse_number(e.std)
            rec["cells"][col] = Cell(value=e.number, text=e.value + (f" ± {e.std}" if e.std else ""),
                                     std=None if math.isnan(std) else std)
    recs = [rec for _, rec in sorted(by_row.items(), key=lambda kv: kv[0]) if rec["cells"]]
    merged: list[dict[str, Any]] = []
    for rec in recs:
        e: Entry = rec["entry"]
        twin = next((m for m in merged if _same_method_key(m["entry"]) == _same_method_key(e)
                     and e.paper not in m["papers"]), None)
        if twin is not None:
            clash = [(c, twin["cells"][c].text, rec["cells"][c].text) for c in rec["cells"]
                     if c in twin["cells"] and twin["cells"][c].text != rec["cells"][c].text]
            if not clash:
                for c, cell in rec["cells"].items():
                    twin["cells"].setdefault(c, cell)
                twin["papers"].append(e.paper)
                twin["sources"].append(e.source.removeprefix("reported, "))
                twin["labels"].append(e.method)
                continue
            if notes is not None:
                what = ", ".join(f"{c} {a} vs {b}" for c, a, b in clash)
                notes.append(f"{_REF.sub('', e.method).strip()}: {twin['entry'].source.removeprefix('reported, ')} "
                             f"and {e.source.removeprefix('reported, ')} print different values ({what}); "
                             "both rows are kept.")
        merged.append({"entry": e, "cells": dict(rec["cells"]), "papers": [e.paper],
                       "sources": [e.source.removeprefix("reported, ")], "labels": [e.method],
                       "elsewhere": elsewhere.get((e.paper, e.table, e.row), {})})
    out = []
    for m in merged:
        e = m["entry"]
        cells = {c: m["cells"].get(c) or _unshown_cell(c, m) for c in metrics}
        if len(m["labels"]) > 1:  # one method cited by several papers: drop their reference numbers
            plain = [lab for lab in m["labels"] if "ours" not in lab.lower()] or m["labels"]
            label = _REF.sub("", plain[0]).strip()
        else:
            label = e.method
        if label.strip().lower() in ("ours", "proposed"):
            # "Ours" is ambiguous once rows of several papers share a table
            p = names.PAPERS.get(e.paper)
            label = f"{p.short.split(' (')[0] if p else e.paper} (\"{label}\")"
        out.append(Row(label=label, cells=cells, ranked=names.is_ranked(e.harness_method),
                       source="reported, " + "; ".join(m["sources"])))
    if notes is not None:
        notes += marker_notes([rec["entry"] for rec in recs])
    return out
