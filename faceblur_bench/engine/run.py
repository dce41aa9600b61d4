"""``evaluate(RunConfig)``: one method on one split — resume, batches, per-image failures, summary."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data import moments
from ..data.base import Sample, Split, open_split
from ..devices import resolve_device
from ..errors import DataLayoutError, UsageError
from ..methods.base import Method
from ..metrics import reference_cache
from ..metrics.base import MetricContext
from ..registry import methods as method_registry
from ..registry import metrics as metric_registry
from ..results import run_dir as results_run_dir
from ..results import run_key
from . import distributed
from .scoring import decode_batch, process_batch, setup_metrics
from .summary import summarise

DEFAULT_METRICS = ("psnr", "ssim")


def default_metric_names(split: str, data_root: str | Path | None = None) -> list[str]:
    """``run``'s metrics without ``--metrics``: every metric with ``default = True``; on a split
    without ground truth also the default no-reference set (pyiqa NIQE, BRISQUE, MUSIQ, MANIQA,
    CLIP-IQA)."""
    from ..metrics.pyiqa_nr import DEFAULT_NO_REFERENCE

    names = [n for n, cls in metric_registry.items() if getattr(cls, "default", True)]
    if not open_split(split, data_root).has_reference:
        names += [n for n in DEFAULT_NO_REFERENCE if n not in names]
    return names


def make_method(name: str, options: dict[str, Any] | None = None) -> Method:
    cls = method_registry.get(name)
    return cls(**(options or {}))


def builtin_baselines() -> list[str]:
    """The default methods of ``run``: every method this distribution registers through an entry
    point that needs no options (``folder`` needs a directory, so it is left out)."""
    from importlib.metadata import entry_points

    names = []
    for ep in entry_points(group="faceblur_bench.methods"):
        if ep.dist is not None and ep.dist.name == "faceblur-bench" and ep.name != "folder":
            names.append(ep.name)
    return sorted(names)


@dataclass
class RunConfig:
    #: method name (registry) or a Method instance
    method: Any
    #: split name ("mspl-center/ffhq") or a Split instance
    split: Any = "demo"
    metrics: Sequence[str] = DEFAULT_METRICS
    data_root: str | Path | None = None
    results_dir: str | Path = "results"
    device: str = "auto"
    batch_size: int = 16
    checkpoint: str | Path | None = None
    method_options: dict[str, Any] = field(default_factory=dict)
    save_images: bool = False
    strict: bool = False
    allow_partial: bool = False
    weights_overrides: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    seed: int = 0
    #: also time restore() (metrics.runtime.measure_runtime) and store it as summary["runtime"]
    runtime: bool = False
    runtime_repeats: int = 50
    wait: float = 0.0
    #: "s2s" | "s2v" (single-to-video: n moments per blurred image; faceblur_bench.data.moments)
    protocol: str = "s2s"
    #: keep ground-truth features across runs under <results_dir>/cache/reference/ (values are
    #: the same either way; faceblur_bench.metrics.reference_cache)
    reference_cache: bool = True


def evaluate(cfg: RunConfig, progress: Any = None) -> dict:
    """Run ``cfg.method`` on ``cfg.split``, score with ``cfg.metrics``; return the run summary.

    ``progress`` is an optional object with ``start(total, done, description)`` and
    ``advance(n)`` (the CLI passes a rich progress bar).
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = resolve_device(cfg.device)
    world = distributed.init(device)  # a torchrun rank, or the single process
    device = distributed.rank_device(device, world)
    if not world.is_main:
        progress = None
    split = cfg.split if isinstance(cfg.split, Split) else open_split(cfg.split, cfg.data_root, cfg.allow_partial)
    method = cfg.method if isinstance(cfg.method, Method) else make_method(cfg.method, cfg.method_options)
    method_name = method.name or type(method).__name__
    moments.check_protocol(cfg.protocol, method_name, method.accepts_moment)
    method.load(cfg.checkpoint, device)

    samples = split.samples()
    fingerprint = split_fingerprint(split, samples)
    if cfg.limit is not None:
        samples = samples[: cfg.limit]
    if cfg.protocol == "s2v":  # limit counts blurred images; each becomes n (window, moment) rows
        samples = moments.expand_moments(samples, split.full_name)
    if not samples:
        raise UsageError(f"split {split.full_name!r} has no samples under {split.root}",
                         f"expected layout:\n{split.layout}")
    if method.uses_kernel and split.kernel(samples[0]) is None:
        raise UsageError(f"method {method_name!r} deconvolves with the true blur kernel, and split "
                         f"{split.full_name!r} provides none",
                         "use a split with kernels (demo, a make-split output, MSPL with its test kernels)")
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise UsageError(f"split {split.full_name!r} has duplicate sample ids: {', '.join(dup)}",
                         "sample ids must be unique; check the split layout for duplicated files")
    ident = {**method.identity(), "split": split.full_name, "split_fingerprint": fingerprint,
             "partial": bool(split.partial), "limit": cfg.limit}
    if cfg.protocol != "s2s":  # s2s run keys stay as they were
        ident["protocol"] = cfg.protocol
    key = run_key(ident)
    run_dir = results_run_dir(cfg.results_dir, split.full_name, method_name, key)

    ctx = MetricContext(device=device, split=split, weights_overrides=cfg.weights_overrides)
    disk = Path(cfg.results_dir) / "cache" / "reference" if cfg.reference_cache else None
    ctx.shared(reference_cache.SHARED_KEY,  # ground-truth features once per file (and across runs)
               lambda: reference_cache.ReferenceCache(disk_root=disk, split_fingerprint=fingerprint))
    states = setup_metrics(cfg.metrics, split, ctx, cfg.strict, scale=method.scale)
    live = [st for st in states if st.status == "ok"]
    need_reference = split.has_reference

    t0 = time.perf_counter()
    timings = {"restore_s": 0.0, "metrics_s": 0.0, "decode_s": 0.0}
    summary: dict = {}
    with distributed.open_store(run_dir, cfg.wait, world, ids) as store:
        # ok rows are never recomputed; failed images are retried (the cause may have been fixed).
        # Rank 0 reads the store before any rank appends: every rank shards the same list.
        done = distributed.broadcast(
            {r["id"] for r in store.rows() if r["status"] == "ok"} if world.is_main else None, world)
        pending = distributed.shard([s for s in samples if s.id not in done], world)
        if progress is not None and world.sharded:  # rank 0 shows its own share
            progress.start(len(pending), 0, f"{method_name} on {split.full_name} (rank 0 of {world.size})")
        elif progress is not None:
            progress.start(len(samples), len(samples) - len(pending), f"{method_name} on {split.full_name}")
        interrupted = False
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                batches = [pending[i:i + cfg.batch_size] for i in range(0, len(pending), cfg.batch_size)]
                fut = pool.submit(decode_batch, batches[0], need_reference) if batches else None
                for bi, batch_samples in enumerate(batches):
                    td = time.perf_counter()
                    decoded = fut.result()
                    timings["decode_s"] += time.perf_counter() - td
                    if bi + 1 < len(batches):  # prefetch the next batch while this one runs
                        fut = pool.submit(decode_batch, batches[bi + 1], need_reference)
                    rows = process_batch(decoded, method, live, store, device, cfg.save_images, timings, split)
                    store.append_rows(rows)
                    if progress is not None:
                        progress.advance(len(rows))
        except KeyboardInterrupt:
            interrupted = True
        distributed.barrier(world)  # every rank's rows and feature files are on disk
        timings = distributed.sum_timings(timings, world)
        if world.is_main:  # summary and set metrics once, over the union of the shards
            summary = _write_summary(store, cfg, samples, states, ctx, method, split, ident, key, device,
                                     {**timings, "total_s": time.perf_counter() - t0}, interrupted, world)
        summary = distributed.broadcast(summary, world)
    summary["run_dir"] = str(run_dir)
    if interrupted:
        raise KeyboardInterrupt
    return summary


