"""Uncertainty of a run's numbers and of the differences between runs.

The per-image values of a split are not independent: MSPL blurs each sharp face with 80 kernels,
Shen et al. with 8, the demo split each of its 9 faces with 8, and 300VW draws many frames from
one video. Resampling blurred images as if they were independent makes intervals far too narrow
and every difference "significant". Everything here therefore works on **units** — the groups
of images that share a source (:func:`clusters_of`):

- ``ground-truth image``: rows whose ``meta`` names the sharp face (``face`` on the demo split,
  ``subset`` + ``image`` on MSPL and Shen et al.);
- ``video``: rows whose ``meta`` names a ``video`` (300VW, both protocols);
- ``image``: any other layout (each image its own unit).

Statistics (all values float64; NaN and ±inf per-image values are left out, as the mean does):

- :func:`bootstrap_ci`: percentile **cluster bootstrap** of the mean over images — resample the
  units with replacement, recompute the mean over all images of the drawn units;
  :data:`N_RESAMPLES` resamples from ``numpy.random.default_rng(SEED)`` (same seed, same
  interval);
- :func:`compare_paired`: the mean paired difference over the images both runs scored, its
  paired cluster-bootstrap interval, and the two-sided p-value of a **sign-flip permutation test
  over units** (under "no difference" the sign of each unit's summed difference is
  exchangeable): exact over all ``2^units`` sign patterns up to :data:`EXACT_UNITS` units,
  otherwise :data:`N_PERMUTATIONS` random patterns with ``p = (1 + hits) / (1 + draws)``;
- :func:`holm`: Holm's step-down adjustment of several p-values (family-wise error rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: bootstrap resamples of every interval
N_RESAMPLES = 2000
#: seed of every resampling (intervals and random sign flips are reproducible)
SEED = 0
#: confidence level of the intervals
LEVEL = 0.95
#: significance level of the marks and of ``check --tolerance auto``
ALPHA = 0.05
#: up to this many units the sign-flip test enumerates every sign pattern (exact p-value)
EXACT_UNITS = 16
#: random sign patterns beyond :data:`EXACT_UNITS` units
N_PERMUTATIONS = 10000
#: what the tests and intervals are called in tables, JSON and docs
TEST_NAME = "paired sign-flip permutation test (two-sided)"
CI_NAME = "percentile cluster bootstrap"

_CHUNK = 256  # resamples per vectorised step (bounds memory at CHUNK x units)


@dataclass(frozen=True)
class Clusters:
    """The unit of each image: ``labels[i]`` in ``[0, n_units)`` for image ``i``."""

    unit: str
    labels: np.ndarray
    n_units: int


def unit_of(meta: dict[str, Any] | None, sample_id: str) -> tuple[str, str]:
    """``(unit name, unit key)`` of one image from its row ``meta`` (see the module docstring)."""
    meta = meta or {}
    if meta.get("video") is not None:
        return "video", str(meta["video"])
    if meta.get("face") is not None:
        return "ground-truth image", str(meta["face"])
    if meta.get("image") is not None:
        return "ground-truth image", f"{meta.get('subset')}/{meta['image']}"
    return "image", str(sample_id)


def clusters_of(rows: Sequence[dict[str, Any]]) -> Clusters:
    """Units of stored rows (``{"id", "meta"}``), in row order. A run whose rows name different
    kinds of unit (never the case for one layout) falls back to single images."""
    pairs = [unit_of(r.get("meta"), str(r["id"])) for r in rows]
    kinds = {k for k, _ in pairs}
    if len(kinds) > 1:
        pairs = [("image", str(r["id"])) for r in rows]
    index: dict[str, int] = {}
    labels = np.array([index.setdefault(key, len(index)) for _, key in pairs], dtype=np.int64)
    return Clusters(pairs[0][0] if pairs else "image", labels, len(index))


def _cluster_sums(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit sums and counts of the finite ``values`` (units left with no value dropped)."""
    v = np.asarray(values, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64)
    if v.shape != lab.shape:
        raise ValueError(f"values {v.shape} and unit labels {lab.shape} differ in shape")
    keep = np.isfinite(v)
    v, lab = v[keep], lab[keep]
    _, lab = np.unique(lab, return_inverse=True)
    sums = np.bincount(lab, weights=v) if v.size else np.zeros(0)
    counts = np.bincount(lab).astype(np.float64) if v.size else np.zeros(0)
    return sums, counts


