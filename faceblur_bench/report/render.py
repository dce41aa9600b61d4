"""One table model, three renderers (Markdown, LaTeX, CSV).

A :class:`Table` is a list of :class:`Column` (metric columns carry a direction and a protocol)
and a list of :class:`Row` (one per method / reference row) holding :class:`Cell` values.
Rendering rules, shared by every layout:

- headers carry ↑ (higher is better) or ↓ (lower is better);
- per column, among the *ranked* rows with a value, the best value is bold and the second best
  underlined (cells scored on different images — ``Cell.images`` — are ranked only when scored
  on every image of their run, and their "(n/N)" is shown); values are compared as displayed (after rounding), so every row that ties with the
  best is bold and every row tying for second is underlined; no marks with fewer than two values;
  rows with a ``rank_group`` are compared only within their group (e.g. CFMD Table 4: rows with
  the same number of GT frames);
- a cell without a value shows "–" with a letter that points to a footnote giving the reason;
- a mean that left out infinite per-image values (PSNR of identical pairs) shows their count
  beside it, "31.20 (2×∞)", explained under the table;
- each metric column's protocol is listed under the table (one line per distinct protocol);
- reported (published) cells show the number exactly as printed in the paper;
- ``Table.transpose`` renders metrics as rows and methods as columns (Yun et al.'s layout); the
  marks are still computed per metric.

Markdown marks: ``**x**`` (best) and ``<u>x</u>`` (second). LaTeX: ``\\textbf{x}`` and
``\\underline{x}`` in a ``booktabs`` tabular. CSV: plain values (no marks, no footnotes), one
``<col>_std`` column per metric column when ``show_std``. HTML (the ``report`` page): a
``<table>`` fragment with ``<strong>`` / ``<u>`` marks, every text escaped, the footnotes in a
list under it, and a cell's 95 % confidence interval under its value when the cell has one.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..text import printable

Format = Literal["md", "latex", "csv", "html"]
FORMATS = ("md", "latex", "csv", "html")

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
    #: images whose per-image value is infinite (PSNR of identical pairs): left out of
    #: ``value`` (the mean of the finite ones) and shown beside it as "(k×∞)"
    infinite: int = 0
    #: images the value was computed on, of the run's ``total``, and a name of that image set
    #: (:func:`faceblur_bench.aggregates.image_set_digest`); values of one column are marked
    #: only among cells with the same ``images``
    scored: int | None = None
    total: int | None = None
    images: str | None = None
    #: show "(n/N)" beside the value (the column's cells were scored on different images)
    show_count: bool = False
    #: 95% interval of the mean ``(lo, hi)`` (:mod:`faceblur_bench.stats`), shown with ``Table.show_ci``
    ci: tuple[float, float] | None = None
    #: how ``ci`` was computed: ``{"unit", "n_units", "resamples", "seed"}`` (for the protocol line)
    ci_how: dict[str, Any] | None = None

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
    #: best/second marks compare only rows with the same rank_group (None: one group)
    rank_group: str | None = None


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[Row]
    row_header: str = "Method"
    notes: list[str] = field(default_factory=list)
    #: render methods as columns and metrics as rows (ranking stays per metric)
    transpose: bool = False
    #: show each value's 95% interval "[lo, hi]" (CSV: ``<col>_ci_lo``/``<col>_ci_hi`` columns)
    show_ci: bool = False
    #: per column key, the marks decided elsewhere (``{row index: "best" | "second"}``, e.g. the
    #: significance rule of :mod:`faceblur_bench.report.significance`); other columns by value
    mark_override: dict[str, dict[int, str]] = field(default_factory=dict)


def format_value(value: float, decimals: int) -> str:
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{decimals}f}"


def _display(cell: Cell, col: Column, show_std: bool, show_ci: bool = False) -> str:
    if cell.text is not None:
        return cell.text
    if not cell.has_value:
        return DASH
    s = format_value(float(cell.value), col.decimals)  # type: ignore[arg-type]
    if show_std and cell.std is not None and math.isfinite(cell.std):
        s += f" ± {format_value(float(cell.std), col.decimals)}"
    if show_ci and cell.ci is not None:
        s += f" [{format_value(cell.ci[0], col.decimals)}, {format_value(cell.ci[1], col.decimals)}]"
    if cell.infinite and math.isfinite(float(cell.value)):  # type: ignore[arg-type]
        s += f" ({cell.infinite}×∞)"
    if cell.show_count and cell.scored is not None and cell.total is not None:
        s += f" ({cell.scored}/{cell.total})"
    return s


INFINITE_NOTE = ("(k×∞): k images are identical to their reference and score ∞ (kept per image, "
                 "as MATLAB and skimage give); the value is the mean over the other images.")


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


def rank_candidates(table: Table, col: Column) -> list[list[tuple[int, float]]]:
    """The groups of ``(row index, displayed value)`` of column ``col`` that may be ranked against
    each other: ranked rows, per rank group, only rows scored on the same images
    (:func:`_same_images`); groups of fewer than two are left out. One rule for the marks by
    value (:func:`marks`) and by significance (:mod:`faceblur_bench.report.significance`)."""
    by_group: dict[str | None, list[tuple[int, float]]] = {}
    for i, row in enumerate(table.rows):
        if not row.ranked or col.key not in row.cells:
            continue
        k = _rank_key(row.cells[col.key], col)
        if k is not None:
            by_group.setdefault(row.rank_group, []).append((i, k))
    groups = [_same_images(table, vals, col.key) for vals in by_group.values()]
    return [g for g in groups if len(g) >= 2]


def value_marks(vals: list[tuple[int, float]], higher_is_better: bool) -> dict[int, str]:
    """``{row index: "best" | "second"}`` by value among ``vals`` (equal values share a mark)."""
    distinct = sorted({k for _, k in vals}, reverse=higher_is_better)
    out: dict[int, str] = {}
    for i, k in vals:
        if k == distinct[0]:
            out[i] = "best"
        elif len(distinct) > 1 and k == distinct[1]:
            out[i] = "second"
    return out


def marks(table: Table) -> dict[tuple[int, str], str]:
    """``{(row index, column key): "best" | "second"}`` following the tie rules above."""
    out: dict[tuple[int, str], str] = {}
    for col in table.columns:
        if col.higher_is_better is None:
            continue
        if col.key in table.mark_override:
            out.update({(i, col.key): mk for i, mk in table.mark_override[col.key].items()})
            continue
        for vals in rank_candidates(table, col):
            out.update({(i, col.key): mk for i, mk in
                        value_marks(vals, bool(col.higher_is_better)).items()})
    return out


def _same_images(table: Table, vals: list[tuple[int, float]], key: str) -> list[tuple[int, float]]:
    """The candidates of one column that may be ranked against each other: all of them when
    those that name their image set (``Cell.images``; published numbers do not) name the same
    one, else only those scored on every image of their run (a mean over fewer images is not
    comparable) — and none of the naming cells when even those differ."""
    cells = {i: table.rows[i].cells[key] for i, _ in vals}
    if len({c.images for c in cells.values() if c.images is not None}) <= 1:
        return vals
    keep = [(i, k) for i, k in vals if cells[i].images is None
            or (cells[i].scored is not None and cells[i].scored == cells[i].total)]
    if len({cells[i].images for i, _ in keep if cells[i].images is not None}) > 1:
        keep = [(i, k) for i, k in keep if cells[i].images is None]
    return keep


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
    if fmt == "html":
        return _render_html(table, show_std)
    from ..errors import UsageError

    raise UsageError(f"unknown table format {fmt!r}", f"use one of {', '.join(FORMATS)}")


def _with_source(table: Table) -> bool:
    return any(r.source for r in table.rows)


@dataclass
class _Grid:
    """Cells as text (marks applied as 'best'/'second'), before any format-specific markup."""

    corner: str
    col_heads: list[tuple[str | None, str]]      # (group, header)
    row_heads: list[str]
    body: list[list[tuple[str, str | None]]]     # (text, mark)
    sections: list[str | None]
    missing: dict[str, str]                      # reason -> letter
    numeric: list[bool]                          # per column: right-align


def _grid(table: Table, show_std: bool, latex: bool, arrows: bool = True) -> _Grid:
    m = marks(table)
    letters, _ = _notes(table)
    src = _with_source(table)
    col_heads = [(c.group, c.header() if arrows else c.label) for c in table.columns]
    if src:
        col_heads.append((None, "Source"))
    body = []
    for i, row in enumerate(table.rows):
        cells: list[tuple[str, str | None]] = []
        for col in table.columns:
            cell = row.cells.get(col.key)
            if cell is None or (not cell.has_value and cell.text is None):
                cells.append((f"\0{letters[_cell_reason(cell)]}", None))
            else:
                cells.append((_display(cell, col, show_std, table.show_ci), m.get((i, col.key))))
        if src:
            cells.append((row.source or "", None))
        body.append(cells)
    g = _Grid(table.row_header, col_heads, [r.label for r in table.rows], body,
              [r.section for r in table.rows], letters,
              [c.higher_is_better is not None or c.decimals == 0 for c in table.columns]
              + ([False] if src else []))
    if table.transpose:
        g = _Grid(
            corner=table.row_header,
            col_heads=[(None, lab) for lab in g.row_heads],
            row_heads=[f"{grp} {h}" if grp else h for grp, h in g.col_heads],
            body=[[g.body[i][j] for i in range(len(g.row_heads))] for j in range(len(g.col_heads))],
            sections=[None] * len(g.col_heads),
            missing=g.missing,
            numeric=[True] * len(g.row_heads),
        )
    return g


_MD_SPECIAL = re.compile(r"([\\*_~\[\]<>|#])")


def md_escape(s: object) -> str:
    """``s`` as literal text for one Markdown table cell or one line of Markdown prose.

    The one helper every Markdown renderer of the package uses for text that comes from data
    (method, split and metric names, reasons, error messages): terminal escape sequences and
    other control characters are removed, line breaks and tabs become spaces (a name can neither
    end a table row nor start a heading), and the characters that make emphasis, links, images,
    headings, HTML or a cell break (``\\ * _ ~ [ ] < > | #``) are backslash-escaped, so the text
    renders as written. Backticks are kept: messages quote commands in them, and a code span
    cannot leave its cell. Numbers and plain names are unchanged."""
    return _MD_SPECIAL.sub(r"\\\1", printable(s))


_md_escape = md_escape


def _md_cell(text: str, mark: str | None) -> str:
    if text.startswith("\0"):
        return f"{DASH} ({text[1:]})"
    s = _md_escape(text)
    if mark == "best":
        return f"**{s}**"
    if mark == "second":
        return f"<u>{s}</u>"
    return s


def _footer(table: Table, letters: dict[str, str], protocols: list[str],
            esc: Any, marker: Any) -> list[str]:
    foot = []
    if protocols:
        foot.append("Protocols:")
        foot += [f"- {esc(p)}" for p in protocols]
    if letters:
        foot.append("Missing cells:")
        foot += [f"- {marker(letter)} {esc(reason)}" for reason, letter in letters.items()]
    foot += [esc(n) for n in table.notes]
    if any(c.infinite for r in table.rows for c in r.cells.values()):
        foot.append(esc(INFINITE_NOTE))
    return foot


def _render_md(table: Table, show_std: bool) -> str:
    g = _grid(table, show_std, latex=False)
    _, protocols = _notes(table)
    heads = [g.corner] + [f"{grp} {h}" if grp else h for grp, h in g.col_heads]
    lines = []
    if table.title:
        lines += [f"**{_md_escape(table.title)}**", ""]
    lines.append("| " + " | ".join(_md_escape(h) for h in heads) + " |")
    lines.append("|---|" + "|".join("---:" if n else "---" for n in g.numeric) + "|")
    for label, cells in zip(g.row_heads, g.body):
        lines.append("| " + " | ".join([_md_escape(label)] + [_md_cell(t, mk) for t, mk in cells])
                     + " |")
    foot = []
    if any(mk for row in g.body for _, mk in row):  # only when something is marked
        foot.append("Best in **bold**, second best <u>underlined</u> (ties share the mark).")
    foot += _footer(table, g.missing, protocols, _md_escape, lambda x: f"({x})")
    if foot:
        lines.append("")
        lines += foot
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "±": r"$\pm$", "–": "--", "—": "---", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
    "∞": r"$\infty$", "×": r"$\times$", "σ": r"$\sigma$", "✓": r"$\surd$",
    "†": r"\textdagger{}", "‡": r"\textdaggerdbl{}", "…": r"\ldots{}", "≈": r"$\approx$",
    "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\rightarrow$", "·": r"$\cdot$", "−": "-",
    "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "λ": r"$\lambda$", "μ": r"$\mu$",
    "²": r"\textsuperscript{2}", "°": r"\textdegree{}", "∼": r"$\sim$", "√": r"$\surd$",
    **{chr(0x2080 + d): rf"\textsubscript{{{d}}}" for d in range(10)},
}


def _latex_char(ch: str) -> str:
    """One character; beyond Latin (which T1 + utf8 input typesets) the compatibility form
    (NFKD) when that is ASCII, so pdflatex never meets a character it cannot typeset."""
    if ch in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[ch]
    if ord(ch) > 0x24F:
        import unicodedata

        plain = unicodedata.normalize("NFKD", ch)
        if plain.isascii():
            return "".join(_LATEX_SPECIAL.get(c, c) for c in plain)
        return "?"
    return ch


def latex_escape(s: str) -> str:
    """Plain text -> text pdflatex (T1 + utf8 input, booktabs) typesets as printed.

    Specials are escaped, common symbols become commands, and a hyphen followed by another is
    written ``-{}`` so that ``--limit`` does not turn into an en dash. A character outside Latin
    with no LaTeX form becomes its ASCII compatibility form, else ``?``. Escape sequences and
    control characters are removed first (:func:`~faceblur_bench.text.printable`).
    """
    s = printable(s)
    out = []
    for i, ch in enumerate(s):
        if ch == "-" and s[i + 1:i + 2] == "-":
            out.append("-{}")
        else:
            out.append(_latex_char(ch))
    return "".join(out)


def _latex_cell(text: str, mark: str | None) -> str:
    if text.startswith("\0"):
        return f"--$^{{\\mathrm{{{text[1:]}}}}}$"
    s = latex_escape(text)
    if mark == "best":
        return f"\\textbf{{{s}}}"
    if mark == "second":
        return f"\\underline{{{s}}}"
    return s


def _render_latex(table: Table, show_std: bool) -> str:
    g = _grid(table, show_std, latex=True)
    _, protocols = _notes(table)
    spec = "l" + "".join("r" if n else "l" for n in g.numeric)
    out = ["% requires \\usepackage{booktabs}", "\\begin{table}[t]", "\\centering"]
    if table.title:
        out.append(f"\\caption{{{latex_escape(table.title)}}}")
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    groups = [grp for grp, _ in g.col_heads]
    if any(groups):
        parts, rules = [""], []
        j = 0
        while j < len(groups):
            k = j
            while k + 1 < len(groups) and groups[k + 1] == groups[j]:
                k += 1
            n = k - j + 1
            name = latex_escape(groups[j] or "")
            parts.append(f"\\multicolumn{{{n}}}{{c}}{{{name}}}" if n > 1 else name)
            if groups[j]:
                rules.append(f"\\cmidrule(lr){{{j + 2}-{k + 2}}}")
            j = k + 1
        out.append(" & ".join(parts) + " \\\\")
        if rules:
            out.append(" ".join(rules))
    out.append(" & ".join([latex_escape(g.corner)] + [latex_escape(h) for _, h in g.col_heads])
               + " \\\\")
    out.append("\\midrule")
    prev = g.sections[0] if g.sections else None
    for label, cells, sec in zip(g.row_heads, g.body, g.sections):
        if sec != prev:
            out.append("\\midrule")
            prev = sec
        out.append(" & ".join([latex_escape(label)] + [_latex_cell(t, mk) for t, mk in cells])
                   + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}"]
    foot = _footer(table, g.missing, protocols, latex_escape,
                   lambda x: f"$^{{\\mathrm{{{x}}}}}$")
    foot = [f for f in foot if f not in ("Protocols:", "Missing cells:")]
    foot = [f[2:] if f.startswith("- ") else f for f in foot]
    if foot:
        out.append("\\par\\smallskip\\footnotesize")
        out.append(" \\\\\n".join(foot))
    out.append("\\end{table}")
    return "\n".join(out) + "\n"


def _render_csv(table: Table, show_std: bool) -> str:
    """Plain values: full precision for reproduced cells, printed text for reported ones."""
    plain = Table(table.title, table.columns, [
        Row(r.label, {k: (c if c.text is not None or not c.has_value else
                          Cell(value=c.value, std=c.std, text=repr(float(c.value)),  # type: ignore[arg-type]
                               note=c.note))
                      for k, c in r.cells.items()}, r.ranked, r.source, r.section, r.rank_group)
        for r in table.rows], table.row_header, table.notes, table.transpose)
    g = _grid(plain, show_std=False, latex=False, arrows=False)
    heads = [g.corner] + [f"{grp}/{h}" if grp else h for grp, h in g.col_heads]
    body = [[label] + ["" if t.startswith("\0") else t for t, _ in cells]
            for label, cells in zip(g.row_heads, g.body)]
    extras = ([("_std", lambda c: c.std)] if show_std else []) + (
        [("_ci_lo", lambda c: c.ci[0] if c.ci else None), ("_ci_hi", lambda c: c.ci[1] if c.ci else None)]
        if table.show_ci else [])
    if extras and not table.transpose:
        # after each ranked metric column: <column>_std, <column>_ci_lo, <column>_ci_hi
        new_heads = [heads[0]]
        new_body: list[list[str]] = [[r[0]] for r in body]
        for j, col in enumerate(table.columns):
            new_heads.append(heads[j + 1])
            for i, r in enumerate(body):
                new_body[i].append(r[j + 1])
            if col.higher_is_better is not None:
                for suffix, get in extras:
                    new_heads.append(f"{heads[j + 1]}{suffix}")
                    for i, row in enumerate(table.rows):
                        c = row.cells.get(col.key)
                        v = get(c) if c is not None and c.text is None else None
                        new_body[i].append("" if v is None or not math.isfinite(v) else repr(float(v)))
        extra = len(heads) - 1 - len(table.columns)
        for e in range(extra):
            new_heads.append(heads[len(table.columns) + 1 + e])
            for i, r in enumerate(body):
                new_body[i].append(r[len(table.columns) + 1 + e])
        heads, body = new_heads, new_body
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([printable(h) for h in heads])
    w.writerows([[printable(c) for c in r] for r in body])
    return buf.getvalue()


def _ci_text(cell: Cell | None, col: Column) -> str | None:
    """"[lo, hi]" of a cell's 95 % confidence interval in the column's decimals; None without."""
    ci = cell.ci if cell is not None else None
    if not ci or len(ci) != 2 or any(v is None for v in ci):
        return None
    return f"[{format_value(float(ci[0]), col.decimals)}, {format_value(float(ci[1]), col.decimals)}]"


def _render_html(table: Table, show_std: bool) -> str:
    """``<table>`` fragment (caption = title) and its footnotes; every text is escaped."""
    from html import escape

    g = _grid(table, show_std, latex=False)
    _, protocols = _notes(table)
    out = ['<table class="results">']
    if table.title:
        out.append(f"<caption>{escape(table.title)}</caption>")
    heads = [g.corner] + [f"{grp} {h}" if grp else h for grp, h in g.col_heads]
    out.append("<thead><tr>" + "".join(f'<th scope="col">{escape(h)}</th>' for h in heads)
               + "</tr></thead><tbody>")
    cols = table.columns if not table.transpose else [None] * len(g.col_heads)
    for i, (label, cells) in enumerate(zip(g.row_heads, g.body)):
        tds = [f'<th scope="row">{escape(label)}</th>']
        for j, (text, mark) in enumerate(cells):
            if text.startswith("\0"):
                tds.append(f'<td class="missing">{DASH} <sup>({escape(text[1:])})</sup></td>')
                continue
            s = escape(text)
            if mark == "best":
                s = f"<strong>{s}</strong>"
            elif mark == "second":
                s = f"<u>{s}</u>"
            col = cols[j] if j < len(cols) else None
            ci = _ci_text(table.rows[i].cells.get(col.key), col) if col is not None else None
            if ci:
                s += f'<br><span class="ci" title="95 % confidence interval">{escape(ci)}</span>'
            klass = ' class="num"' if j < len(g.numeric) and g.numeric[j] else ""
            tds.append(f"<td{klass}>{s}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    foot = []
    if any(mark for cells in g.body for _, mark in cells):
        foot.append("Best in <strong>bold</strong>, second best <u>underlined</u> (ties share the mark).")
    if any(_ci_text(c, col) for r in table.rows for col in table.columns
           for c in [r.cells.get(col.key)] if c is not None):
        foot.append("[lo, hi] under a value: its 95 % confidence interval.")
    foot += [f[2:] if f.startswith("- ") else f for f in
             _footer(table, g.missing, protocols, escape, lambda x: f"({escape(x)})")]
    if foot:
        out.append('<ul class="notes">' + "".join(f"<li>{f}</li>" for f in foot) + "</ul>")
    return "\n".join(out) + "\n"
