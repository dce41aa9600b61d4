"""Plots from per-image rows (matplotlib, Agg backend).

- :func:`metric_vs_kernel_size`: mean metric per blur-kernel size (``meta.kernel_size``), one
  line per method — the curve form of Shen et al. Table 9;
- :func:`metric_distribution`: per-image value distribution per method (box plot with the mean
  marked; a legend says which marker is the mean, the median and an outlier), to see what a
  mean hides.

Axes name the metric with its unit and direction ("PSNR (dB), higher is better").

Only rows with status "ok" and a finite value are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from . import names
from .store import read_rows

#: unit of a metric family, by harness metric name prefix (axis labels)
UNITS = {"psnr": "dB", "runtime": "s"}


def axis_label(metric: str, summaries: list[dict[str, Any]] | None = None) -> str:
    """Axis label of a harness metric: its display label, unit and direction, e.g.
    "PSNR (dB), higher is better" (label from the runs' summaries when they carry one)."""
    entry = next(((s.get("metrics") or {}).get(metric) for s in summaries or []
                  if (s.get("metrics") or {}).get(metric)), None) or {}
    disp = names.display(metric)
    label = str(entry.get("label") or disp.label or metric)
    unit = next((u for prefix, u in UNITS.items() if metric.startswith(prefix)), None)
    hib = entry.get("higher_is_better", disp.higher_is_better)
    out = label + (f" ({unit})" if unit else "")
    if hib is not None:
        out += ", higher is better" if hib else ", lower is better"
    return out


def _label(s: dict[str, Any]) -> str:
    return str(s.get("method"))


def _values(s: dict[str, Any], metric: str) -> list[tuple[dict[str, Any], float]]:
    d = s.get("_run_dir") or s.get("run_dir")
    out = []
    for r in read_rows(d) if d else []:
        if r.get("status", "ok") != "ok":
            continue
        v = (r.get("metrics") or {}).get(metric)
        if v is not None and np.isfinite(float(v)):
            out.append((r, float(v)))
    return out


def kernel_size_series(summaries: list[dict[str, Any]], metric: str
                       ) -> dict[str, dict[int, float]]:
    """``{method: {kernel_size: mean metric}}`` from the runs' rows."""
    out: dict[str, dict[int, float]] = {}
    for s in summaries:
        groups: dict[int, list[float]] = {}
        for r, v in _values(s, metric):
            k = (r.get("meta") or {}).get("kernel_size")
            if k is None:
                continue
            groups.setdefault(int(k), []).append(v)
        if groups:
            out[_label(s)] = {k: float(np.mean(vs)) for k, vs in sorted(groups.items())}
    return out


def _save(fig: Any, out: str | Path) -> Path:
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


def metric_vs_kernel_size(summaries: list[dict[str, Any]], metric: str, out: str | Path,
                          title: str = "") -> Path:
    """Line plot of the mean ``metric`` per kernel size, one line per run; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = kernel_size_series(summaries, metric)
    if not series:
        raise UsageError(f"no per-image {metric!r} values with meta.kernel_size in these runs",
                         "plot a split whose samples carry kernel sizes (MSPL, Shen, demo) and a "
                         "metric the runs computed")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for label, pts in series.items():
        ks = sorted(pts)
        ax.plot(ks, [pts[k] for k in ks], marker="o", label=label)
    ax.set_xlabel("blur kernel size (pixels)")
    ax.set_ylabel(axis_label(metric, summaries))
    ax.set_xticks(sorted({k for pts in series.values() for k in pts}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, out)


def metric_distribution(summaries: list[dict[str, Any]], metric: str, out: str | Path,
                        title: str = "") -> Path:
    """Box plot of per-image ``metric`` values per run (mean as a marker); returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [(_label(s), [v for _, v in _values(s, metric)]) for s in summaries]
    data = [(lab, vs) for lab, vs in data if vs]
    if not data:
        raise UsageError(f"no per-image {metric!r} values in these runs",
                         "choose a metric the runs computed (see summary.json 'metrics')")
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(data) + 2), 3.5))
    from matplotlib.lines import Line2D

    bp = ax.boxplot([vs for _, vs in data], showmeans=True)
    ax.set_xticks(range(1, len(data) + 1))
    ax.set_xticklabels([lab for lab, _ in data], rotation=20, fontsize=8)
    ax.set_ylabel(axis_label(metric, summaries))
    mean_m, med = bp["means"][0], bp["medians"][0]
    ax.legend(handles=[
        Line2D([], [], linestyle="none", marker=mean_m.get_marker(), color=mean_m.get_markerfacecolor(),
               label="mean"),
        Line2D([], [], color=med.get_color(), label="median"),
        Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="black",
               label="outlier (beyond 1.5 IQR)")], fontsize=7, loc="best")
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, out)