def _resampled_means(sums: np.ndarray, counts: np.ndarray, n_resamples: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Mean over images of ``n_resamples`` cluster resamples (units drawn with replacement)."""
    k = len(sums)
    out = np.empty(n_resamples)
    for s in range(0, n_resamples, _CHUNK):
        b = min(_CHUNK, n_resamples - s)
        idx = rng.integers(0, k, size=(b, k))
        out[s:s + b] = sums[idx].sum(1) / counts[idx].sum(1)
    return out


def bootstrap_ci(values: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED,
                 level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile cluster-bootstrap interval ``(lo, hi)`` of the mean over images.

    ``values``: per-image values ``(N,)`` (NaN/±inf left out); ``labels``: the unit of each image
    ``(N,)``. None with fewer than two units (no spread to resample). Deterministic in ``seed``.
    """
    sums, counts = _cluster_sums(np.asarray(values), np.asarray(labels))
    if len(sums) < 2:
        return None
    means = _resampled_means(sums, counts, n_resamples, np.random.default_rng(seed))
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


def sign_flip_p(values: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray,
                n_permutations: int = N_PERMUTATIONS, seed: int = SEED) -> float:
    """Two-sided p-value of "mean paired difference = 0" by flipping the sign of each unit's
    summed difference (``values`` are per-image differences). Exact up to :data:`EXACT_UNITS`
    units; 1.0 when every difference is 0 or there are no units."""
    sums, counts = _cluster_sums(np.asarray(values), np.asarray(labels))
    k = len(sums)
    if k == 0:
        return 1.0
    total = counts.sum()
    observed = abs(sums.sum()) / total
    # equal to the observed statistic up to rounding counts as "as extreme" (identical runs: p = 1)
    tol = 1e-12 * max(1.0, float(np.abs(sums).sum()) / total)
    if k <= EXACT_UNITS:
        signs = 1 - 2 * ((np.arange(2 ** k)[:, None] >> np.arange(k)[None, :]) & 1)
        stats = np.abs(signs @ sums) / total
        return float(np.mean(stats >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    for s in range(0, n_permutations, _CHUNK):
        b = min(_CHUNK, n_permutations - s)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(b, k))
        hits += int(np.sum(np.abs(signs @ sums) / total >= observed - tol))
    return float((1 + hits) / (1 + n_permutations))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given): reject hypothesis i at level α when its
    adjusted value is below α; controls the family-wise error rate over the whole list."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p[i])))
        adjusted[i] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class Interval:
    """The interval of one run's mean, as stored in a summary's metric entry."""

    ci95: tuple[float, float] | None
    n_units: int
    unit: str
    resamples: int = N_RESAMPLES
    seed: int = SEED

    def describe(self) -> str:
        """One clause for a protocol line: method, unit, resamples, seed."""
        return (f"95% CI: {CI_NAME} over {self.n_units} {self.unit}s, {self.resamples} resamples, "
                f"seed {self.seed}")


def run_interval(rows: Sequence[dict[str, Any]], metric: str) -> Interval:
    """Interval of ``metric``'s mean over the ok ``rows`` of one run (the rows a summary's mean
    is taken over)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    values = np.array([_value(r, metric) for r in ok], dtype=np.float64)
    fin = np.isfinite(values)
    cl = clusters_of([r for r, f in zip(ok, fin) if f])
    ci = bootstrap_ci(values[fin], cl.labels) if fin.any() else None
    return Interval(ci, cl.n_units, cl.unit)


def add_interval(entry: dict[str, Any], ok_rows: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """``entry`` (a summary's metric entry) with ``ci95``, ``n_units`` and ``extra["ci"]`` (unit,
    resamples, seed) of the paired metric's mean over ``ok_rows``; the one place both the run
    summary and the tables of older runs get their interval from."""
    iv = run_interval(ok_rows, metric)
    entry["ci95"] = None if iv.ci95 is None else list(iv.ci95)
    entry["n_units"] = iv.n_units
    entry["extra"] = {**(entry.get("extra") or {}),
                      "ci": {"unit": iv.unit, "resamples": iv.resamples, "seed": iv.seed}}
    return entry


def _value(row: dict[str, Any], metric: str) -> float:
    v = (row.get("metrics") or {}).get(metric)
    return math.nan if v is None else float(v)


@dataclass(frozen=True)
class PairedComparison:
    """Run A minus run B on one metric over the images both scored (see :func:`compare_paired`)."""

    metric: str
    difference: float
    ci95: tuple[float, float] | None
    p_value: float
    n_images: int
    n_units: int
    unit: str
    #: images only one run scored, or with a non-finite value in either (left out)
    n_left_out: int
    test: str = TEST_NAME
    resamples: int = N_RESAMPLES
    seed: int = SEED

    @property
    def sign_patterns(self) -> str:
        """How the p-value was obtained: every sign pattern (exact) or a random sample."""
        if self.n_units <= EXACT_UNITS:
            return f"exact over all 2^{self.n_units} sign patterns"
        return f"{N_PERMUTATIONS} random sign patterns, seed {self.seed}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95) if self.ci95 is not None else None
        d["sign_patterns"] = self.sign_patterns
        return d


def compare_paired(rows_a: Iterable[dict[str, Any]], rows_b: Iterable[dict[str, Any]],
                   metric: str) -> PairedComparison:
    """Mean of ``A - B`` per image over the ids both runs scored (status ok, finite values), its
    paired cluster-bootstrap interval and the sign-flip p-value (units from run A's rows)."""
    a = {str(r["id"]): r for r in rows_a if r.get("status") == "ok"}
    b = {str(r["id"]): r for r in rows_b if r.get("status") == "ok"}
    common = [i for i in a if i in b]
    diffs = np.array([_value(a[i], metric) - _value(b[i], metric) for i in common])
    fin = np.isfinite(diffs) if len(common) else np.zeros(0, bool)
    kept = [a[i] for i, f in zip(common, fin) if f]
    d = diffs[fin] if len(common) else np.zeros(0)
    cl = clusters_of(kept)
    left_out = len(set(a) | set(b)) - len(kept)
    if not kept:
        return PairedComparison(metric, math.nan, None, math.nan, 0, 0, cl.unit, left_out)
    return PairedComparison(metric, float(d.mean()), bootstrap_ci(d, cl.labels),
                            sign_flip_p(d, cl.labels), len(kept), cl.n_units, cl.unit, left_out)


__all__ = [
    "ALPHA", "CI_NAME", "EXACT_UNITS", "LEVEL", "N_PERMUTATIONS", "N_RESAMPLES", "SEED", "TEST_NAME",
    "Clusters", "Interval", "PairedComparison", "add_interval", "bootstrap_ci", "clusters_of", "compare_paired",
    "holm", "run_interval", "sign_flip_p", "unit_of",
]
