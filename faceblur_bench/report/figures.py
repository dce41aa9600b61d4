"""Qualitative figures: a PNG grid like the papers' comparison figures.

Rows are images; columns are the blurred input, each method's restored image (saved by runs with
``--save-images`` under ``<run_dir>/images/<id>.png``) and the ground truth. Under each restored
panel the image's PSNR / SSIM as stored in its run's ``rows.jsonl`` (the run's protocol, so
the figure agrees with the tables); under the input the same values of a stored ``blurred`` run
of the split, when there is one. The sample id heads each row (horizontal, wrapped). An optional
zoom box ``(x, y, w, h)`` (in ground-truth pixels) is outlined on every panel and shown enlarged
in an extra row under each image. Inputs smaller than the ground truth (joint SR) are shown
enlarged with nearest-neighbour sampling so pixels stay visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from .store import load_summaries, read_rows

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


def _latest_run_dir(summaries: list[dict[str, Any]], method: str) -> Path | None:
    runs = [s for s in summaries if s.get("method") == method]
    if not runs:
        return None
    runs.sort(key=lambda s: str((s.get("provenance") or {}).get("date", "")))
    d = runs[-1].get("_run_dir") or runs[-1].get("run_dir")
    return Path(d) if d else None


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    ys = (np.arange(h) * img.shape[0] / h).astype(int)
    xs = (np.arange(w) * img.shape[1] / w).astype(int)
    return img[ys][:, xs]


def qualitative_figure(split: str, methods: Sequence[str], out: str | Path,
                       results_dir: str | Path = "results", ids: Sequence[str] | None = None,
                       data_root: str | Path | None = None, zoom: tuple[int, int, int, int] | None = None,
                       max_images: int = 4, dpi: int = 150) -> Path:
    """Write the comparison grid for ``methods`` on ``split`` (``name`` or ``name/subset``) to
    ``out`` (PNG) and return its path.

    ``ids`` default: the first ``max_images`` sample ids for which every method saved an image.
    Raises :class:`UsageError` when a method has no run / no saved images, or an id is unknown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..imageio import read_image
    from ..registry import splits

    name, _, subset = split.partition("/")
    # a partial copy of the split is enough to show the chosen images
    sp = splits.get(name)(data_root, subset or None, allow_partial=True)
    samples = {s.id: s for s in sp.samples()}
    summaries = load_summaries(results_dir, split=split)
    img_dirs: dict[str, Path] = {}
    captions: dict[str, dict[str, dict[str, float]]] = {}
    for m in methods:
        d = _latest_run_dir([s for s in summaries if s.get("split") == sp.full_name], m)
        if d is None:
            raise UsageError(f"no run of {m!r} on {sp.full_name} under {results_dir}",
                             f"run `faceblur-bench run -m {m} --split {sp.full_name} --save-images`")
        if not (d / "images").is_dir():
            raise UsageError(f"run {d} has no saved images",
                             f"re-run `faceblur-bench run -m {m} --split {sp.full_name} "
                             "--save-images` (resumes, only writing images)")
        img_dirs[m] = d / "images"
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
        cand = [i for i in samples if all((img_dirs[m] / f"{i}.png").is_file() for m in methods)]
        step = max(1, len(cand) // max_images)  # spread over the split, not one face's kernels
        chosen = cand[::step][:max_images]
        if not chosen:
            raise UsageError("no sample has a saved image for every method",
                             "pass --ids of images that were saved, or re-run with --save-images")
    has_gt = any(samples[i].sharp is not None for i in chosen)
    cols = ["Input (blurred)"] + list(methods) + (["Ground truth"] if has_gt else [])
    per_img = 2 if zoom else 1
    nrows = len(chosen) * per_img
    fig, axes = plt.subplots(nrows, len(cols), figsize=(2.0 * len(cols) + 1.0, 2.3 * nrows),
                             squeeze=False)
    for r, iid in enumerate(chosen):
        s = samples[iid]
        panels: list[np.ndarray | None] = [read_image(s.blurred)]
        for m in methods:
            p = img_dirs[m] / f"{iid}.png"
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
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
