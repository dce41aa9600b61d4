"""What a run covers, and which runs may be ranked: the one rule of tables, the leaderboard,
plots, figures and ``check``.

A run is

- ``complete``: every image of its split has a stored row (failed images included: they are
  counted in the table's ``failed`` column and per metric by "n/N");
- ``partial``: images are missing — an interrupted run ("32/720") or a split with files missing
  (``--allow-partial``);
- ``limited``: ``--limit N`` ("8/72");
- ``subset``: a ``split/subset`` run of a split whose papers report on the whole split (the demo
  split), labelled as such and never ranked with whole-split runs.

A run is *rankable* (may get a best/second mark) when it is complete (or a complete subset,
compared only with runs on the same subset), its summary matched its rows
(:func:`faceblur_bench.report.store.verify_against_rows`), and it is a restoration (not the
blurred input, :func:`faceblur_bench.report.names.is_ranked`). Tables then rank only rows on the
same image set (:func:`image_set`), and per metric only values scored on the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import names
from .store import as_run, summary_split

COMPLETE, PARTIAL, LIMITED, SUBSET = "complete", "partial", "limited", "subset"


@dataclass(frozen=True)
class Coverage:
    """How much of its split a run covers (see the module docstring)."""

    state: str
    #: images with a stored row / scored (status ok) / the run was asked for
    done: int
    ok: int
    total: int
    #: images of the whole split (``--limit`` runs: what the limit is a part of); None if unknown
    split_images: int | None
    subset: str | None = None
    limit: int | None = None
    #: the summary matched its rows
    verified: bool = True
    why_unverified: str = ""
    #: a partial run that stopped before every image had a row (else: a partial split)
    unfinished: bool = False

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def rankable(self) -> bool:
        """Complete (or a complete subset run) and verified against its rows."""
        return self.state in (COMPLETE, SUBSET) and self.verified

    @property
    def label(self) -> str:
        """Short tag for a row label or a title ("" for a complete run): ``32/720``,
        ``8/72, --limit 8``, ``partial split, 60/60``, ``subset insightface, 16 images``."""
        if self.state == LIMITED:
            if self.split_images is None:  # a summary from before split_images was recorded
                return f"--limit {self.limit}"
            return f"{self.ok}/{self.split_images}, --limit {self.limit}"
        if self.state == PARTIAL and self.unfinished:
            return f"{self.ok}/{self.total}"
        if self.state == PARTIAL:
            return f"partial split, {self.ok}/{self.total}"
        if self.state == SUBSET:
            return f"subset {self.subset}, {self.total} images"
        return ""

    @property
    def sentence(self) -> str:
        """What the label means, for a footnote ("" for a complete, verified run)."""
        text = {
            LIMITED: f"first {self.limit} images only (--limit): {self.ok} of "
                     f"{self.split_images if self.split_images is not None else '?'} images of the "
                     "split scored; not ranked",
            PARTIAL: (f"unfinished run: {self.ok} of {self.total} images scored; not ranked"
                      if self.unfinished else
                      f"partial split (files missing, --allow-partial): {self.ok} of {self.total} "
                      "images scored; not ranked"),
            SUBSET: f"subset {self.subset} only ({self.total} images), not the whole split; "
                    "ranked only with runs on the same subset",
        }.get(self.state, "")
        if not self.verified:
            text = (text + "; " if text else "") + (
                f"unverified: {self.why_unverified}: shown as the rows give it, not ranked")
        return text


def coverage(summary: Any) -> Coverage:
    """:class:`Coverage` of a run (a :class:`~faceblur_bench.results.RunSummary` or its dict)."""
    run = as_run(summary)
    c = run.counts
    split_images = run.other.get("split_images")
    split_images = split_images if isinstance(split_images, int) else None
    ver = run.other.get("_verified") or {}
    verified = ver.get("ok", True) is not False
    why = "; ".join(str(w) for w in (ver.get("why") or [])[:2])
    name, subset = summary_split(run)
    unfinished = not run.complete or c.done < c.total
    if run.limit:
        state = LIMITED
    elif run.partial or unfinished:
        state = PARTIAL
    elif subset and not (names.SPLITS.get(name) or {}).get("subsets"):
        state = SUBSET
    else:
        state = COMPLETE
    return Coverage(state, c.done, c.ok, c.total, split_images, subset, run.limit, verified, why,
                    unfinished)


def image_set(summary: Any) -> tuple[str, str]:
    """What a run was scored on: ``(split, fingerprint)``; rows are ranked only against rows
    with the same image set."""
    run = as_run(summary)
    return run.split, str(run.split_fingerprint or "")


def rankable(summary: Any) -> bool:
    """Whether a run's row may get a best/second mark (see the module docstring)."""
    run = as_run(summary)
    return names.is_ranked(run.method) and coverage(run).rankable


def scored(summary: Any, metric: str) -> dict[str, Any] | None:
    """``{"scored", "total", "images"}`` of ``metric`` in a run read by
    :func:`~faceblur_bench.report.store.load_run` (None for a summary not read from disk)."""
    info = (as_run(summary).other.get("_scored") or {}).get(metric)
    return info if isinstance(info, dict) else None


def title_suffix(summaries: list[Any]) -> str:
    """`` — partial: wiener 32/720`` for titles of plots and figures drawn from runs that are
    not complete ("" when every run is complete and verified)."""
    parts = []
    for s in summaries:
        cov = coverage(s)
        if not cov.complete or not cov.verified:
            tag = cov.label or "unverified"
            parts.append(f"{as_run(s).method} {tag}")
    return f" — not complete: {', '.join(parts)}" if parts else ""
