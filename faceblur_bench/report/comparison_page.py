"""The comparison page of a split (``faceblur-bench report``): one self-contained HTML folder.

``write_report(split, results_dir, out_dir)`` writes ``out_dir/index.html`` with, for the runs of
``split`` stored under ``results_dir``:

- the split's table (the cells, marks and footnotes ``faceblur-bench table --split`` prints,
  rendered as HTML, with 95 % confidence intervals when the summaries carry them) and each run's
  provenance (data origin, weight files, package versions, device, session dates);
- per data origin (the official data, then each custom data root under its own heading), a
  per-image table: one row per image, one column per run × metric, sortable, filterable by
  subset, kernel size and failure, with "worst N" of each run one click away;
- a side-by-side viewer (blurred | each run | ground truth) of the selected image, from the
  images runs saved with ``--save-images`` (a run without them says how to save them), with a
  zoom and an A/B swipe between any two panels;
- the ``plot`` figure (mean metric per blur-kernel size) per metric, and every failed image
  with its reason.

Everything the page shows lies inside ``out_dir`` (scripts and styles from the package, images
copied or hard-linked under ``img/``, thumbnails under ``thumbs/``) and is referenced by
relative URL, so the folder opens from ``file://`` or any static host and can be zipped and
shared; nothing is fetched from the network. Copies and thumbnails are made once (a file
already there with the source's size and modification time is kept). Every text from the data
(method labels, ids, file names, reasons) is escaped (Jinja2 autoescaping; the page's data is
JSON in a ``<script type="application/json">`` element with ``<``, ``>`` and ``&`` escaped).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import UsageError
from ..results import image_name, image_path, read_sessions
from .store import as_run, load_summaries, origin_groups, read_rows
from . import names
from .render import Column, format_value
from .tables import _disambiguate, metric_columns, metric_order

#: image formats every browser shows; anything else is converted to PNG
WEB_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}
#: what ``--images`` accepts
IMAGE_MODES = ("copy", "link")
#: longest side of a thumbnail, in pixels
THUMB_PX = 64
#: the page's template, script and style sheet (shipped with the package)
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "report"
ASSETS = ("report.js", "report.css")


@dataclass
class RunColumn:
    """One run of the page: its label (as in the split's table), where its images are."""

    key: str  # run key (unique per configuration); used in the page's element ids
    label: str
    method: str
    run_dir: Path
    has_images: bool
    how_to_save: str
    rows: dict[str, dict[str, Any]]
    metrics: list[str]


@dataclass
class Group:
    """The runs of one data origin (official data, or one custom data root)."""

    heading: str | None
    runs: list[RunColumn]
    ids: list[str]
    samples: dict[str, Any]
    data_note: str | None
    metrics: list[str]
    summaries: list[dict[str, Any]] = field(default_factory=list)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)


