"""Report commands: ``table``, ``figure``, ``plot``, ``report``, ``check``, ``leaderboard``.

Thin wrappers over :mod:`faceblur_bench.report`; see each function's ``--help``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UsageError

FORMATS = ("md", "latex", "csv")
MARKS = ("significance", "value")


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    """``value`` must be one of ``choices``; else a usage error with "did you mean"."""
    if value not in choices:
        import difflib

        from ..errors import UnknownNameError

        raise UnknownNameError(f"{option} value", value, list(choices),
                               difflib.get_close_matches(value, choices, n=2, cutoff=0.5))


def register(app: typer.Typer) -> None:
    app.command("table")(table)
    app.command("figure")(figure)
    app.command("plot")(plot)
    app.command("report")(report)
    app.command("check")(check)
    app.command("leaderboard")(leaderboard)
    app.command("compare")(compare_cmd)


def _split_csv(values: Optional[List[str]]) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def _stored(results: Path, key: str) -> set[str]:
    """Values of ``key`` ("method") or the metric names over every run stored under ``results``."""
    from ..report import store

    if not results.exists():
        return set()
    names: set[str] = set()
    for s in store.load_summaries(results):
        if key == "metrics":
            names.update(s.get("metrics") or {})
        elif s.get(key) is not None:
            names.add(str(s.get(key)))
    return names


def check_method_names(methods: list[str] | None, results: Path) -> None:
    """Every name in ``--methods`` must be a registered method, have stored runs (a method or a
    run's ``--label``), or name the
    published rows of a method (``shen``, ``gt``); else an :class:`UnknownNameError` with "did
    you mean" (not "no runs ... run first")."""
    import difflib

    from ..errors import UnknownNameError
    from ..registry import methods as method_registry

    if not methods:
        return
    from ..report import published

    known = sorted(set(method_registry.declared()) | _stored(results, "method") | _stored(results, "label")
                   | {e.harness_method for e in published.load() if e.harness_method})
    for m in methods:
        if m not in known:
            raise UnknownNameError("method", m, known, difflib.get_close_matches(m, known, n=3, cutoff=0.5))


def check_metric_name(metric: str, results: Path) -> None:
    """``--metric`` must be a registered metric or one stored in the runs (did you mean)."""
    import difflib

    from ..errors import UnknownNameError
    from ..registry import metrics as metric_registry

    known = sorted(set(metric_registry.declared()) | _stored(results, "metrics"))
    if metric not in known:
        raise UnknownNameError("metric", metric, known,
                               difflib.get_close_matches(metric, known, n=3, cutoff=0.5))


def _write_or_print(text: str, output: Optional[Path]) -> None:
    from . import out

    if output is None:
        out.print(text, markup=False, highlight=False, end="", soft_wrap=True)
        return
    from ..results import atomic_write_text

    atomic_write_text(output, text)
    from . import console

    console.print(f"wrote {output}", highlight=False)


def table(
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split name or split/subset (e.g. mspl-center, shen-helen, mspl-center/ffhq). Required unless --layout implies it."),
    methods: Optional[List[str]] = typer.Option(None, "--methods", "-m", help="Only these methods (comma-separated or repeated); published rows are kept only when they map to one of them."),
    layout: Optional[str] = typer.Option(None, "--layout", "-l", help="Paper table layout, e.g. sappgan-t1, dfpg-t2, shen-t9, cfmd-t4, yun-t1 (see --list-layouts). Default: a plain method x metric table."),
    fmt: str = typer.Option("md", "--format", "-f", help="Output format: md | latex | csv."),
    results: Path = typer.Option(Path("results"), "--results", help="Results directory (holding runs/) or one run directory."),
    metrics: Optional[List[str]] = typer.Option(None, "--metrics", help="Columns of the plain table (comma-separated); default every metric of the runs."),
    show_std: bool = typer.Option(False, "--std", help="Show mean ± std in the plain table."),
    ci: bool = typer.Option(False, "--ci", help="Show each paired value's 95% confidence interval [lo, hi] (cluster bootstrap over the split's independent units; CSV: <col>_ci_lo/_ci_hi columns). Plain table only."),
    marks: str = typer.Option("significance", "--marks", help="significance (default): bold only where the best is significantly better than the runner-up (paired test, Holm over the columns), else the tied leaders share it; value: by value alone. Plain table only."),
    no_published: bool = typer.Option(False, "--no-published", help="Leave out the numbers reported in the papers."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    list_layouts: bool = typer.Option(False, "--list-layouts", help="List the paper layouts and exit."),
) -> None:
    """Print a results table: a paper layout (published + reproduced rows) or a plain table."""
    from ..report import layouts as L
    from ..report import published, store, tables

    if list_layouts:
        lines = [f"{name:12s} {ly.citation}: {ly.title} (splits: {', '.join(ly.splits)})"
                 for name, ly in L.LAYOUTS.items()]
        _write_or_print("\n".join(lines) + "\n", output)
        return
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    check_choice("--marks", marks, MARKS)
    meths = _split_csv(methods) or None
    check_method_names(meths, results)
    if layout is None and split is None:
        raise UsageError("--split is required without --layout",
                         "e.g. `faceblur-bench table --split mspl-center --layout sappgan-t1`")
    if layout is None and split is not None and "/" not in split and split in L.DEFAULT_LAYOUT \
            and not metrics:
        layout = L.DEFAULT_LAYOUT[split]
    results_exists = results.exists()
    if layout is not None:
        if ci or marks != "significance":
            raise UsageError(f"--ci and --marks apply to the plain table, not to --layout {layout}",
                             "leave out --layout (and pass --metrics for a split with a default "
                             "layout) to get intervals and significance marks")
        ly = L.get_layout(layout)
        summaries = store.load_summaries(results) if results_exists else []
        text = L.render_layout(ly, summaries, split=split, methods=meths, fmt=fmt,
                               include_published=not no_published)
        _write_or_print(text, output)
        return
    assert split is not None
    summaries = store.load_summaries(results, split=split, methods=meths)
    from ..results import split_parts

    name, subset = split_parts(split)
    ms = _split_csv(metrics) or None
    for m in ms or []:  # as `run` does: a typo is an error with "did you mean", not an empty column
        check_metric_name(m, results)
    if not summaries and (no_published or not published.rows_for_split(name, subset or None, ms or [])):
        raise UsageError(f"no runs of split {split!r} under {results}",
                         f"run `faceblur-bench run --split {split}` first, or pass --results DIR")
    # a split without ground truth gets its own heading, without the not-applicable columns
    text = tables.split_table_with_published(summaries, split, fmt=fmt, metrics=ms,  # type: ignore[arg-type]
                                             show_std=show_std, include_published=not no_published,
                                             methods=meths, ci=ci, significance=marks == "significance")
    _write_or_print(text, output)


def _parse_zoom(zoom: Optional[str]) -> Optional[tuple[int, int, int, int]]:
    if not zoom:
        return None
    try:
        x, y, w, h = (int(v) for v in zoom.split(","))
    except ValueError:
        raise UsageError(f"bad --zoom {zoom!r}", "use --zoom X,Y,W,H in ground-truth pixels") from None
    return x, y, w, h


def figure(
    split: str = typer.Option(..., "--split", "-s", help="Split name or split/subset whose images to show."),
    methods: List[str] = typer.Option(..., "--methods", "-m", help="Methods (columns), comma-separated or repeated; their runs must have used --save-images."),
    moments: bool = typer.Option(False, "--moments", help="Single-to-video figure: the n moments one method restored (a --protocol s2v --save-images run) beside the n sharp frames; --ids are blurred-image ids."),
    ids: Optional[List[str]] = typer.Option(None, "--ids", help="Sample ids (rows), comma-separated or repeated. Default: the first --max-images with saved images for every method."),
    results: Path = typer.Option(Path("results"), "--results", help="Results directory."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Dataset root (default $FACEBLUR_DATA or ~/.cache/faceblur_bench/data)."),
    zoom: Optional[str] = typer.Option(None, "--zoom", help="Zoomed crop X,Y,W,H (ground-truth pixels) shown under each image."),
    max_images: int = typer.Option(4, "--max-images", min=1, help="Rows when --ids is not given."),
    output: Path = typer.Option(Path("figure.png"), "--output", "-o", help="PNG file to write."),
    scores: bool | None = typer.Option(None, "--scores/--no-scores", help="Write each image's no-reference scores under its panel (default: on for splits without ground truth)."),
    score_metrics: list[str] | None = typer.Option(None, "--score-metrics", help="No-reference metrics shown under the panels (default: those the runs scored, at most 4)."),
) -> None:
    """Write a qualitative comparison grid (blurred | methods | ground truth) as PNG."""
    from .core import check_split_name

    # usage errors before the drawing stack (torch, networks) is imported
    check_method_names(_split_csv(methods), results)
    check_split_name(split, data_root)
    crop = _parse_zoom(zoom)
    from ..report.figures import moments_figure, qualitative_figure
    from . import console

    if moments:
        ms = _split_csv(methods)
        if len(ms) != 1:
            raise UsageError(f"--moments draws one method's moments, got {len(ms)} methods", "pass one --methods NAME")
        path = moments_figure(split, ms[0], output, results_dir=results, ids=_split_csv(ids) or None,
                              data_root=data_root, max_images=max_images)
        console.print(f"wrote {path}", highlight=False)
        return

    path = qualitative_figure(split, _split_csv(methods), output, results_dir=results,
                              ids=_split_csv(ids) or None, data_root=data_root,
                              zoom=crop, max_images=max_images, scores=scores,
                              score_metrics=_split_csv(score_metrics) or None)
    console.print(f"wrote {path}", highlight=False)


#: ``plot --kind`` values
PLOT_KINDS = ("kernel-size", "distribution")


def plot(
    split: str = typer.Option(..., "--split", "-s", help="Split name or split/subset."),
    kind: str = typer.Option("kernel-size", "--kind", "-k", help="kernel-size (mean metric per blur-kernel size) | distribution (per-image values per method)."),
    metric: str = typer.Option("psnr", "--metric", help="Metric name as stored in the runs (e.g. psnr, ssim)."),
    methods: Optional[List[str]] = typer.Option(None, "--methods", "-m", help="Only these methods (comma-separated or repeated)."),
    results: Path = typer.Option(Path("results"), "--results", help="Results directory."),
    output: Path = typer.Option(Path("plot.png"), "--output", "-o", help="PNG file to write."),
) -> None:
    """Plot a metric against blur-kernel size, or its per-image distribution, per method."""
    from ..report import store
    from . import console

    if kind not in PLOT_KINDS:
        raise UsageError(f"unknown --kind {kind!r}", "use kernel-size or distribution")
    check_method_names(_split_csv(methods), results)
    check_metric_name(metric, results)
    summaries = store.load_summaries(results, split=split, methods=_split_csv(methods) or None)
    if not summaries:
        raise UsageError(f"no runs of split {split!r} under {results}",
                         f"run `faceblur-bench run --split {split}` first")
    from ..report.coverage import title_suffix

    summaries = store.latest_runs(summaries)
    title = split + title_suffix(summaries)  # a limited/partial run says so in the title
    from ..report import plots

    if kind == "kernel-size":
        path = plots.metric_vs_kernel_size(summaries, metric, output, title=title)
    else:
        path = plots.metric_distribution(summaries, metric, output, title=title)
    console.print(f"wrote {path}", highlight=False)


def report(
    split: str = typer.Option(..., "--split", "-s", help="Split name, split/subset or folder:DIR."),
    results: Path = typer.Option(Path("results"), "--results", help="Results directory (holding runs/)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write (index.html + images, scripts, plots)."),
    methods: Optional[List[str]] = typer.Option(None, "--methods", "-m", help="Only these methods (comma-separated or repeated)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Where the split's blurred and ground-truth files are (default: the root each run recorded, else $FACEBLUR_DATA or ~/.cache/faceblur_bench/data)."),
    images: str = typer.Option("copy", "--images", help="copy | link: put the images into the folder as copies or hard links (hard links fall back to copies across file systems)."),
    max_image_mb: float = typer.Option(500.0, "--max-image-mb", min=0.0, help="Refuse to write a page whose images take more than this many MB."),
    worst: int = typer.Option(10, "--worst", min=1, help="Rows the 'worst N' buttons show (changeable on the page)."),
) -> None:
    """Write a self-contained HTML comparison page of a split (open OUTPUT/index.html)."""
    from ..report.comparison_page import write_report
    from . import console

    check_method_names(_split_csv(methods) or None, results)
    path = write_report(split, results, output, data_root=data_root, methods=_split_csv(methods) or None,
                        images=images, max_image_mb=max_image_mb, worst_n=worst)
    console.print(f"wrote {path}", highlight=False)


def check(
    baseline: Path = typer.Option(..., "--baseline", help="Baseline: a run directory or a results directory."),
    current: Path = typer.Option(..., "--current", help="Current results: a run directory or a results directory."),
    tolerance: Optional[List[str]] = typer.Option(None, "--tolerance", "-t", help="METRIC=ABS, METRIC=PCT% or METRIC=rel:R|abs:A (repeatable; METRIC '*' sets the default, which is 0.1% relative); 'auto' also fails a paired metric whose difference to the baseline is significant in the bad direction (sign-flip test over units, Holm over all metrics)."),
    no_images: bool = typer.Option(False, "--no-images", help="Compare aggregates only (skip the image-by-image comparison)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    max_images: int = typer.Option(20, "--max-images", min=0, help="Per-image regressions listed in the report (0: none)."),
) -> None:
    """Compare current results with a baseline; exit 1 on a regression beyond tolerance."""
    from ..report.check import compare, parse_tolerances
    from . import out

    specs = _split_csv_keep(tolerance)
    auto = "auto" in specs
    res = compare(baseline, current, parse_tolerances([t for t in specs if t != "auto"]),
                  per_image=not no_images, auto=auto)
    if as_json:
        # soft_wrap: rich would break long lines (paths) inside JSON strings at the terminal width
        out.print(json.dumps(res.to_json(), indent=2, default=str), markup=False, highlight=False,
                  soft_wrap=True)
    else:
        out.print(res.render(max_images=max_images), markup=False, highlight=False, end="",
                  soft_wrap=True)
    # SystemExit, not typer.Exit: the app runs with standalone_mode=False, where click turns
    # typer.Exit into a return value that would lose the exit code
    if res.exit_code:
        raise SystemExit(res.exit_code)


def _split_csv_keep(values: Optional[List[str]]) -> list[str]:
    # tolerances may be comma-separated: "psnr=0.05,ssim=0.5%"
    return _split_csv(values)


def leaderboard(
    results: Path = typer.Option(Path("results"), "--results", help="Results directory (holding runs/)."),
    output: Path = typer.Option(Path("leaderboard.md"), "--output", "-o", help="Markdown file to (re)write."),
    no_published: bool = typer.Option(False, "--no-published", help="Only reproduced rows."),
) -> None:
    """Regenerate leaderboard.md from every stored run (+ published numbers), one section per split."""
    from ..report.leaderboard import write_leaderboard
    from . import console

    write_leaderboard(results, output, include_published=not no_published)
    console.print(f"wrote {output}", highlight=False)


def compare_cmd(
    method_a: str = typer.Argument(..., metavar="A", help="Method name (or run directory) A."),
    method_b: str = typer.Argument(..., metavar="B", help="Method name (or run directory) B."),
    split: str = typer.Option(..., "--split", "-s", help="Split name or split/subset both runs scored."),
    metric: str = typer.Option(..., "--metric", help="A paired metric stored in both runs (e.g. psnr, ssim, lpips-alex)."),
    results: Path = typer.Option(Path("results"), "--results", help="Results directory (holding runs/)."),
    as_json: bool = typer.Option(False, "--json", help="Print difference, ci95, p_value, n_images, n_units (and how) as JSON."),
) -> None:
    """Paired comparison of A and B: mean difference A − B over the images both scored, its 95%
    interval (cluster bootstrap) and a p-value (sign-flip permutation test over units)."""
    check_metric_name(metric, results)  # before the statistics stack is imported
    from ..report.compare import compare_runs
    from . import out

    res = compare_runs(results, split, metric, method_a, method_b)
    if as_json:
        out.print(json.dumps(res.to_json(), indent=2, default=str), markup=False, highlight=False,
                  soft_wrap=True)
    else:
        out.print(res.render(), markup=False, highlight=False, end="", soft_wrap=True)
