"""``faceblur-bench compare``: is method A better than method B on a split, or is it noise?

Picks one stored run per method (the run :func:`~faceblur_bench.report.store.latest_runs` would
show in a table; a run directory may be given instead of a method name), pairs their per-image
rows by sample id and hands them to :func:`faceblur_bench.stats.compare_paired`: the mean
difference A − B over the images both scored, its paired cluster-bootstrap 95% interval and a
sign-flip permutation p-value over the split's independent units.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import stats
from ..errors import UnknownNameError, UsageError
from ..results import RunSummary
from .render import format_value
from .store import as_run, latest_runs, load_run, load_summaries, read_rows


@dataclass
class Comparison:
    """A compared pair of runs and the statistics of their difference."""

    a: RunSummary
    b: RunSummary
    label_a: str
    label_b: str
    result: stats.PairedComparison
    higher_is_better: bool

    def verdict(self) -> str:
        """One sentence: which is better, significantly or not (α = :data:`stats.ALPHA`)."""
        r = self.result
        if r.n_images == 0:
            return "no image was scored by both runs: nothing to compare"
        if not r.p_value < stats.ALPHA:
            return f"not significantly different (p ≥ {stats.ALPHA:g})"
        better = self.label_a if (r.difference > 0) == self.higher_is_better else self.label_b
        return f"{better} is significantly better (p < {stats.ALPHA:g})"

    def to_json(self) -> dict[str, Any]:
        return {"a": self.label_a, "b": self.label_b, "run_a": self.a.run_dir, "run_b": self.b.run_dir,
                "split": self.a.split, "higher_is_better": self.higher_is_better,
                **self.result.to_json(), "verdict": self.verdict()}

    def render(self) -> str:
        r = self.result
        d = 6
        ci = ("–" if r.ci95 is None else
              f"[{format_value(r.ci95[0], d)}, {format_value(r.ci95[1], d)}]")
        diff = "–" if math.isnan(r.difference) else format_value(r.difference, d)
        p = "–" if math.isnan(r.p_value) else f"{r.p_value:.4g}"
        arrow = "higher" if self.higher_is_better else "lower"
        lines = [
            f"{r.metric} ({arrow} is better) on {self.a.split}: {self.label_a} − {self.label_b}",
            f"  mean paired difference: {diff}",
            f"  95% CI: {ci} ({stats.CI_NAME} over {r.unit}s, {r.resamples} resamples, seed {r.seed})",
            f"  p-value: {p} ({r.test}, {r.sign_patterns})",
            f"  images scored by both: {r.n_images} in {r.n_units} {r.unit}s"
            + (f"; {r.n_left_out} left out (scored by one run only or not finite)" if r.n_left_out else ""),
            f"  verdict: {self.verdict()}",
        ]
        return "\n".join(lines) + "\n"


def pick_run(results: Path, split: str, name: str) -> RunSummary:
    """The run of method ``name`` on ``split`` under ``results`` (or the run directory ``name``)."""
    if (Path(name) / "summary.json").is_file():
        return load_run(name)
    runs = [as_run(s) for s in latest_runs(load_summaries(results, split=split))]
    mine = [r for r in runs if r.method == name and r.split == split]
    if not mine:
        known = sorted({r.method for r in runs if r.split == split})
        if not known:
            raise UsageError(f"no runs of split {split!r} under {results}",
                             f"run `faceblur-bench run --split {split}` first, or pass --results DIR")
        raise UnknownNameError(f"method on {split}", name, known,
                               difflib.get_close_matches(name, known, n=3, cutoff=0.5))
    if len(mine) > 1:
        dirs = ", ".join(str(r.run_dir) for r in mine)
        raise UsageError(f"{len(mine)} configurations of {name!r} are stored for {split}: {dirs}",
                         "pass the run directory of the one to compare instead of the method name")
    return mine[0]


def compare_runs(results: str | Path, split: str, metric: str, a: str, b: str) -> Comparison:
    """Paired comparison of ``metric`` between methods (or run directories) ``a`` and ``b``.

    Raises :class:`UsageError` (exit 2) for unknown names, a metric either run lacks or that has
    no per-image values (set metrics: FID, KID, verification), and runs on different data.
    """
    results = Path(results)
    ra, rb = pick_run(results, split, a), pick_run(results, split, b)
    for run in (ra, rb):
        entry = run.metrics.get(metric)
        if entry is None:
            known = sorted(run.metrics)
            raise UnknownNameError(f"metric of {run.method}'s run", metric, known,
                                   difflib.get_close_matches(metric, known, n=3, cutoff=0.5))
        if entry.kind == "set":
            raise UsageError(f"{metric} is a set metric (one value per set, no per-image values): "
                             "it has no paired comparison",
                             "compare a paired metric (psnr, ssim, lpips-…), or judge set metrics "
                             "by their values (KID rather than FID on small sets)")
        if entry.status != "ok":
            raise UsageError(f"{metric} has no value in {run.method}'s run ({entry.status}: {entry.reason})",
                             "re-run that method with the metric available")
    fa, fb = ra.split_fingerprint, rb.split_fingerprint
    if fa and fb and fa != fb:
        raise UsageError(f"{a} and {b} ran on different data (split fingerprint {fa[:12]} vs {fb[:12]})",
                         "compare runs of the same split files")
    res = stats.compare_paired(read_rows(ra.run_dir) if ra.run_dir else [],
                               read_rows(rb.run_dir) if rb.run_dir else [], metric)
    return Comparison(ra, rb, a if ra.method == a else f"{ra.method} ({a})",
                      b if rb.method == b else f"{rb.method} ({b})", res,
                      ra.metrics[metric].higher_is_better)


__all__ = ["Comparison", "compare_runs", "pick_run"]
