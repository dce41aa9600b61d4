"""One table model, three renderers (Markdown, LaTeX, CSV).

A :class:`Table` is a list of :class:`Column` (metric columns carry a direction and a protocol)
and a list of :class:`Row` (one per method / reference row) holding :class:`Cell` values.
Rendering rules, shared by every layout:

- headers carry ↑ (higher is better) or ↓ (lower is better);
- per column, among the *ranked* rows with a value, the best value is bold and the second best
  underlined; values are compared as displayed (after rounding), so every row that ties with the
  best is bold and every row tying for second is underlined; no marks with fewer than two values;
- a cell without a value shows "–" with a letter that points to a footnote giving the reason;
- each metric column's protocol is listed under the table (one line per distinct protocol);
- reported (published) cells show the number exactly as printed in the paper.

Markdown marks: ``**x**`` (best) and ``<u>x</u>`` (second). LaTeX: ``\\textbf{x}`` and
``\\underline{x}`` in a ``booktabs`` tabular. CSV: plain values (no marks, no footnotes), one
``<col>_std`` column per metric column when ``show_std``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Literal

Format = Literal["md", "latex", "csv"]
FORMATS = ("md", "latex", "csv")

DASH = "–"


@dataclass
class Column:
    """A table column. ``higher_is_better=None`` makes a plain (unranked, arrow-less) column."""

    key: str
    label: str
    higher_is_better: bool | None = None
    group: str | None = None
    decimals: int = 2
    protocol: str | None = None

    @property
    def arrow(self) -> str:
        if self.higher_is_better is None:
            return ""
        return "↑" if self.higher_is_better else "↓"

    def header(self, latex: bool = False) -> str:
        if self.higher_is_better is None:
            return self.label
        if latex:
            arrow = r"$\uparrow$" if self.higher_is_better else r"$\downarrow$"
            return f"{self.label} {arrow}"
        return f"{self.label} {self.arrow}"


@dataclass
class Cell:
    """A value (``value``, optional ``std``) or a missing entry (``note`` = reason).

    ``text`` overrides the formatting (published numbers as printed, counts like ``3/240``).
    """

    value: float | None = None
    std: float | None = None
    text: str | None = None
    note: str | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not None and not (isinstance(self.value, float) and math.isnan(self.value))


@dataclass
class Row:
    """A row: ``ranked=False`` keeps it out of best/second marking (GT, blurred input)."""

    label: str
    cells: dict[str, Cell] = field(default_factory=dict)
    ranked: bool = True
    #: "reported [paper, table]" or "reproduced"; shown in a Source column when any row has one
    source: str | None = None
    #: rows of one section are separated from the next by a rule (LaTeX) / kept together
    section: str | None = None


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[Row]
    row_header: str = "Method"
    notes: list[str] = field(default_factory=list)


def format_value(value: float, decimals: int) -> str:
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{decimals}f}"


def _display(cell: Cell, col: Column, show_std: bool) -> str:
    if cell.text is not None:
        return cell.text
    if not cell.has_value:
        return DASH
    s = format_value(float(cell.value), col.decimals)  # type: ignore[arg-type]
    if show_std and cell.std is not None and math.isfinite(cell.std):
        s += f" ± {format_value(float(cell.std), col.decimals)}"
    return s


def _rank_key(cell: Cell, col: Column) -> float | None:
    """Value as displayed (ties are decided on the printed number)."""
    if not cell.has_value:
        return None
    v = float(cell.value)  # type: ignore[arg-type]
    if math.isnan(v):
        return None
    if math.isinf(v):
        return v
    if cell.text is not None:
        return v
    return round(v, col.decimals)


def marks(table: Table) -> dict[tuple[int, str], str]:
    """``{(row index, column key): "best" | "second"}`` following the tie rules above."""
    out: dict[tuple[int, str], str] = {}
    for col in table.columns:
        if col.higher_is_better is None:
            continue
        vals = []
        for i, row in enumerate(table.rows):
            if not row.ranked or col.key not in row.cells:
                continue
            k = _rank_key(row.cells[col.key], col)
            if k is not None:
                vals.append((i, k))
        if len(vals) < 2:
            continue
        distinct = sorted({k for _, k in vals}, reverse=bool(col.higher_is_better))
        best = distinct[0]
        second = distinct[1] if len(distinct) > 1 else None
        for i, k in vals:
            if k == best:
                out[(i, col.key)] = "best"
            elif second is not None and k == second:
                out[(i, col.key)] = "second"
    return out


def _notes(table: Table) -> tuple[dict[str, str], list[str]]:
    """Letter per distinct missing-cell reason (in reading order) and the protocol lines."""
    letters: dict[str, str] = {}
    for row in table.rows:
        for col in table.columns:
            cell = row.cells.get(col.key)
            if cell is None or cell.has_value or cell.text is not None:
                continue
            reason = cell.note or "not reported / not run"
            if reason not in letters:
                letters[reason] = _letter(len(letters))
    protocols: list[str] = []
    seen = set()
    for col in table.columns:
        if col.protocol and (col.label, col.protocol) not in seen:
            seen.add((col.label, col.protocol))
            protocols.append(f"{col.header()}: {col.protocol}")
    return letters, protocols


def _letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def _cell_reason(cell: Cell | None) -> str:
    if cell is None or cell.note is None:
        return "not reported / not run"
    return cell.note


def render(table: Table, fmt: Format = "md", show_std: bool = False) -> str:
    """Render ``table`` as Markdown, LaTeX or CSV text (ends with a newline)."""
    if fmt == "md":
        return _render_md(table, show_std)
    if fmt == "latex":
        return _render_latex(table, show_std)
    if fmt == "csv":
        return _render_csv(table, show_std)
    from ..errors import UsageError

    raise UsageError(f"unknown table format {fmt!r}", f"use one of {', '.join(FORMATS)}")


def _with_source(table: Table) -> bool:
    return any(r.source for r in table.rows)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _render_md(table: Table, show_std: bool) -> str:
    m = marks(table)
    letters, protocols = _notes(table)
    src = _with_source(table)
    heads = [table.row_header] + [
        (f"{c.group} {c.header()}" if c.group else c.header()) for c in table.columns
    ]
    if src:
        heads.append("Source")
    align = ["---"] + ["---:"] * len(table.columns) + (["---"] if src else [])
    lines = []
    if table.title:
        lines += [f"**{_md_escape(table.title)}**", ""]
    lines.append("| " + " | ".join(_md_escape(h) for h in heads) + " |")
    lines.append("|" + "|".join(align) + "|")
    for i, row in enumerate(table.rows):
        cells = [_md_escape(row.label)]
        for col in table.columns:
            cell = row.cells.get(col.key)
            if cell is None or (not cell.has_value and cell.text is None):
                cells.append(f"{DASH} ({letters[_cell_reason(cell)]})")
                continue
            s = _md_escape(_display(cell, col, show_std))
            mk = m.get((i, col.key))
            if mk == "best":
                s = f"**{s}**"
            elif mk == "second":
                s = f"<u>{s}</u>"
            cells.append(s)
        if src:
            cells.append(_md_escape(row.source or ""))
        lines.append("| " + " | ".join(cells) + " |")
    foot = []
    if any(c.higher_is_better is not None for c in table.columns) and len(table.rows) > 1:
        foot.append("Best in **bold**, second best <u>underlined</u> (ties share the mark).")
    if protocols:
        foot.append("Protocols:")
        foot += [f"- {_md_escape(p)}" for p in protocols]
    if letters:
        foot.append("Missing cells:")
        foot += [f"- ({letter}) {_md_escape(reason)}" for reason, letter in letters.items()]
    foot += [f"{_md_escape(n)}" for n in table.notes]
    if foot:
        lines.append("")
        lines += foot
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "–": "--", "—": "---", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "∞": r"$\infty$",
    "×": r"$\times$", "σ": r"$\sigma$",
}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def _render_latex(table: Table, show_std: bool) -> str:
    m = marks(table)
    letters, protocols = _notes(table)
    src = _with_source(table)
    ncols = 1 + len(table.columns) + (1 if src else 0)
    spec = "l" + "r" * len(table.columns) + ("l" if src else "")
    out = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
    ]
    if table.title:
        out.append(f"\\caption{{{latex_escape(table.title)}}}")
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    if any(c.group for c in table.columns):
        parts, rules = [""], []
        j = 0
        cols = table.columns
        while j < len(cols):
            g = cols[j].group
            k = j
            while k + 1 < len(cols) and cols[k + 1].group == g:
                k += 1
            n = k - j + 1
            parts.append(f"\\multicolumn{{{n}}}{{c}}{{{latex_escape(g or '')}}}" if n > 1
                         else latex_escape(g or ""))
            if g:
                rules.append(f"\\cmidrule(lr){{{j + 2}-{k + 2}}}")
            j = k + 1
        if src:
            parts.append("")
        out.append(" & ".join(parts) + " \\\\")
        if rules:
            out.append(" ".join(rules))
    heads = [latex_escape(table.row_header)]
    for c in table.columns:
        heads.append(latex_escape(c.label) + (
            "" if c.higher_is_better is None else
            (" $\\uparrow$" if c.higher_is_better else " $\\downarrow$")))
    if src:
        heads.append("Source")
    out.append(" & ".join(heads) + " \\\\")
    out.append("\\midrule")
    prev_section = table.rows[0].section if table.rows else None
    for i, row in enumerate(table.rows):
        if row.section != prev_section:
            out.append("\\midrule")
            prev_section = row.section
        cells = [latex_escape(row.label)]
        for col in table.columns:
            cell = row.cells.get(col.key)
            if cell is None or (not cell.has_value and cell.text is None):
                cells.append(f"--$^{{\\mathrm{{{letters[_cell_reason(cell)]}}}}}$")
                continue
            s = latex_escape(_display(cell, col, show_std))
            mk = m.get((i, col.key))
            if mk == "best":
                s = f"\\textbf{{{s}}}"
            elif mk == "second":
                s = f"\\underline{{{s}}}"
            cells.append(s)
        if src:
            cells.append(latex_escape(row.source or ""))
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}"]
    foot = []
    if protocols:
        foot += [latex_escape(p) for p in protocols]
    if letters:
        foot += [f"$^{{\\mathrm{{{letter}}}}}$ {latex_escape(reason)}"
                 for reason, letter in letters.items()]
    foot += [latex_escape(n) for n in table.notes]
    if foot:
        out.append("\\par\\smallskip\\footnotesize")
        out.append(" \\\\\n".join(foot))
    out.append("\\end{table}")
    del ncols
    return "\n".join(out) + "\n"


def _render_csv(table: Table, show_std: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    src = _with_source(table)
    heads = [table.row_header]
    for c in table.columns:
        name = f"{c.group}/{c.label}" if c.group else c.label
        heads.append(name)
        if show_std and c.higher_is_better is not None:
            heads.append(f"{name}_std")
    if src:
        heads.append("source")
    w.writerow(heads)
    for row in table.rows:
        vals: list[str] = [row.label]
        for c in table.columns:
            cell = row.cells.get(c.key)
            if cell is None:
                vals.append("")
            elif cell.text is not None:
                vals.append(cell.text)
            elif cell.has_value:
                vals.append(repr(float(cell.value)))  # type: ignore[arg-type]
            else:
                vals.append("")
            if show_std and c.higher_is_better is not None:
                std = cell.std if cell is not None else None
                vals.append("" if std is None or not math.isfinite(std) else repr(float(std)))
        if src:
            vals.append(row.source or "")
        w.writerow(vals)
    return buf.getvalue()
