"""Marks that mean something: "best" only where the data says so.

For each ranked paired-metric column of a table of stored runs, the best row is compared with
the runner-up by :func:`faceblur_bench.stats.compare_paired` (paired sign-flip test over the
split's units, on the images both runs scored), and the p-values of all such columns are
Holm-adjusted together (:func:`faceblur_bench.stats.holm`). Per column:

- adjusted p < :data:`~faceblur_bench.stats.ALPHA`: the usual marks (best bold, second
  underlined);
- otherwise the leaders are tied: the best and every row whose own comparison with the best is
  not significant at the same Holm level share the bold mark, nobody is underlined, and a note
  says "not significantly different".

A column keeps the marks by value (with a note saying so) when it cannot be tested: a set metric
(FID, KID, verification: one value per set, no per-image pairs), a published row among the top
two (the papers give no per-image values), or a run whose rows cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import stats
from .render import Column, Table, rank_candidates, value_marks


@dataclass
class _Column:
    col: Column
    order: list[int]       # candidate row indices, best first
    p: float = 1.0         # best vs runner-up
    unit: str = "image"
    values: list[tuple[int, float]] | None = None  # (row index, displayed value) of the candidates


def apply_significance(table: Table, rows_of: Callable[[int], Sequence[dict[str, Any]] | None],
                       kinds: dict[str, str | None]) -> None:
    """Set ``table.mark_override`` and add the notes (see the module docstring).

    ``rows_of(i)``: the stored per-image rows of table row ``i`` (None: a published row or a run
    without readable rows); ``kinds``: per column key, the metric kind (``paired`` | ``set``).
    """
    cache: dict[int, Sequence[dict[str, Any]] | None] = {}

    def rows(i: int) -> Sequence[dict[str, Any]] | None:
        if i not in cache:
            cache[i] = rows_of(i)
        return cache[i]

    tested: list[_Column] = []
    by_value: list[str] = []
    for col in table.columns:
        if col.higher_is_better is None:
            continue
        for cand in rank_candidates(table, col):  # the rows the marks may compare (render's rule)
            cand.sort(key=lambda t: t[1], reverse=bool(col.higher_is_better))
            order = [i for i, _ in cand]
            if kinds.get(col.key) != "paired" or rows(order[0]) is None or rows(order[1]) is None:
                if col.label not in by_value:
                    by_value.append(col.label)
                table.mark_override.setdefault(col.key, {}).update(
                    value_marks(cand, bool(col.higher_is_better)))
                continue
            cmp = stats.compare_paired(rows(order[0]), rows(order[1]), col.key)  # type: ignore[arg-type]
            tested.append(_Column(col, order, 1.0 if cmp.p_value != cmp.p_value else cmp.p_value,
                                  cmp.unit, cand))
    if tested:
        _mark_ties(table, tested, rows)
    if by_value:
        table.notes.append(f"Marked by value alone (no per-image paired test: set metric or "
                           f"published row among the top two): {', '.join(by_value)}.")


def _mark_ties(table: Table, tested: list[_Column], rows: Callable[[int], Any]) -> None:
    m = len(tested)
    adjusted = stats.holm([t.p for t in tested])
    # the Holm multiplier each column's test was judged with (m for the smallest p, then m-1, ...)
    rank = {id(t): r for r, t in enumerate(sorted(tested, key=lambda t: t.p))}
    tied_cols = []
    for t, adj in zip(tested, adjusted):
        if adj < stats.ALPHA:  # significant: the marks by value stand
            table.mark_override.setdefault(t.col.key, {}).update(
                value_marks(t.values or [], bool(t.col.higher_is_better)))
            continue
        factor = m - rank[id(t)]
        best = t.order[0]
        leaders = [best]
        for i in t.order[1:]:
            r = rows(i)
            if r is None:
                continue
            p = stats.compare_paired(rows(best), r, t.col.key).p_value
            if not p < stats.ALPHA / factor:
                leaders.append(i)
        table.mark_override.setdefault(t.col.key, {}).update({i: "best" for i in leaders})
        if t.col.label not in tied_cols:
            tied_cols.append(t.col.label)
    units = sorted({t.unit for t in tested})
    family = f"Holm over {m} column{'s' if m != 1 else ''}"
    if tied_cols:
        table.notes.append(
            f"Not significantly different: in {', '.join(tied_cols)} the bold rows tie (the best is "
            f"not better than the runner-up at α = {stats.ALPHA:g}, {stats.TEST_NAME} over "
            f"{'/'.join(units)}s, {family}); no second mark there.")
    else:
        table.notes.append(
            f"Every best mark is significant (α = {stats.ALPHA:g} against the runner-up, "
            f"{stats.TEST_NAME} over {'/'.join(units)}s, {family}).")


__all__ = ["apply_significance"]
