"""evaluate(method, split, metrics): batching, per-image failures, resume, run summary.

One image from disk to a table cell: ``Split.samples()`` lists files -> :func:`_decode` reads each
file once (uint8 RGB) -> ``Method.restore()`` on a float [0,1] batch -> :func:`check_output`
validates and quantises to uint8 (as saving a PNG would) -> every metric scores the uint8 batch
-> rows are appended to the run's ``rows.jsonl`` -> :func:`summarise` aggregates stored rows
and set-metric state into ``summary.json``.

Per-image problems (unreadable file, size mismatch, NaN/inf or wrong-shape output) become
``failed`` rows with the reason; the run goes on. Rows already stored are never recomputed.
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import __version__
from .data.base import Sample, Split
from .errors import (
    DataLayoutError,
    FaceblurError,
    ImageError,
    MethodOutputError,
    UsageError,
    WeightsIntegrityError,
    WeightsMissingError,
)
from .faults import crash_point
from .imageio import read_image, write_png
from .methods.base import Method
from .metrics.base import Batch, Metric, MetricContext, finite_mean_std
from .registry import methods as method_registry
from .registry import metrics as metric_registry
from .registry import splits as split_registry
from .results import SCHEMA, RunStore, read_features, read_rows, run_key, split_slug

DEFAULT_METRICS = ("psnr", "ssim")


# -- resolution of names ---------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    from .devices import resolve_device as _resolve  # one parser for every --device

    return _resolve(device)


def open_split(name: str, data_root: str | Path | None = None, allow_partial: bool = False) -> Split:
    """``name`` is ``split`` or ``split/subset`` (e.g. ``mspl-center/ffhq``)."""
    base, _, subset = name.partition("/")
    cls = split_registry.get(base)
    return cls(data_root=data_root, subset=subset or None, allow_partial=allow_partial)


def make_method(name: str, options: dict[str, Any] | None = None) -> Method:
    cls = method_registry.get(name)
    return cls(**(options or {}))


def available_metric_names() -> list[str]:
    return metric_registry.names()


# -- validation of a method's output ------------------------------------------------------------------
def check_output(out: Any, expected_shape: tuple[int, ...]) -> tuple[torch.Tensor, list[str | None]]:
    """Validate ``restore()`` output; return (float32 tensor clamped to [0,1], per-image reason).

    A per-image reason (not None) marks that image as failed: non-finite values, or values far
    outside [0,1] (the usual sign of a [-1,1] or [0,255] convention). Values within 0.5 of the
    range are clamped, as writing a PNG would. A wrong type, dtype or shape fails the whole batch.
    """
    if not isinstance(out, torch.Tensor):
        raise MethodOutputError(f"restore() returned {type(out).__name__}, expected a torch.Tensor",
                                "return a (N,3,H,W) float32 tensor in [0,1]")
    if not out.is_floating_point():
        raise MethodOutputError(f"restore() returned dtype {out.dtype}, expected float32 in [0,1]",
                                "convert with .float() / 255 before returning")
    if tuple(out.shape) != tuple(expected_shape):
        raise MethodOutputError(
            f"restore() returned shape {tuple(out.shape)}, expected {tuple(expected_shape)}",
            "return (N,3,H*scale,W*scale) for an (N,3,H,W) input (check Method.scale)")
    out = out.detach().float()
    reasons: list[str | None] = []
    flat = out.flatten(1)
    finite = torch.isfinite(flat).all(1)
    lo = torch.where(torch.isfinite(flat), flat, torch.zeros_like(flat)).amin(1)
    hi = torch.where(torch.isfinite(flat), flat, torch.zeros_like(flat)).amax(1)
    for i in range(out.shape[0]):
        if not bool(finite[i]):
            n_bad = int((~torch.isfinite(flat[i])).sum())
            reasons.append(f"method output has {n_bad} NaN/inf values")
        elif float(lo[i]) < -0.5 or float(hi[i]) > 1.5:
            reasons.append(f"method output range [{float(lo[i]):.3g}, {float(hi[i]):.3g}] is not [0,1] "
                           "(a [-1,1] or [0,255] convention?)")
        else:
            reasons.append(None)
    out = torch.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
    return out, reasons


# -- decoding -----------------------------------------------------------------------------------------
@dataclass
class Decoded:
    sample: Sample
    blurred: np.ndarray | None = None
    reference: np.ndarray | None = None
    error: str | None = None
    restored: torch.Tensor | None = None  # uint8 (3, H, W), cpu
    restore_s: float = 0.0


def _decode(sample: Sample, need_reference: bool) -> Decoded:
    d = Decoded(sample)
    try:
        d.blurred = read_image(sample.blurred)
        if need_reference:
            if sample.sharp is None:
                raise ImageError(f"{sample.id}: no ground truth for this sample",
                                 "restore the missing ground-truth file, or use --allow-partial")
            d.reference = read_image(sample.sharp)
    except ImageError as exc:
        d.error = str(exc).splitlines()[0]
    return d


# -- the run ------------------------------------------------------------------------------------------
@dataclass
class MetricState:
    metric: Metric
    status: str = "ok"  # ok | unavailable | not-applicable | error
    reason: str | None = None


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



def evaluate(cfg: RunConfig, progress: Any = None) -> dict:
    """Run ``cfg.method`` on ``cfg.split``, score with ``cfg.metrics``; return the run summary.

    ``progress`` is an optional object with ``start(total, done, description)`` and
    ``advance(n)`` (the CLI passes a rich progress bar).
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = resolve_device(cfg.device)
    split = cfg.split if isinstance(cfg.split, Split) else open_split(cfg.split, cfg.data_root, cfg.allow_partial)
    method = cfg.method if isinstance(cfg.method, Method) else make_method(cfg.method, cfg.method_options)
    method_name = method.name or type(method).__name__
    method.load(cfg.checkpoint, device)

    samples = split.samples()
    fingerprint = split_fingerprint(split, samples)
    if cfg.limit is not None:
        samples = samples[: cfg.limit]
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
    key = run_key(ident)
    run_dir = Path(cfg.results_dir) / "runs" / split_slug(split.full_name) / _safe(method_name) / key

    ctx = MetricContext(device=device, split=split, weights_overrides=cfg.weights_overrides)
    states = _setup_metrics(cfg.metrics, split, ctx, cfg.strict)
    live = [st for st in states if st.status == "ok"]
    need_reference = split.has_reference

    t0 = time.perf_counter()
    timings = {"restore_s": 0.0, "metrics_s": 0.0, "decode_s": 0.0}
    with RunStore(run_dir, wait=cfg.wait) as store:
        # ok rows are never recomputed; failed images are retried (the cause may have been fixed)
        done = {r["id"] for r in store.rows() if r["status"] == "ok"}
        pending = [s for s in samples if s.id not in done]
        if progress is not None:
            progress.start(len(samples), len(samples) - len(pending), f"{method_name} on {split.full_name}")
        interrupted = False
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                batches = [pending[i:i + cfg.batch_size] for i in range(0, len(pending), cfg.batch_size)]
                fut = pool.submit(_decode_batch, batches[0], need_reference) if batches else None
                for bi, batch_samples in enumerate(batches):
                    td = time.perf_counter()
                    decoded = fut.result()
                    timings["decode_s"] += time.perf_counter() - td
                    if bi + 1 < len(batches):  # prefetch the next batch while this one runs
                        fut = pool.submit(_decode_batch, batches[bi + 1], need_reference)
                    rows = _process_batch(decoded, method, live, store, device, cfg, timings, split)
                    store.append_rows(rows)
                    if progress is not None:
                        progress.advance(len(rows))
        except KeyboardInterrupt:
            interrupted = True
        runtime = _previous_runtime(store.summary_path)
        if cfg.runtime and not interrupted:
            runtime = measure_method_runtime(method, device, cfg.runtime_repeats)
        summary = summarise(store.dir, samples, states, ctx, method=method, cfg=cfg, split=split,
                            ident=ident, key=key, device=device,
                            timings={**timings, "total_s": time.perf_counter() - t0})
        if runtime is not None:
            summary["runtime"] = runtime
        store.write_summary(summary)
    summary["run_dir"] = str(run_dir)
    if interrupted:
        raise KeyboardInterrupt
    return summary


