"""Qualitative figures: a PNG grid like the papers' comparison figures.

Rows are images; columns are the blurred input, each method's restored image (saved by runs with
``--save-images`` under ``<run_dir>/images/<id>.png``) and the ground truth. Under each restored
panel the image's PSNR / SSIM as stored in its run's ``rows.jsonl`` (the run's protocol, so
the figure agrees with the tables); under the input the same values of a stored ``blurred`` run
of the split, when there is one. On splits without ground truth (``lai-real``, ``folder:DIR``)
each panel carries that image's no-reference scores instead (from the same rows). The sample id
heads each row (horizontal, wrapped). An optional zoom box ``(x, y, w, h)`` (in ground-truth
pixels) is outlined on every panel and shown enlarged in an extra row under each image. Inputs
smaller than the ground truth (joint SR) are shown enlarged with nearest-neighbour sampling so
pixels stay visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .store import as_run, latest_runs, load_summaries, read_rows
from .tables import run_label

#: per-panel caption metrics, in this order, when the run stored them
CAPTION_METRICS = (("psnr", "PSNR", "{:.2f} dB"), ("ssim", "SSIM", "{:.4f}"))


def _row_metrics(run_dir: Path | None) -> dict[str, dict[str, float]]:
    """``{sample id: {metric: value}}`` of the run's ok rows (empty without a run)."""
    if run_dir is None:
        return {}
    out = {}
    for r in read_rows(run_dir):
        if r.get("status", "ok") == "ok":
            out[str(r["id"])] = r.get("metrics") or {}
    return out


def panel_caption(values: dict[str, float] | None) -> str:
    """"PSNR 25.31 dB / SSIM 0.8123" from one row's metrics (what is there; "" when nothing)."""
    parts = []
    for key, label, fmt in CAPTION_METRICS:
        v = (values or {}).get(key)
        if v is not None:
            v = float(v)
            parts.append(f"{label} " + ("∞" if v == float("inf") else fmt.format(v)))
    return " / ".join(parts)


def _wrap_id(text: str, width: int = 16) -> str:
    """Sample id on lines of at most ``width`` characters (ids have no spaces: cut at ``_``)."""
    lines, cur = [], ""
    for part in text.replace("_", "_\0").split("\0"):
        if cur and len(cur) + len(part) > width:
            lines.append(cur)
            cur = ""
        while len(part) > width:
            lines.append(part[:width])
            part = part[width:]
        cur += part
    if cur:
        lines.append(cur)
    return "\n".join(lines)


def _latest_run(summaries: list[dict[str, Any]], method: str):
    """The run of ``method`` the tables show (``latest_runs``: complete first, then newest);
    ``method`` may be a run's ``--label`` (which wins over a method of that name)."""
    runs = list(map(as_run, latest_runs(summaries)))
    runs = [r for r in runs if r.label == method] or [r for r in runs if r.method == method]
    if not runs:
        return None
    runs.sort(key=lambda r: (r.complete, r.date))
    return runs[-1]


def _latest_run_dir(summaries: list[dict[str, Any]], method: str) -> Path | None:
    run = _latest_run(summaries, method)
    return Path(run.run_dir) if run is not None and run.run_dir else None


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    ys = (np.arange(h) * img.shape[0] / h).astype(int)
    xs = (np.arange(w) * img.shape[1] / w).astype(int)
    return img[ys][:, xs]


def _image_scores(run_dir: Path | None, metric_names: Sequence[str] | None) -> dict[str, dict[str, float]]:
    """Per-image values of the no-reference metrics a run scored: ``{id: {metric: value}}``."""
    from ..registry import metrics
    from ..results import read_rows

    if run_dir is None or not (run_dir / "rows.jsonl").is_file():
        return {}
    out: dict[str, dict[str, float]] = {}
    for r in read_rows(run_dir / "rows.jsonl"):  # a later row of an id (a retry) wins
        if r.get("status") != "ok":
            continue
        vals = {}
        for m, v in (r.get("metrics") or {}).items():
            if metric_names is not None and m not in metric_names:
                continue
            if m in metrics and not metrics.get(m).needs_reference and v is not None and not math.isnan(v):
                vals[m] = float(v)
        out[r["id"]] = vals
    return out


def _score_text(vals: dict[str, float], order: Sequence[str]) -> str:
    from ..registry import metrics

    parts = []
    for m in order:
        if m in vals:
            cls = metrics.get(m)
            label = (cls.label or m).removeprefix("pyiqa-")
            parts.append(f"{label} {vals[m]:.3g}{cls.arrow()}")
    return "\n".join(" ".join(parts[i:i + 2]) for i in range(0, len(parts), 2))


def _column_title(method: str, run_dir: Path) -> str:
    """A method's column title; a run that is not complete says so (``wiener (8/72, --limit 8)``,
    the rule of :mod:`faceblur_bench.report.coverage`)."""
    import warnings

    from ..errors import ResultsWarning
    from .coverage import coverage
    from .store import load_run

    with warnings.catch_warnings():  # the tables warn about a summary that does not match its rows
        warnings.simplefilter("ignore", ResultsWarning)
        cov = coverage(load_run(run_dir))
    return method if cov.complete and cov.verified else f"{method} ({cov.label or 'unverified'})"


