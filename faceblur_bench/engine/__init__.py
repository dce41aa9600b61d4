"""The evaluation engine: ``evaluate(RunConfig)`` restores every image of a split with a method,
scores it and stores per-image rows and the run summary.

One image from disk to a table cell: ``Split.samples()`` lists files -> :func:`scoring.decode`
reads each file once (uint8 RGB) -> ``Method.restore()`` on a float [0,1] batch ->
:func:`check_output` validates and quantises to uint8 (as saving a PNG would) -> every metric
scores the uint8 batch through one protocol (:class:`scoring.MetricState`) -> rows are appended
to the run's ``rows.jsonl`` -> :func:`summary.summarise` aggregates stored rows and set-metric
state into ``summary.json``.

Modules: :mod:`.run` (the run loop: resume, batches, runtime), :mod:`.scoring` (one batch and the
metric protocol), :mod:`.summary` (aggregates and provenance), :mod:`.distributed` (a run sharded
over the ranks of a torchrun job: rank shards of rows, summary once by rank 0).

Per-image problems (unreadable file, size mismatch, NaN/inf or wrong-shape output) become
``failed`` rows with the reason; the run goes on. Rows already stored are never recomputed:
a resumed run only adds what is missing — new images, metrics that stored rows lack (the
metric list is not part of the run key; stored metrics stay in the summary), images for
``--save-images`` — and records each invocation that computed something as a session
(``sessions.jsonl``; rows carry its index). An invocation that computes nothing leaves the run's
files as they were. ``summary["data_origin"]`` says whether the split is the official release,
``make-split`` output or custom data (:mod:`faceblur_bench.data.origin`). See docs/results.md.
"""

from typing import Any

#: public name -> the submodule defining it. Imported on first use (PEP 562): the run loop
#: needs torch, and ``faceblur-bench runs`` (``engine.stored``) lists stored runs without it
_LAZY = {
    "resolve_device": "..devices",
    "builtin_baselines": "..methods.catalog",
    **dict.fromkeys(("DEFAULT_METRICS", "RunConfig", "default_method_names",
                     "default_metric_names", "evaluate", "make_method", "measure_method_runtime",
                     "open_split", "split_fingerprint"), ".run"),
    **dict.fromkeys(("MetricState", "check_output"), ".scoring"),
    **dict.fromkeys(("provenance", "summarise"), ".summary"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