def measure_method_runtime(method: Method, device: torch.device, repeats: int = 50) -> dict:
    """The runtime protocol of metrics.runtime at 128x128 (batch 1 and 16; fp32, and bf16 on CUDA
    for methods with a torch network).

    ``per_image_s`` (batch 1, fp32 median) is the figure the papers' runtime columns report.
    """
    from .metrics.runtime import applicable_dtypes, measure_runtime

    dtypes = applicable_dtypes(method) if device.type == "cuda" else ("fp32",)
    info = measure_runtime(method, device, batches=(1, 16), dtypes=dtypes, repeats=repeats,
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
    from .data.manifest import load_manifest, manifest_hash, manifest_path

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


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)


def _decode_batch(samples: list[Sample], need_reference: bool) -> list[Decoded]:
    return [_decode(s, need_reference) for s in samples]


def _setup_metrics(names: Sequence[str], split: Split, ctx: MetricContext, strict: bool) -> list[MetricState]:
    states = []
    for name in names:
        cls = metric_registry.get(name)
        st = MetricState(cls())
        if cls.needs_reference and not split.has_reference:
            st.status, st.reason = "not-applicable", f"{split.full_name} has no ground truth"
        else:
            try:
                st.metric.setup(ctx)
            except (WeightsMissingError, WeightsIntegrityError) as exc:
                if strict:
                    raise
                st.status = "unavailable"
                st.reason = ("weights missing: " if isinstance(exc, WeightsMissingError) else "weights rejected: ") + \
                    (getattr(exc, "short", None) or _first_line(exc.message))
            except UsageError as exc:  # e.g. a split without identity metadata
                if strict:
                    raise
                st.status, st.reason = "not-applicable", _first_line(exc.message)
        states.append(st)
    return states