def qualitative_figure(split: str, methods: Sequence[str], out: str | Path,
                       results_dir: str | Path = "results", ids: Sequence[str] | None = None,
                       data_root: str | Path | None = None, zoom: tuple[int, int, int, int] | None = None,
                       max_images: int = 4, dpi: int = 150, scores: bool | None = None,
                       score_metrics: Sequence[str] | None = None) -> Path:
    """Write the comparison grid for ``methods`` on ``split`` (``name``, ``name/subset`` or
    ``folder:DIR``) to ``out`` (PNG) and return its path.

    ``ids`` default: the first ``max_images`` sample ids for which every method saved an image.
    ``scores`` (default: on for splits without ground truth) writes under each panel that
    image's no-reference scores from the run's rows (``score_metrics``, default every
    no-reference metric the runs scored, at most 4); the input panel's come from the ``blurred``
    (identity) run when there is one. Raises :class:`UsageError` when a method has no run / no
    saved images, or an id is unknown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..data.base import open_split
    from ..imageio import read_image
    from ..results import image_path

    sp = open_split(split, data_root, allow_partial=True)  # a partial copy is enough to show images
    samples = {s.id: s for s in sp.samples()}
    summaries = load_summaries(results_dir, split=sp.full_name)
    run_dirs: dict[str, Path] = {}
    captions: dict[str, dict[str, dict[str, float]]] = {}
    of_s2s = [s for s in summaries if s.get("split") == sp.full_name and (s.get("protocol") or "s2s") == "s2s"]
    for m in methods:
        d = _latest_run_dir(of_s2s, m)
        if d is None:
            raise UsageError(f"no run of {m!r} on {sp.full_name} under {results_dir}",
                             f"run `faceblur-bench run -m {m} --split {sp.full_name} --save-images`")
        if not (d / "images").is_dir():
            raise UsageError(f"run {d} has no saved images",
                             f"re-run the same command with --save-images, e.g. `faceblur-bench run -m {m} "
                             f"--split {sp.full_name} --out {results_dir} --save-images` (it resumes: "
                             "stored rows stay as they are, only the images are restored and saved)")
        run_dirs[m] = d
        captions[m] = _row_metrics(d)
    blurred_run = _latest_run_dir([s for s in summaries if s.get("split") == sp.full_name], "blurred")
    captions["__input__"] = _row_metrics(blurred_run)
    if ids:
        unknown = [i for i in ids if i not in samples]
        if unknown:
            raise UsageError(f"unknown sample id(s) on {sp.full_name}: {', '.join(unknown[:5])}",
                             "ids are the 'id' fields of rows.jsonl")
        chosen = list(ids)
    else:
        cand = [i for i in samples if all(image_path(run_dirs[m], i).is_file() for m in methods)]
        step = max(1, len(cand) // max_images)  # spread over the split, not one face's kernels
        chosen = cand[::step][:max_images]
        if not chosen:
            raise UsageError("no sample has a saved image for every method",
                             "pass --ids of images that were saved, or re-run with --save-images")
    if scores is None:
        scores = not sp.has_reference
    panel_scores: list[dict[str, dict[str, float]]] = []
    order: list[str] = []
    if scores:
        of_split = [s for s in summaries if s.get("split") == sp.full_name]
        panel_scores = [_image_scores(_latest_run_dir(of_split, "blurred"), score_metrics)]
        panel_scores += [_image_scores(run_dirs[m], score_metrics) for m in methods]
        for ps in panel_scores:
            for vals in ps.values():
                order += [m for m in vals if m not in order]
        order = list(score_metrics) if score_metrics else order[:4]
    has_gt = any(samples[i].sharp is not None for i in chosen)
    # a run's --label, else its method; a run that is not complete says so
    titles = [_column_title(run_label(_latest_run(of_s2s, m)), run_dirs[m]) for m in methods]
    cols = ["Input (blurred)"] + titles + (["Ground truth"] if has_gt else [])
    per_img = 2 if zoom else 1
    nrows = len(chosen) * per_img
    fig, axes = plt.subplots(nrows, len(cols), figsize=(2.0 * len(cols) + 1.0, 2.3 * nrows),
                             squeeze=False)
    for r, iid in enumerate(chosen):
        s = samples[iid]
        panels: list[np.ndarray | None] = [read_image(s.blurred)]
        for m in methods:
            p = image_path(run_dirs[m], iid)
            panels.append(read_image(p) if p.is_file() else None)
        if has_gt:
            panels.append(read_image(s.sharp) if s.sharp is not None else None)
        ref = next((p for p in panels[1:] if p is not None), panels[0])
        h, w = ref.shape[:2]
        for c, img in enumerate(panels):
            ax = axes[r * per_img, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
            if c == 0:  # horizontal and wrapped: long ids never run into the next row
                ax.set_ylabel(_wrap_id(iid), fontsize=7, rotation=0, ha="right", va="center",
                              labelpad=6)
            if scores and c < len(panel_scores) and not zoom:
                ax.set_xlabel(_score_text(panel_scores[c].get(iid, {}), order), fontsize=6)
            else:
                key = "__input__" if c == 0 else (methods[c - 1] if c <= len(methods) else None)
                cap = panel_caption(captions.get(key, {}).get(iid)) if key else ""
                if cap:
                    ax.set_xlabel(cap, fontsize=7)
            if img is None:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes)
                continue
            img = _resize_nearest(img, h, w)
            ax.imshow(img)
            if zoom:
                x, y, zw, zh = zoom
                if x < 0 or y < 0 or x + zw > w or y + zh > h or zw <= 0 or zh <= 0:
                    raise UsageError(f"zoom box {zoom} outside the {w}x{h} image",
                                     "give --zoom X,Y,W,H inside the ground-truth frame")
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), zw, zh, fill=False, ec="red", lw=1))
                zax = axes[r * per_img + 1, c]
                zax.imshow(img[y:y + zh, x:x + zw], interpolation="nearest")
                zax.set_xticks([])
                zax.set_yticks([])
        if zoom:
            for c, img in enumerate(panels):
                if img is None:
                    axes[r * per_img + 1, c].axis("off")
                elif scores and c < len(panel_scores):  # scores go under the zoomed row
                    axes[r * per_img + 1, c].set_xlabel(
                        _score_text(panel_scores[c].get(iid, {}), order), fontsize=6)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def moments_figure(split: str, method: str, out: str | Path, results_dir: str | Path = "results",
                   ids: Sequence[str] | None = None, data_root: str | Path | None = None,
                   max_images: int = 2, dpi: int = 150) -> Path:
    """Single-to-video figure (CFMD-GAN Fig. 9): per blurred image, a row with the input and the
    n moments ``method`` restored at u_k = k/(n−1), and under it the n sharp frames in the same
    (split's) order. Reads the newest ``--protocol s2v --save-images`` run of ``method``;
    ``ids`` are window (blurred image) ids, default the first ``max_images`` fully saved ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..imageio import read_image
    from ..registry import splits
    from ..results import image_path, split_parts

    name, subset = split_parts(split)
    sp = splits.get(name)(data_root, subset, allow_partial=True)
    windows = {s.id: s for s in sp.samples() if len(s.frames) > 1}
    summaries = [s for s in load_summaries(results_dir, split=split)
                 if s.get("split") == sp.full_name and s.get("protocol") == "s2v"]
    d = _latest_run_dir(summaries, method)
    title = run_label(_latest_run(summaries, method)) if d is not None else method
    how = f"run `faceblur-bench run -m {method} --split {sp.full_name} --protocol s2v --save-images`"
    if d is None:
        raise UsageError(f"no single-to-video run of {method!r} on {sp.full_name} under {results_dir}", how)
    if not (d / "images").is_dir():
        raise UsageError(f"run {d} has no saved images", how + " (resumes, only writing images)")

    def moment_paths(s) -> list[Path]:
        n = len(s.frames)
        return [image_path(d, f"{s.id}@k{k}of{n}") for k in range(n)]

    if ids:
        unknown = [i for i in ids if i not in windows]
        if unknown:
            raise UsageError(f"unknown blurred-image id(s) on {sp.full_name}: {', '.join(unknown[:5])}",
                             "ids are the 'window' fields of the s2v rows (e.g. 009/blur007/000044)")
        chosen = list(ids)
    else:
        chosen = [i for i, s in windows.items() if all(p.is_file() for p in moment_paths(s))][:max_images]
        if not chosen:
            raise UsageError(f"no blurred image of {sp.full_name} has all its moments saved in {d / 'images'}", how)
    ncols = 1 + max(len(windows[i].frames) for i in chosen)
    fig, axes = plt.subplots(2 * len(chosen), ncols, figsize=(1.6 * ncols, 3.4 * len(chosen)), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    for r, wid in enumerate(chosen):
        s = windows[wid]
        n = len(s.frames)
        order = str(s.meta.get("frame_order", "?"))
        top, bottom = axes[2 * r], axes[2 * r + 1]
        top[0].axis("on")
        top[0].imshow(read_image(s.blurred))
        top[0].set_title("blurred", fontsize=8)
        top[0].set_ylabel(wid, fontsize=6)
        bottom[0].text(0.5, 0.5, f"sharp frames\n({order} order)", ha="center", va="center", fontsize=7,
                       transform=bottom[0].transAxes)
        for k, (p, f) in enumerate(zip(moment_paths(s), s.frames)):
            ax = top[k + 1]
            ax.axis("on")
            ax.set_title(f"{title} u={k / (n - 1):.2f}", fontsize=6)
            if p.is_file():
                ax.imshow(read_image(p))
            else:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes)
            bottom[k + 1].axis("on")
            bottom[k + 1].imshow(read_image(f))
            bottom[k + 1].set_title(f"frame {k}: {f.stem}", fontsize=6)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