def _write_summary(store: Any, cfg: RunConfig, samples: list[Sample], states: list, ctx: MetricContext,
                   method: Method, split: Split, ident: dict, key: str, device: torch.device,
                   timings: dict, interrupted: bool, world: distributed.World) -> dict:
    from ..results import fold_row_shards

    fold_row_shards(store.dir, [s.id for s in samples])  # rows.jsonl in split order, as one process
    runtime = _previous_runtime(store.summary_path)
    if cfg.runtime and not interrupted:
        runtime = measure_method_runtime(method, device, cfg.runtime_repeats)
    summary = summarise(store.dir, samples, states, ctx, method=method, cfg=cfg, split=split,
                        ident=ident, key=key, device=device, timings=timings)
    if runtime is not None:
        summary["runtime"] = runtime
    summary["protocol"] = cfg.protocol
    if cfg.protocol == "s2v":
        summary["frame_order"] = moments.frame_orders(samples)
        summary["protocol_note"] = moments.protocol_note(cfg.protocol, summary["frame_order"])
    if world.sharded:
        summary["world_size"] = world.size
    store.write_summary(summary)
    return summary


def measure_method_runtime(method: Method, device: torch.device, repeats: int = 50) -> dict:
    """The runtime protocol of metrics.runtime at 128x128 (batch 1 and 16; fp32, and bf16 on CUDA).

    ``per_image_s`` (batch 1, fp32 median) is the figure the papers' runtime columns report.
    """
    from ..metrics.runtime import measure_runtime

    dtypes = ("fp32", "bf16") if device.type == "cuda" else ("fp32",)
    # SR methods are timed at their input size for a 256x256 output (Yun et al.: 32x32)
    size = 128 if method.scale == 1 else 256 // method.scale
    info = measure_runtime(method, device, sizes=((size, size),), batches=(1, 16), dtypes=dtypes,
                           repeats=repeats,
                           warmup=max(1, min(10, repeats // 5)))
    first = next((r for r in info["results"] if r["batch"] == 1 and r["dtype"] == "fp32" and "median_ms" in r), None)
    info["per_image_s"] = None if first is None else first["per_image_ms"] / 1000.0
    return info


def _previous_runtime(summary_path: Path) -> dict | None:
    """Keep a runtime measured by an earlier invocation of the same run."""
    import json

    try:
        return json.loads(summary_path.read_text()).get("runtime")
    except (OSError, ValueError):
        return None


def split_fingerprint(split: Split, samples: list[Sample]) -> str:
    """sha256 of the split's exact files (the manifest hash); refuses data changed since its manifest.

    When ``faceblur-bench data verify`` wrote a manifest for this split, files that changed,
    appeared or disappeared since are an error: results must never mix data silently.
    """
    from ..data.manifest import load_manifest, manifest_hash, manifest_path

    try:
        current = manifest_hash(split, samples)
    except OSError:  # a listed file is missing: its sample fails on its own; key on what is there
        return split.fingerprint(samples)
    path = manifest_path(split)
    if path.is_file():
        stored = load_manifest(path, split.data_root)
        if stored.get("hash") and stored["hash"] != current:
            raise DataLayoutError(
                f"split {split.full_name!r} changed on disk since its manifest was written ({path})",
                f"run `faceblur-bench data verify {split.full_name}` to see which files changed; if the change "
                f"is intended, accept it with `faceblur-bench data verify {split.full_name} --rewrite`")
    return current