def _first_line(s: str) -> str:
    return str(s).strip().splitlines()[0] if str(s).strip() else ""


def _process_batch(decoded: list[Decoded], method: Method, live: list[MetricState], store: RunStore,
                   device: torch.device, cfg: RunConfig, timings: dict, split: Split) -> list[dict]:
    rows: dict[str, dict] = {}
    ok: list[Decoded] = []
    for d in decoded:
        if d.error is not None:
            rows[d.sample.id] = _failed_row(d.sample, d.error)
        else:
            ok.append(d)
    # group by input size: a batch is one tensor
    groups: dict[tuple, list[Decoded]] = {}
    for d in ok:
        groups.setdefault(d.blurred.shape, []).append(d)
    for group in groups.values():
        for d, restored, reason, dt in _restore_group(group, method, device, split):
            if reason is not None:
                rows[d.sample.id] = _failed_row(d.sample, reason)
                continue
            d.restored, d.restore_s = restored, dt
            timings["restore_s"] += dt
    scored = [d for d in ok if d.sample.id not in rows]
    # size check against the reference
    by_size: dict[tuple, list[Decoded]] = {}
    for d in scored:
        if d.reference is not None and tuple(d.reference.shape[:2]) != tuple(d.restored.shape[-2:]):
            rows[d.sample.id] = _failed_row(
                d.sample, f"restored size {tuple(d.restored.shape[-2:])} != ground truth size "
                f"{tuple(d.reference.shape[:2])} ({d.sample.sharp})")
            continue
        by_size.setdefault(tuple(d.restored.shape), []).append(d)
    tm = time.perf_counter()
    for group in by_size.values():
        restored = torch.stack([d.restored for d in group]).to(device)
        reference = None
        if group[0].reference is not None:
            reference = torch.from_numpy(np.stack([d.reference for d in group])).permute(0, 3, 1, 2).to(device)
        blurred = torch.from_numpy(np.stack([d.blurred for d in group])).permute(0, 3, 1, 2).to(device)
        batch = Batch([d.sample for d in group], restored, reference, blurred)
        values: dict[str, np.ndarray] = {}
        errors: dict[str, str] = {}
        for st in live:
            m = st.metric
            crash_point("metrics")
            try:
                with torch.inference_mode():
                    if m.kind == "set":
                        feats = np.asarray(m.features(batch))
                        if feats.shape[0] != len(group):
                            raise ValueError(f"features() returned {feats.shape[0]} rows for {len(group)} images")
                        store.write_features(m.name, [d.sample.id for d in group], feats)
                    else:
                        v = np.asarray(m.compute(batch), dtype=np.float64).reshape(-1)
                        if v.shape[0] != len(group):
                            raise ValueError(f"compute() returned {v.shape[0]} values for {len(group)} images")
                        values[m.name] = v
            except FaceblurError as exc:
                errors[m.name] = _first_line(exc.message)
            except Exception as exc:  # a metric bug must not lose the batch
                errors[m.name] = f"{type(exc).__name__}: {_first_line(str(exc))}"
        if cfg.save_images:
            img_dir = store.dir / "images"
            for d in group:
                write_png(img_dir / f"{_safe(d.sample.id)}.png", d.restored.permute(1, 2, 0).cpu().numpy())
        for j, d in enumerate(group):
            row = {"id": d.sample.id, "status": "ok", "reason": None,
                   "metrics": {k: float(v[j]) for k, v in values.items()},
                   "meta": d.sample.meta, "restore_s": round(d.restore_s, 6)}
            if errors:
                row["metric_errors"] = errors
            rows[d.sample.id] = row
    timings["metrics_s"] += time.perf_counter() - tm
    # keep split order
    return [rows[d.sample.id] for d in decoded if d.sample.id in rows]


