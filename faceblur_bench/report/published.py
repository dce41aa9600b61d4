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


def rows_for_split(split: str, subset: str | None, metrics: list[str],
                   directory: str | Path | None = None) -> list["Any"]:
    """Published rows (one per paper table × method) of ``split``/``subset`` for the leaderboard.

    Only whole-split numbers (no kernel size / frame count / group) are used. A published number
    goes to the column of the harness metric that :func:`names.harness_metric` maps its
    (quantity, protocol id) to; numbers with no such column in ``metrics`` are left out.
    """
    from .render import Cell, Row

    entries = [e for e in load(directory)
               if e.split == split and (e.subset or None) == (subset or None)
               and e.scope == "main" and not e.kernel_size and not e.n_frames and not e.group]
    by_row: dict[tuple[str, str, int], dict[str, Any]] = {}
    for e in entries:
        col = names.harness_metric(e.metric, e.protocol_id, available=set(metrics), strict=True)
        if col is None or col not in metrics:
            continue
        key = (e.paper, e.table, e.row)
        rec = by_row.setdefault(key, {"entry": e, "cells": {}})
        if e.value:
            std = parse_number(e.std)
            rec["cells"][col] = Cell(value=e.number, text=e.value + (f" ± {e.std}" if e.std else ""),
                                     std=None if math.isnan(std) else std)
    out = []
    for (_p, _t, _r), rec in sorted(by_row.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        e: Entry = rec["entry"]
        if not rec["cells"]:
            continue
        cells = {m: rec["cells"].get(m, Cell(note=f"not reported in {e.source.split(', ', 1)[1]}"))
                 for m in metrics}
        label = e.method
        if label.strip().lower() in ("ours", "proposed"):
            # "Ours" is ambiguous once rows of several papers share a table
            p = names.PAPERS.get(e.paper)
            label = f"{p.short.split(' (')[0] if p else e.paper} (\"{label}\")"
        out.append(Row(label=label, cells=cells, ranked=e.harness_method not in ("gt", "blurred"),
                       source=e.source))
    return out
