"""CI gate: compare a current result set with a baseline, image by image and in aggregate.

``baseline`` / ``current`` are each a run directory (``runs/<split>/<method>/<run_key>``) or a
results directory. Runs are paired by split and :func:`faceblur_bench.results.config_key` (method, checkpoint,
options, protocol) only; two run directories given directly must have the same key (else exit 2
naming both). A ``current`` that is the baseline, lies inside it, or holds no runs besides the
baseline's (``--current X --baseline X/ci-baseline``) is refused (exit 2). Runs are read with
:func:`faceblur_bench.report.store.load_run` (values follow from the rows); in a results
directory a corrupt summary is skipped with a warning naming the file.

A metric *regresses* when it moves in its bad direction (``higher_is_better`` from the summary)
by more than its tolerance:

- ``abs``: ``worse > tol``; ``rel``: ``worse > tol * |baseline|``; a tolerance naming no
  metric of the compared runs is refused (exit 2, "did you mean");
- the default tolerance is :data:`DEFAULT_TOLERANCE` (relative 1e-3), overridden per metric with
  ``metric=0.05`` (absolute), ``metric=0.5%`` (relative, percent), ``metric=rel:0.001`` or
  ``metric=abs:0.01``, and for every metric with ``*=...``;
- a value that becomes NaN / null / unavailable / error, a metric scored on fewer images than in
  the baseline (its mean over fewer images is no improvement), an image that was scored in the baseline and
  failed or is missing in the current run, a current run that is limited (``--limit``), partial
  or unfinished (unless the baseline run is limited/partial in the same way: then like for like)
  or a complete current against an incomplete baseline (:mod:`~faceblur_bench.report.coverage`),
  and a baseline run with no current counterpart are regressions too; better values beyond
  tolerance are listed as improvements (exit 0).

Per-image comparisons use the same tolerances on the per-image values of ``rows.jsonl``.

``--tolerance auto`` (``auto=True``) adds a statistical gate on top of the fixed tolerances: for
every paired metric of every compared run, the paired difference current − baseline over the
images both scored is tested with :func:`faceblur_bench.stats.compare_paired` (sign-flip test
over the split's units); the p-values of all these tests are Holm-adjusted together, and a
metric whose difference is significant (adjusted p < 0.05) in its bad direction is a regression,
even when it is within the fixed tolerance.
Exit codes: 0 within tolerance, 1 regression, 2 unusable input (raised as :class:`UsageError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..results import RunSummary
from .coverage import coverage
from .render import md_escape
from .store import ResultsInputError, load_run, load_runs, read_rows


@dataclass(frozen=True)
class Tolerance:
    kind: str  # "abs" | "rel"
    value: float

    def limit(self, base: float) -> float:
        return self.value if self.kind == "abs" else self.value * abs(base)

    def __str__(self) -> str:
        return f"{self.value:g}" if self.kind == "abs" else f"{self.value * 100:g}%"


DEFAULT_TOLERANCE = Tolerance("rel", 1e-3)


def parse_tolerances(specs: list[str] | None) -> dict[str, Tolerance]:
    """``["psnr=0.05", "ssim=0.5%", "*=rel:1e-4"]`` -> ``{name: Tolerance}``."""
    out: dict[str, Tolerance] = {}
    for spec in specs or []:
        name, sep, val = spec.partition("=")
        name, val = name.strip(), val.strip()
        if not sep or not name or not val:
            raise UsageError(f"bad --tolerance {spec!r}",
                             "use METRIC=ABS, METRIC=PCT% or METRIC=rel:R / abs:A (METRIC may be *)")
        kind = "abs"
        if val.endswith("%"):
            kind, val = "rel", val[:-1]
            scale = 0.01
        else:
            scale = 1.0
            if ":" in val:
                kind, val = val.split(":", 1)
                kind = kind.strip().lower()
        if kind not in ("abs", "rel"):
            raise UsageError(f"bad --tolerance {spec!r}: kind must be abs or rel", None)
        try:
            num = float(val) * scale
        except ValueError:
            raise UsageError(f"bad --tolerance {spec!r}: {val!r} is not a number",
                             "e.g. --tolerance psnr=0.05 --tolerance ssim=0.5%") from None
        if not math.isfinite(num) or num < 0:
            raise UsageError(f"bad --tolerance {spec!r}: must be a finite number >= 0", None)
        out[name] = Tolerance(kind, num)
    return out


@dataclass
class Change:
    """One compared quantity: aggregate (``image`` None) or per image."""

    split: str
    method: str
    metric: str
    baseline: float | None
    current: float | None
    tolerance: str
    verdict: str  # "regression" | "improvement" | "ok"
    image: str | None = None
    reason: str = ""

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        if not (math.isfinite(self.baseline) and math.isfinite(self.current)):
            return None
        return self.current - self.baseline


@dataclass
class CheckResult:
    changes: list[Change] = field(default_factory=list)
    compared_runs: int = 0
    compared_images: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "improvement"]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def render(self, max_images: int = 20) -> str:
        """Markdown report: verdict line, aggregate table, the ``max_images`` (>= 0) worst
        per-image moves."""
        if max_images < 0:
            raise UsageError(f"--max-images must be >= 0, got {max_images}", "e.g. --max-images 20")
        lines = []
        reg, imp = self.regressions, self.improvements
        verdict = "REGRESSION" if reg else "OK"
        lines.append(f"check: {verdict} — {self.compared_runs} run(s), {self.compared_images} "
                     f"image(s) compared; {len(reg)} regression(s), {len(imp)} improvement(s)")
        agg = [c for c in self.changes if c.image is None and c.verdict != "ok"]
        if agg:
            lines += ["", "Aggregate:", "",
                      "| split | method | metric | baseline | current | Δ | tolerance | verdict |",
                      "|---|---|---|---:|---:|---:|---:|---|"]
            for c in agg:
                lines.append(_row(c))
        img = [c for c in self.changes if c.image is not None and c.verdict == "regression"]
        if img:
            img.sort(key=lambda c: -abs(c.delta) if c.delta is not None else -math.inf)
            lines += ["", f"Per image (regressions, worst first; {len(img)} in all):", "",
                      "| split | method | image | metric | baseline | current | Δ | tolerance | reason |",
                      "|---|---|---|---|---:|---:|---:|---:|---|"]
            for c in img[:max_images]:
                lines.append(f"| {md_escape(c.split)} | {md_escape(c.method)} | {md_escape(c.image)} "
                             f"| {md_escape(c.metric)} | {_fmt(c.baseline)} | {_fmt(c.current)} "
                             f"| {_fmt(c.delta, signed=True)} | {c.tolerance} | {md_escape(c.reason)} |")
            if len(img) > max_images:
                lines.append(f"| … {len(img) - max_images} more | | | | | | | | |")
        lines += [f"note: {md_escape(n)}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "compared_runs": self.compared_runs,
                "compared_images": self.compared_images, "notes": self.notes,
                "changes": [dict(c.__dict__, delta=c.delta) for c in self.changes
                            if c.verdict != "ok"]}


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "–"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:+.6g}" if signed else f"{v:.6g}"


def _row(c: Change) -> str:
    verdict = c.verdict + (f" ({c.reason})" if c.reason else "")
    return (f"| {md_escape(c.split)} | {md_escape(c.method)} | {md_escape(c.metric)} | {_fmt(c.baseline)} "
            f"| {_fmt(c.current)} | {_fmt(c.delta, signed=True)} | {c.tolerance} | {md_escape(verdict)} |")


def _collect(path: Path) -> tuple[bool, list[RunSummary]]:
    """(``path`` is one run directory, its runs). A run directory given directly must be
    readable; in a results directory a corrupt summary is skipped with a warning."""
    if not path.exists():
        raise ResultsInputError(f"{path} does not exist",
                                "pass a run directory or a results directory (holding runs/)")
    if (path / "summary.json").is_file():
        return True, [load_run(path)]
    runs = load_runs(path)
    if not runs:
        raise ResultsInputError(f"no runs (summary.json) under {path}",
                                "pass a run directory or a results directory written by "
                                "`faceblur-bench run`")
    return False, runs


def _key(s: RunSummary) -> tuple[str, ...]:
    return (s.split, *s.key())


def _describe(s: RunSummary) -> str:
    opts = f" options {s.key()[2]}" if s.method_options else ""
    ck = f" checkpoint {s.checkpoint}" if s.checkpoint else ""
    proto = f" protocol {s.protocol}" if s.protocol != "s2s" else ""
    return f"{s.method} on {s.split}{opts}{ck}{proto}"


def _verdict(base: float | None, cur: float | None, hib: bool, tol: Tolerance) -> tuple[str, str]:
    b = math.nan if base is None else float(base)
    c = math.nan if cur is None else float(cur)
    if math.isnan(b) and math.isnan(c):
        return "ok", ""
    if math.isnan(c):
        return "regression", "became NaN / missing"
    if math.isnan(b):
        return "improvement", "baseline had no value"
    if b == c:
        return "ok", ""
    if math.isinf(b) or math.isinf(c):
        better = (c > b) if hib else (c < b)
        return ("improvement", "") if better else ("regression", "infinite change")
    worse = (b - c) if hib else (c - b)
    lim = tol.limit(b)
    if worse > lim:
        return "regression", ""
    if -worse > lim:
        return "improvement", ""
    return "ok", ""


def _incomplete(s: RunSummary) -> str:
    """Why a run does not cover its whole split ("" when it does): the one rule of
    :mod:`faceblur_bench.report.coverage` (limited, partial, unfinished), and a summary that did
    not match its rows."""
    cov = coverage(s)
    why = "" if cov.complete or cov.state == "subset" else f"{cov.state} ({cov.label})"
    if not cov.verified:
        why = (why + "; " if why else "") + "unverified (summary.json does not match its rows, or they are damaged)"
    return why


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _own_runs(baseline: Path, current: Path, c_runs: list[RunSummary]) -> list[RunSummary]:
    """The runs of ``current`` that are not the baseline's own: refuses (exit 2) a current that
    is the baseline or inside it, and one whose only runs lie inside the baseline (``--current
    X`` with ``--baseline X/ci-baseline`` would compare the baseline with itself)."""
    b, c = baseline.resolve(), current.resolve()
    if _inside(c, b):
        raise ResultsInputError(
            f"--current {current} is {'the baseline' if c == b else 'inside the baseline'} {baseline}",
            "pass the results of the run to check (e.g. --current results/) and the stored "
            "baseline (e.g. --baseline results/ci-baseline)")
    own = [r for r in c_runs if not (r.run_dir and _inside(Path(r.run_dir).resolve(), b))]
    if not own:
        raise ResultsInputError(
            f"--current {current} holds no runs of its own: every run found there is the "
            f"baseline's ({baseline})",
            "run the methods into a results directory first (`faceblur-bench run --out DIR`), "
            "then pass that directory as --current")
    return own


def check_tolerance_names(tolerances: dict[str, Tolerance], runs: list[RunSummary]) -> None:
    """Every ``--tolerance`` name is a metric of the compared runs (or ``*``); else an
    :class:`~faceblur_bench.errors.UnknownNameError` (exit 2) with "did you mean" — a typo would
    otherwise leave the metric at the default tolerance without a word."""
    import difflib

    from ..errors import UnknownNameError

    known = sorted({m for r in runs for m in r.metrics})
    for name in tolerances:
        if name != "*" and name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) or \
                difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
            raise UnknownNameError("--tolerance metric", name, known, close)


def compare(baseline: str | Path, current: str | Path,
            tolerances: dict[str, Tolerance] | None = None, per_image: bool = True,
            auto: bool = False) -> CheckResult:
    """Compare two result sets (see module docstring). Raises UsageError on unusable input.
    ``auto``: also flag significant paired changes in the bad direction (``--tolerance auto``)."""
    tolerances = dict(tolerances or {})
    b_single, b_runs = _collect(Path(baseline))
    c_single, c_runs = _collect(Path(current))
    c_runs = _own_runs(Path(baseline), Path(current), c_runs)
    check_tolerance_names(tolerances, b_runs + c_runs)
    default = tolerances.pop("*", DEFAULT_TOLERANCE)
    res = CheckResult()
    pairs: list[tuple[RunSummary, RunSummary | None]] = []
    if b_single and c_single:
        b, c = b_runs[0], c_runs[0]
        if _key(b) != _key(c):
            raise ResultsInputError(
                f"the two run directories are not the same configuration: baseline is "
                f"{_describe(b)}, current is {_describe(c)}",
                "check compares runs of the same method, options, checkpoint and split; pass "
                "the current run of the baseline's method (or two results directories)")
        pairs = [(b, c)]
    else:
        cur_by_key: dict[tuple[str, ...], RunSummary] = {}
        for s in c_runs:
            cur_by_key[_key(s)] = s  # later (sorted) runs win
        for b in b_runs:
            pairs.append((b, cur_by_key.get(_key(b))))
        extra = set(cur_by_key) - {_key(b) for b in b_runs}
        for k in sorted(extra):
            res.notes.append(f"run only in current (not gated): {k[1]} on {k[0]}")
    if all(c is None for _, c in pairs):
        raise ResultsInputError(
            "no run of the baseline has a counterpart in the current results",
            "runs are paired by split, method, options, checkpoint and protocol; run the same "
            "methods on the same split, or pass two run directories")
    for b, c in pairs:
        if c is None:
            res.changes.append(Change(b.split, b.method, "(run)", None, None, "–", "regression",
                                      reason="no current run for this baseline run"))
            continue
        fb, fc = b.split_fingerprint, c.split_fingerprint
        if fb and fc and fb != fc:
            raise ResultsInputError(
                f"{b.method} on {b.split}: baseline and current ran on different data "
                f"(split fingerprint {fb[:12]} vs {fc[:12]})",
                "compare runs of the same split files; regenerate the baseline if the data "
                "changed on purpose")
        res.compared_runs += 1
        _compare_run(res, b, c, tolerances, default, per_image)
    if auto:
        _significance_gate(res, [(b, c) for b, c in pairs if c is not None])
    return res


def _significance_gate(res: CheckResult, pairs: list[tuple[RunSummary, RunSummary]]) -> None:
    """``--tolerance auto``: paired tests of every paired metric, Holm over all of them."""
    from .. import stats

    tests = []
    for b, c in pairs:
        if not (b.run_dir and c.run_dir):
            continue
        brows, crows = read_rows(b.run_dir), read_rows(c.run_dir)
        for name, be in b.metrics.items():
            ce = c.metrics.get(name)
            if be.kind != "paired" or be.status != "ok" or ce is None or ce.status != "ok":
                continue
            tests.append((b, c, name, be.higher_is_better, stats.compare_paired(crows, brows, name)))
    if not tests:
        res.notes.append("--tolerance auto: no paired metric with per-image rows to test")
        return
    adjusted = stats.holm([t[4].p_value if t[4].n_images else 1.0 for t in tests])
    flagged = {(ch.split, ch.method, ch.metric) for ch in res.regressions if ch.image is None}
    n_sig = 0
    for (b, c, name, hib, cmp), adj in zip(tests, adjusted):
        worse = cmp.difference < 0 if hib else cmp.difference > 0
        if not (adj < stats.ALPHA and worse):
            continue
        n_sig += 1
        if (b.split, b.method, name) in flagged:
            continue
        ci = "" if cmp.ci95 is None else f", 95% CI [{cmp.ci95[0]:+.4g}, {cmp.ci95[1]:+.4g}]"
        res.changes.append(Change(
            b.split, b.method, name, b.metrics[name].value, c.metrics[name].value, "auto",
            "regression", reason=(f"significantly worse: paired Δ {cmp.difference:+.4g}{ci}, "
                                  f"p = {cmp.p_value:.3g} (Holm {adj:.3g}) over {cmp.n_units} "
                                  f"{cmp.unit}s")))
    res.notes.append(f"--tolerance auto: {len(tests)} paired test(s) ({stats.TEST_NAME}, Holm over "
                     f"all), {n_sig} significant in the bad direction at α = {stats.ALPHA:g}")


def _compare_run(res: CheckResult, b: RunSummary, c: RunSummary,
                 tols: dict[str, Tolerance], default: Tolerance, per_image: bool) -> None:
    split, method = b.split, b.method
    hib: dict[str, bool] = {}
    for name, be in b.metrics.items():
        tol = tols.get(name, default)
        ce = c.metrics.get(name)
        hib[name] = be.higher_is_better
        if be.status != "ok":
            continue  # nothing to gate: the baseline had no value
        if ce is None or ce.status != "ok":
            why = "metric missing" if ce is None else f"status {ce.status}: {ce.reason}"
            res.changes.append(Change(split, method, name, be.value, None, str(tol),
                                      "regression", reason=why))
            continue
        if ce.count < be.count:  # a mean over fewer images is no improvement
            res.changes.append(Change(split, method, name, be.value, ce.value, str(tol),
                                      "regression", reason=f"scored on fewer images "
                                      f"({be.count} -> {ce.count})"))
            continue
        verdict, why = _verdict(be.value, ce.value, hib[name], tol)
        res.changes.append(Change(split, method, name, be.value, ce.value, str(tol),
                                  verdict, reason=why))
    if c.counts.failed > b.counts.failed:
        res.changes.append(Change(split, method, "(failed images)", float(b.counts.failed),
                                  float(c.counts.failed), "0", "regression",
                                  reason="more images failed"))
    why, b_why = _incomplete(c), _incomplete(b)
    if why and b_why == why:
        res.notes.append(f"{method} on {split}: baseline and current are both {why}; "
                         "compared like for like")
    elif why:
        res.changes.append(Change(split, method, "(run)", None, None, "–", "regression",
                                  reason=f"current run is {why}"))
    elif b_why:  # a partial baseline says nothing about the images it left out
        res.changes.append(Change(split, method, "(run)", None, None, "–", "regression",
                                  reason=f"baseline run is {b_why}, current is complete: not "
                                  "like for like (regenerate the baseline)"))
    if not per_image:
        return
    # rows are validated by the store: string ids, object metrics, numeric (or null) values
    brows = {r["id"]: r for r in read_rows(b.run_dir)} if b.run_dir else {}
    crows = {r["id"]: r for r in read_rows(c.run_dir)} if c.run_dir else {}
    if not brows:
        res.notes.append(f"{method} on {split}: baseline has no rows.jsonl; aggregate check only")
        return
    missing = 0
    for iid, br in brows.items():
        if br["status"] != "ok":
            continue
        cr = crows.get(iid)
        if cr is None:  # never compared: a partial run must not pass on the images it left out
            missing += 1
            res.changes.append(Change(split, method, "(image)", None, None, "–", "regression",
                                      image=iid, reason="missing in current run"))
            continue
        res.compared_images += 1
        if cr["status"] != "ok":
            res.changes.append(Change(split, method, "(image)", None, None, "–", "regression",
                                      image=iid, reason=f"failed: {cr.get('reason')}"))
            continue
        for name, bv in br["metrics"].items():
            if name not in hib:
                continue
            cv = cr["metrics"].get(name)
            tol = tols.get(name, default)
            verdict, why = _verdict(bv, cv, hib[name], tol)
            if verdict == "regression":
                res.changes.append(Change(split, method, name, bv, cv, str(tol), verdict,
                                          image=iid, reason=why))