def _restore_group(group: list[Decoded], method: Method, device: torch.device, split: Split):
    """Yield (decoded, uint8 restored (3,H,W) cpu tensor | None, failure reason | None, seconds)."""
    from .imageio import quantize, to_tensor01

    x = to_tensor01([d.blurred for d in group]).to(device)
    meta = []
    for d in group:
        m = {**d.sample.meta, "id": d.sample.id, "blurred_name": d.sample.blurred.name}
        if method.uses_kernel:
            m["kernel"] = split.kernel(d.sample)
        meta.append(m)
    expected = (x.shape[0], 3, x.shape[2] * method.scale, x.shape[3] * method.scale)
    crash_point("restore")
    t = time.perf_counter()
    try:
        with torch.inference_mode():
            out = method.restore(x, meta)
        out, reasons = check_output(out, expected)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except Exception as exc:
        if len(group) > 1:  # isolate the image(s) that break the method
            for d in group:
                yield from _restore_group([d], method, device, split)
            return
        reason = _first_line(exc.message) if isinstance(exc, FaceblurError) else \
            f"restore() raised {type(exc).__name__}: {_first_line(str(exc))}"
        yield group[0], None, reason, 0.0
        return
    dt = (time.perf_counter() - t) / len(group)
    q = quantize(out).cpu()
    for i, d in enumerate(group):
        yield d, q[i], reasons[i], dt


def _failed_row(sample: Sample, reason: str) -> dict:
    return {"id": sample.id, "status": "failed", "reason": reason, "metrics": {}, "meta": sample.meta}