def _sort_value(v: Any) -> float | None:
    """Value a column sorts by (∞ PSNR sorts as the largest value; no value: None)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v)):
        return float(v)
    return None


def _value_text(v: float | None, column: Column) -> str:
    return "–" if v is None else format_value(v, column.decimals)


def _open_samples(split: str, data_root: Path | None) -> tuple[dict[str, Any], str | None]:
    """``{id: Sample}`` of ``split`` under ``data_root`` (default root when None), or ({}, why)."""
    from ..data.base import open_split

    try:
        sp = open_split(split, data_root, allow_partial=True)
        return {s.id: s for s in sp.samples()}, None
    except Exception as exc:  # noqa: BLE001 - the page still shows scores without the files
        why = getattr(exc, "message", None) or str(exc).split("\n")[0]
        return {}, (f"the split's files were not found ({why}): blurred and ground-truth images "
                    "are not shown; pass --data-root DIR")


def _per_image_metrics(rows: dict[str, dict[str, Any]], order: list[str]) -> list[str]:
    """Metrics of ``order`` that have a per-image value in some row (set metrics have none)."""
    seen = {m for r in rows.values() for m, v in (r.get("metrics") or {}).items()
            if _sort_value(v) is not None}
    return [m for m in order if m in seen]


def _run_columns(runs: list[dict[str, Any]], split: str, results_dir: Path) -> list[RunColumn]:
    out = []
    for label, s in zip(_disambiguate(runs), runs):
        run = as_run(s)
        d = Path(run.run_dir or s.get("_run_dir") or "")
        rows = {str(r["id"]): r for r in read_rows(d)}
        out.append(RunColumn(
            key=run.run_key or f"run{len(out)}", label=label, method=run.method, run_dir=d,
            has_images=(d / "images").is_dir(),
            how_to_save=(f"no saved images: re-run `faceblur-bench run -m {shlex.quote(run.method)} "
                         f"--split {shlex.quote(split)} --out {shlex.quote(str(results_dir))} "
                         "--save-images` (it resumes: stored rows stay, only the images are "
                         "restored and saved)"),
            rows=rows, metrics=_per_image_metrics(rows, list(run.metrics))))
    return out


class _Files:
    """Images placed inside the page folder (copied or hard-linked once, or converted)."""

    def __init__(self, out_dir: Path, mode: str):
        self.out_dir, self.mode = out_dir, mode
        self.planned: dict[Path, Path] = {}  # destination -> source

    def add(self, src: Path, slot: str, sample_id: str) -> str:
        """Plan ``src`` as ``img/<slot>/<file>``; returns its relative URL."""
        stem = image_name(sample_id)[:-4]
        suffix = src.suffix.lower() if src.suffix.lower() in WEB_FORMATS else ".png"
        rel = Path("img") / slot / (stem + suffix)
        self.planned[self.out_dir / rel] = src
        return quote(rel.as_posix())

    def total_bytes(self) -> int:
        return sum(src.stat().st_size for src in self.planned.values() if src.is_file())

    def write(self) -> None:
        for dst, src in self.planned.items():
            if not src.is_file() or _up_to_date(dst, src):
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix.lower() not in WEB_FORMATS:  # e.g. TIFF: browsers do not show it
                from PIL import Image

                from ..imageio import read_image

                Image.fromarray(read_image(src)).save(dst)
                os.utime(dst, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns))
                continue
            tmp = dst.with_name(f".{dst.name}.tmp")
            tmp.unlink(missing_ok=True)
            if self.mode == "link":
                try:
                    os.link(src, tmp)
                except OSError:  # another file system (or no hard links): a copy instead
                    shutil.copy2(src, tmp)
            else:
                shutil.copy2(src, tmp)
            os.replace(tmp, dst)


def _up_to_date(dst: Path, src: Path) -> bool:
    """``dst`` was made from ``src`` as it is now (same modification time; a copy also the size)."""
    if not dst.is_file():
        return False
    a, b = dst.stat(), src.stat()
    same_size = a.st_size == b.st_size or src.suffix.lower() not in WEB_FORMATS
    return a.st_mtime_ns == b.st_mtime_ns and same_size


def make_thumbnail(src: Path, dst: Path, size: int = THUMB_PX) -> bool:
    """Write a PNG thumbnail (longest side ``size`` px) of ``src`` to ``dst`` unless one made
    from the same source (same modification time) is there; returns True when written."""
    if dst.is_file() and dst.stat().st_mtime_ns == src.stat().st_mtime_ns:
        return False
    from PIL import Image

    from ..imageio import read_image

    img = Image.fromarray(read_image(src))
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    img.save(tmp, format="PNG")
    os.utime(tmp, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns))
    os.replace(tmp, dst)
    return True


def _build_group(heading: str | None, runs: list[dict[str, Any]], split: str, results_dir: Path,
                 data_root: Path | None, gi: int, files: _Files, thumbs: list[tuple[Path, Path]],
                 columns: dict[str, Column]) -> Group:
    cols = _run_columns(runs, split, results_dir)
    recorded = [as_run(s).data_root or (s.get("data_origin") or {}).get("data_root") for s in runs]
    found = next((Path(r) for r in recorded if r and Path(r).is_dir()), None)
    if heading is not None:  # custom data: only the root these runs read (never another copy)
        samples, note = _open_samples(split, found) if found is not None else (
            {}, f"the runs' data root {recorded[0]} is not there: blurred and ground-truth "
                "images are not shown")
    else:  # --data-root, else the root the runs recorded, else the default root
        samples, note = _open_samples(split, data_root or found)
    # the split's order; ids stored but not in the split (files gone) after them
    ids = list(dict.fromkeys([i for i in samples if any(i in c.rows for c in cols)]
                             + [i for c in cols for i in c.rows]))
    metrics = [m for m in metric_order(runs) if any(m in c.metrics for c in cols)]
    g = Group(heading, cols, ids, samples, note, metrics, runs)
    for iid in ids:
        s = samples.get(iid)
        meta = dict((s.meta if s is not None else None) or next(
            (c.rows[iid].get("meta") or {} for c in cols if iid in c.rows), {}))
        failed = {c.key: str(c.rows[iid].get("reason") or "failed")
                  for c in cols if iid in c.rows and c.rows[iid].get("status", "ok") != "ok"}
        entry: dict[str, Any] = {"id": iid, "subset": meta.get("subset"),
                                 "kernel": meta.get("kernel_size"), "failed": failed, "cells": []}
        for c in cols:
            r = c.rows.get(iid)
            for m in g.metrics:
                v = _sort_value((r.get("metrics") or {}).get(m)) if r is not None else None
                entry["cells"].append({"sv": "" if v is None else repr(v).replace("inf", "Infinity"),
                                       "text": _value_text(v, columns[m]) if r is not None else "",
                                       "failed": c.key in failed})
        g.per_image.append(entry)
        img: dict[str, Any] = {"m": {}}
        if s is not None:
            img["input"] = files.add(s.blurred, f"g{gi}-input", iid)
            if s.sharp is not None:
                img["gt"] = files.add(s.sharp, f"g{gi}-gt", iid)
            thumb = Path("thumbs") / f"g{gi}" / image_name(iid)
            thumbs.append((s.blurred, files.out_dir / thumb))
            img["thumb"] = quote(thumb.as_posix())
        for c in cols:
            p = image_path(c.run_dir, iid)
            if c.has_images and p.is_file():
                img["m"][c.key] = files.add(p, f"run-{c.key}", iid)
        g.images[iid] = img
    return g


def _provenance(g: Group) -> list[dict[str, Any]]:
    """Per run of ``g``: what produced its numbers (data, weights, software, device, dates)."""
    out = []
    for c, s in zip(g.runs, g.summaries):
        label = c.label
        run = as_run(s)
        prov = run.provenance or {}
        dates = [str(r.get("date")) for r in read_sessions(run.run_dir) if r.get("date")] \
            if run.run_dir else []
        if not dates and prov.get("date"):
            dates = [str(prov["date"])]
        weights = list((run.weights_used or {}).get("method") or [])
        for m, ws in sorted(((run.weights_used or {}).get("metrics") or {}).items()):
            weights += [dict(w, metric=m) for w in ws or []]
        origin = s.get("data_origin") or {}
        out.append({
            "label": label, "heading": g.heading, "run_key": run.run_key, "run_dir": run.run_dir,
            "checkpoint": run.checkpoint, "checkpoint_sha256": run.checkpoint_sha256,
            "options": json.dumps(run.method_options, sort_keys=True) if run.method_options else "",
            "origin": " — ".join(str(x) for x in (origin.get("kind"), origin.get("reason")) if x)
                      or "not recorded",
            "data_root": origin.get("data_root") or run.data_root,
            "fingerprint": run.split_fingerprint,
            "counts": f"{run.counts.ok} ok, {run.counts.failed} failed of {run.counts.total}",
            "complete": run.complete and not run.partial and not run.limit,
            "weights": weights,
            "software": ", ".join(f"{k} {v}" for k, v in (
                [("faceblur-bench", prov.get("faceblur_bench")), ("python", prov.get("python"))]
                + sorted((prov.get("packages") or {}).items())) if v),
            "device": " / ".join(str(x) for x in (prov.get("device"), prov.get("device_name")) if x),
            "first_date": min(dates) if dates else None, "last_date": max(dates) if dates else None,
            "sessions": len(dates),
        })
    return out


def _kernel_plots(g: Group, gi: int, out_dir: Path, title: str) -> list[dict[str, Any]]:
    """``plot --kind kernel-size`` of each per-image metric of ``g`` that has per-kernel values,
    written to ``plots/g<gi>-kernel-size-<metric>.png``."""
    from .plots import kernel_size_series, metric_vs_kernel_size

    out = []
    for m in g.metrics:
        if not kernel_size_series(g.summaries, m):
            continue
        rel = Path("plots") / f"g{gi}-kernel-size-{image_name(m)}"
        metric_vs_kernel_size(g.summaries, m, out_dir / rel, title=title)
        out.append({"metric": m, "src": quote(rel.as_posix()), "heading": g.heading})
    return out


def _split_table_html(summaries: list[dict[str, Any]], split: str) -> str:
    """The split's table as ``faceblur-bench table --split`` builds it (a paper layout for the
    splits that have a default one), rendered as HTML."""
    from . import layouts
    from .tables import split_table_with_published

    if "/" not in split and split in layouts.DEFAULT_LAYOUT:
        ly = layouts.get_layout(layouts.DEFAULT_LAYOUT[split])
        return layouts.render_layout(ly, summaries, split=split, fmt="html")
    return split_table_with_published(summaries, split, fmt="html")


def _stored_split_name(split: str, data_root: str | Path | None) -> str:
    """The name runs store for ``split``: ``folder:DIR`` is stored as ``folder:<DIR's name>``."""
    head, colon, _ = split.partition(":")
    if not colon or "/" in head:
        return split
    from ..data.base import open_split

    return open_split(split, data_root, allow_partial=True).full_name


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` can close it)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_report(split: str, results_dir: str | Path, out_dir: str | Path,
                 data_root: str | Path | None = None, methods: list[str] | None = None,
                 images: str = "copy", max_image_mb: float = 500.0, worst_n: int = 10) -> Path:
    """Write the comparison page of ``split`` (``name``, ``name/subset`` or ``folder:DIR``)
    from the runs under ``results_dir`` to ``out_dir/index.html``; returns that path.

    ``data_root``: where the split's blurred and ground-truth files are (default: the root each
    run recorded when it exists, else ``$FACEBLUR_DATA`` / the default root). ``images``:
    ``copy`` or ``link`` (hard links where the file system allows, else copies) the images into
    ``out_dir/img``; ``max_image_mb`` refuses (:class:`UsageError`) a page whose images would
    take more (MB of source files). ``worst_n``: rows the "worst N" buttons show.
    Raises :class:`UsageError` when there is no run of ``split`` under ``results_dir``.
    """
    import jinja2

    if images not in IMAGE_MODES:
        import difflib

        from ..errors import UnknownNameError

        raise UnknownNameError("--images mode", images, list(IMAGE_MODES),
                               difflib.get_close_matches(images, IMAGE_MODES, n=1, cutoff=0.5))
    if worst_n < 1:
        raise UsageError(f"--worst {worst_n} is not a row count", "pass --worst 1 or more")
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    spec, split = split, _stored_split_name(split, data_root)  # spec: how to open it (folder:DIR)
    stored = load_summaries(results_dir, split=split, methods=methods)  # what `table` shows
    # per image: single-image runs (a single-to-video run has n restored moments per image)
    summaries = [s for s in stored if (s.get("protocol") or "s2s") == "s2s"]
    if not summaries:
        raise UsageError(f"no runs of split {split!r} under {results_dir}",
                         f"run `faceblur-bench run --split {split} --save-images` first, or pass "
                         "--results DIR")
    if out_dir.resolve() == results_dir.resolve():
        raise UsageError(f"-o {out_dir} is the results directory", "write the page to its own folder")
    files = _Files(out_dir, images)
    thumbs: list[tuple[Path, Path]] = []
    columns = metric_columns(summaries)
    groups = [_build_group(heading, runs, spec, results_dir,
                           Path(data_root) if data_root else None, gi, files, thumbs, columns)
              for gi, (heading, runs) in enumerate(origin_groups(summaries))]
    mb = files.total_bytes() / 1e6
    if mb > max_image_mb:
        raise UsageError(f"the page's images would take {mb:.1f} MB, over --max-image-mb "
                         f"{max_image_mb:g}", f"pass --max-image-mb {math.ceil(mb)} (or more)")
    out_dir.mkdir(parents=True, exist_ok=True)
    files.write()
    for src, dst in thumbs:
        if src.is_file():
            make_thumbnail(src, dst)
    for name in ASSETS:
        data = (ASSET_DIR / name).read_bytes()
        dst = out_dir / name
        if not dst.is_file() or dst.read_bytes() != data:
            dst.write_bytes(data)
    plots = [p for gi, g in enumerate(groups) for p in _kernel_plots(g, gi, out_dir, split)]
    failures = [{"label": c.label, "heading": g.heading, "id": iid, "reason": str(r.get("reason") or "?")}
                for g in groups for c in g.runs for iid, r in c.rows.items()
                if r.get("status", "ok") != "ok"]
    page_data = {"worst_n": worst_n, "groups": [{
        "runs": [{"key": c.key, "label": c.label, "has_images": c.has_images,
                  "ranked": names.is_ranked(c.method), "how": c.how_to_save} for c in g.runs],
        "metrics": [{"name": m, "label": columns[m].label,
                     "higher_is_better": columns[m].higher_is_better} for m in g.metrics],
        "has_gt": any("gt" in v for v in g.images.values()),
        "images": g.images} for g in groups]}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ASSET_DIR),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    from .. import __version__

    html = env.get_template("index.html.j2").render(
        split=split, version=__version__, table_html=jinja2.utils.markupsafe.Markup(
            _split_table_html(stored, split)),
        groups=groups, provenance=[p for g in groups for p in _provenance(g)], plots=plots,
        failures=failures, worst_n=worst_n, data_json=_json_for_script(page_data),
        columns=columns)
    index = out_dir / "index.html"
    from ..results import atomic_write_text

    atomic_write_text(index, html)
    return index


__all__ = ["write_report", "make_thumbnail", "IMAGE_MODES"]