# -- summary ------------------------------------------------------------------------------------------
def summarise(run_dir: Path, samples: list[Sample], states: list[MetricState], ctx: MetricContext, *,
              method: Method, cfg: RunConfig, split: Split, ident: dict, key: str,
              device: torch.device, timings: dict) -> dict:
    rows = read_rows(Path(run_dir) / "rows.jsonl")
    by_id = {r["id"]: r for r in rows}  # the latest row of an id wins (a retried failure)
    wanted = {s.id for s in samples}
    rows = [by_id[s.id] for s in samples if s.id in by_id]
    ok_rows = [r for r in rows if r["status"] == "ok"]
    failures = [{"id": r["id"], "reason": r.get("reason")} for r in rows if r["status"] != "ok"]
    metrics_out: dict[str, dict] = {}
    for st in states:
        m = st.metric
        entry = {"value": None, "std": None, "count": 0, "status": st.status, "reason": st.reason,
                 "label": m.label or m.name, "protocol": m.protocol, "higher_is_better": m.higher_is_better,
                 "family": m.family, "kind": m.kind, "extra": {}}
        if st.status == "ok":
            if m.kind == "set":
                ok_ids = [r["id"] for r in ok_rows]
                feats = read_features(Path(run_dir), m.name, ok_ids)
                if feats is None:
                    entry["status"], entry["reason"] = "error", "per-image state missing for some images"
                elif ok_ids:
                    try:
                        ok_samples = [s for s in samples if s.id in set(ok_ids)]
                        agg = dict(m.aggregate(feats, ok_samples, ctx))
                        entry["value"] = agg.pop("value", None)
                        entry["std"] = agg.pop("std", None)
                        entry["count"] = int(agg.pop("count", len(ok_ids)))
                        if agg.get("reason") and entry["value"] is None:
                            entry["status"], entry["reason"] = "not-applicable", agg.pop("reason")
                        entry["extra"] = agg
                    except FaceblurError as exc:
                        entry["status"], entry["reason"] = "error", _first_line(exc.message)
            else:
                vals = np.array([r["metrics"].get(m.name, np.nan) for r in ok_rows], dtype=np.float64)
                mean, std, n, n_inf = finite_mean_std(vals)  # ±inf per image: counted, not averaged
                entry.update(value=None if np.isnan(mean) else mean, std=None if np.isnan(std) else std, count=n)
                if n_inf:
                    entry["extra"]["infinite"] = n_inf
                n_nan = int(np.isnan(vals).sum())
                if n_nan:
                    entry["extra"]["unscored"] = n_nan
                errs = {r.get("metric_errors", {}).get(m.name) for r in ok_rows} - {None}
                if errs:
                    entry["extra"]["errors"] = sorted(errs)[:5]
        metrics_out[m.name] = entry
    return {
        "schema": SCHEMA,
        "run_key": key,
        "method": method.name or type(method).__name__,
        "method_options": method.options,
        "checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None,
        "checkpoint_sha256": ident.get("checkpoint_sha256"),
        "num_parameters": method.num_parameters(),
        "split": split.full_name,
        "split_name": split.name,
        "subset": split.subset,
        "data_root": str(split.data_root),
        "split_fingerprint": ident["split_fingerprint"],
        "partial": bool(split.partial) or cfg.limit is not None,
        "limit": cfg.limit,
        "complete": len(rows) == len(wanted),
        "counts": {"total": len(samples), "done": len(rows), "ok": len(ok_rows), "failed": len(failures)},
        "failures": failures,
        "metrics": metrics_out,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "provenance": provenance(device, cfg.seed),
    }


def provenance(device: torch.device, seed: int) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    pk = {}
    for name in ("torch", "torchvision", "numpy", "scikit-image", "lpips", "insightface", "onnxruntime",
                 "facenet-pytorch", "pytorch-fid", "pillow", "scipy"):
        try:
            pk[name] = version(name)
        except PackageNotFoundError:
            pk[name] = None
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or platform.machine()
    return {
        "faceblur_bench": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "device": str(device),
        "device_name": device_name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "autocast": None,
        "torch_threads": torch.get_num_threads(),
        "packages": pk,
    }
