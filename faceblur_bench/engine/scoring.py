"""Scoring one batch: decode, restore, validate the output, and the metric protocol.

Every metric, whatever its kind, runs through one protocol (:class:`MetricState`, as
torchmetrics' update/compute): ``update`` once per batch (per-image values, or per-image state
written to the run store), ``compute`` once per run from what is stored — so the engine never
branches on the kind of metric, and set metrics resume and gather like paired ones.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import weights
from ..data.base import Sample, Split
from ..errors import (
    FaceblurError,
    ImageError,
    MethodOutputError,
    PackageMissingError,
    UsageError,
    WeightsIntegrityError,
    WeightsMissingError,
    WeightsOverrideError,
)
from ..faults import crash_point
from ..imageio import read_image, write_png
from ..methods.base import Method
from ..aggregates import paired_aggregate
from ..metrics.base import Batch, Metric, MetricContext
from ..registry import metrics as metric_registry
from ..results import RunStore, image_path, read_features
from ..stats import add_interval


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


# -- decoding ------------------------------------------------------------------------------------------
@dataclass
class Decoded:
    sample: Sample
    blurred: np.ndarray | None = None
    reference: np.ndarray | None = None
    error: str | None = None
    restored: torch.Tensor | None = None  # uint8 (3, H, W), cpu
    restore_s: float = 0.0
    #: decode notes that are not failures (e.g. an animated file scored on its first frame)
    warnings: list[str] = field(default_factory=list)


def decode(sample: Sample, need_reference: bool) -> Decoded:
    """Read a sample's files once (uint8 RGB); an unreadable file becomes the sample's error.

    ``meta["frame_index"]`` (a frame of two paired sequences) reads that frame of both files;
    ``meta["unusable"]`` (a reason the split found when listing, e.g. a missing restored file)
    is the sample's error without reading anything."""
    d = Decoded(sample)
    if sample.meta.get("unusable"):
        d.error = str(sample.meta["unusable"])
        return d
    frame = sample.meta.get("frame_index")
    try:
        d.blurred = read_image(sample.blurred, d.warnings, frame)
        if need_reference:
            if sample.sharp is None:
                raise ImageError(f"{sample.id}: no ground truth for this sample",
                                 "restore the missing ground-truth file, or use --allow-partial")
            d.reference = read_image(sample.sharp, d.warnings, frame)
    except ImageError as exc:
        d.error = str(exc).splitlines()[0]
    return d


def decode_batch(samples: list[Sample], need_reference: bool) -> list[Decoded]:
    return [decode(s, need_reference) for s in samples]


def first_line(s: str) -> str:
    return str(s).strip().splitlines()[0] if str(s).strip() else ""


# -- the metric protocol -------------------------------------------------------------------------------
@dataclass
class MetricState(ABC):
    """A metric within one run: availability (``ok | unavailable | not-applicable | error``) and
    the two steps every kind of metric has."""

    metric: Metric
    status: str = "ok"
    reason: str | None = None
    #: ``(weight name, path)`` of every file the metric's setup resolved (its provenance)
    weights_used: list = field(default_factory=list)

    @abstractmethod
    def update(self, batch: Batch, store: RunStore) -> np.ndarray | None:
        """Score one batch: per-image values ``(N,)`` to store in the rows, or None when the
        per-image state went to the store."""

    @abstractmethod
    def compute(self, ok_rows: list[dict], samples: list[Sample], run_dir: Path,
                ctx: MetricContext) -> dict[str, Any]:
        """The run value from what is stored: ``value, std, count`` (+ ``status, reason``
        when it cannot be given) and ``extra`` fields."""


def each_image_alone(batch: Batch, fn: Callable[[Batch], Any], what: str) -> np.ndarray:
    """``fn`` on every image of ``batch`` as a one-image batch (:meth:`Batch.images`), results
    stacked on the first axis ``(N, ...)``: what is stored for an image never depends on which
    images shared its batch (``--batch-size``, where a run was resumed). ``fn`` returns one row
    per call; ``what`` names it in the error when it does not."""
    rows = []
    for one in batch.images():
        r = np.asarray(fn(one))
        if r.shape[:1] != (1,):
            raise ValueError(f"{what} returned shape {r.shape} for 1 image, not one row")
        rows.append(r)
    return np.concatenate(rows)


class PairedState(MetricState):
    """One value per image, stored in the rows; the run value is their mean (NaN = unscored).

    Each image is scored on its own (a one-image batch): a reduction over a batch (torch CPU
    kernels, cuDNN algorithm choice) may change the last bits of a value with the batch's
    composition, and a stored value must not depend on ``--batch-size`` or on where a run was
    interrupted — resume is bit-exact.
    """

    def update(self, batch: Batch, store: RunStore) -> np.ndarray | None:
        return each_image_alone(
            batch, lambda one: np.asarray(self.metric.compute(one), dtype=np.float64).reshape(-1),
            "compute()")

    def compute(self, ok_rows, samples, run_dir, ctx):
        # the rule every reader re-applies to the stored rows (faceblur_bench.aggregates), with
        # the 95 % cluster-bootstrap interval (faceblur_bench.stats)
        return add_interval(paired_aggregate(self.metric.name, ok_rows), ok_rows, self.metric.name)


class SetState(MetricState):
    """Per-image state (embeddings, features, flags) stored with the run; one value per set.

    Each image's state is computed on its own, as :class:`PairedState`'s values are: the stored
    features — hence FID, KID and the verification accuracies computed from them — must not
    depend on ``--batch-size`` or on where a run was resumed.
    """

    def update(self, batch: Batch, store: RunStore) -> np.ndarray | None:
        feats = each_image_alone(batch, self.metric.features, "features()")
        store.write_features(self.metric.name, [s.id for s in batch.samples], feats)
        return None

    def compute(self, ok_rows, samples, run_dir, ctx):
        ok_ids = [r["id"] for r in ok_rows]
        out: dict[str, Any] = {"value": None, "std": None, "count": 0, "extra": {}}
        feats = read_features(Path(run_dir), self.metric.name, ok_ids)
        if feats is None:
            return out | {"status": "error", "reason": "per-image state missing for some images"}
        if not ok_ids:
            return out
        try:
            ok_set = set(ok_ids)
            agg = dict(self.metric.aggregate(feats, [s for s in samples if s.id in ok_set], ctx))
        except FaceblurError as exc:
            return out | {"status": "error", "reason": first_line(exc.message)}
        out["value"] = agg.pop("value", None)
        out["std"] = agg.pop("std", None)
        out["count"] = int(agg.pop("count", len(ok_ids)))
        if agg.get("reason") and out["value"] is None:
            out["status"], out["reason"] = "not-applicable", agg.pop("reason")
        out["extra"] = agg
        return out


def metric_state(metric: Metric) -> MetricState:
    """The state object of ``metric``'s kind (the one place the kind is looked at)."""
    return {"paired": PairedState, "set": SetState}[metric.kind](metric)


def setup_metrics(names: Sequence[str], split: Split, ctx: MetricContext, strict: bool,
                   scale: int = 1) -> list[MetricState]:
    """Build and set up every metric of a run; one that cannot run here gets its status and reason
    (``not-applicable``, ``unavailable``) instead of failing the run (unless ``strict``)."""
    states = []
    for name in names:
        cls = metric_registry.get(name)
        st = metric_state(cls())
        if cls.needs_reference and not split.has_reference:
            st.status, st.reason = "not-applicable", f"{split.full_name} has no ground truth"
        elif getattr(cls, "needs_blurred", False) and scale != 1:
            st.status, st.reason = "not-applicable", (
                f"{name} compares the output with the same-size blurred input; the method "
                f"changes the size (x{scale})")
        else:
            try:
                with weights.recording() as used:
                    st.metric.setup(ctx)
                st.weights_used = list(used)
            except WeightsOverrideError:
                raise  # an explicit override that is not a file is never "n/a"
            except (WeightsMissingError, WeightsIntegrityError) as exc:
                if strict:  # nothing has run yet: unusable input, exit 2
                    raise UsageError(f"--strict: metric {name!r} cannot run: {exc.message}", exc.hint) from exc
                st.status = "unavailable"
                # a missing package reads "n/a — install ..."; missing files "weights missing: ..."
                prefix = ("" if isinstance(exc, PackageMissingError) else "weights missing: "
                          if isinstance(exc, WeightsMissingError) else "weights rejected: ")
                st.reason = prefix + (getattr(exc, "short", None) or first_line(exc.message))
            except UsageError as exc:  # e.g. a split without identity metadata
                if strict:
                    raise
                st.status, st.reason = "not-applicable", first_line(exc.message)
        states.append(st)
    return states




# -- one batch -----------------------------------------------------------------------------------------
def process_batch(decoded: list[Decoded], method: Method, live: list[MetricState], store: RunStore,
                  device: torch.device, save_images: bool, timings: dict, split: Split) -> list[dict]:
    """Restore, validate and score one batch; returns its rows (split order) for the store."""
    rows: dict[str, dict] = {}
    ok: list[Decoded] = []
    for d in decoded:
        if d.error is not None:
            rows[d.sample.id] = failed_row(d.sample, d.error)
        else:
            ok.append(d)
    # group by input size: a batch is one tensor
    groups: dict[tuple, list[Decoded]] = {}
    for d in ok:
        groups.setdefault(d.blurred.shape, []).append(d)
    for group in groups.values():
        for d, restored, reason, dt in restore_group(group, method, device, split):
            if reason is not None:
                rows[d.sample.id] = failed_row(d.sample, reason)
                continue
            d.restored, d.restore_s = restored, dt
            timings["restore_s"] += dt
    scored = [d for d in ok if d.sample.id not in rows]
    # size check against the reference
    by_size: dict[tuple, list[Decoded]] = {}
    for d in scored:
        if d.reference is not None and tuple(d.reference.shape[:2]) != tuple(d.restored.shape[-2:]):
            rows[d.sample.id] = failed_row(
                d.sample, f"restored size {tuple(d.restored.shape[-2:])} != ground truth size "
                f"{tuple(d.reference.shape[:2])} ({d.sample.sharp})")
            continue
        by_size.setdefault(tuple(d.restored.shape), []).append(d)
    tm = time.perf_counter()
    for group in by_size.values():
        batch = _batch_of(group, device)
        values: dict[str, np.ndarray] = {}
        errors: dict[str, str] = {}
        for st in live:
            crash_point("metrics")
            try:
                with torch.inference_mode():
                    v = st.update(batch, store)
                if v is not None:
                    values[st.metric.name] = v
            except FaceblurError as exc:
                errors[st.metric.name] = first_line(exc.message)
            except Exception as exc:  # noqa: BLE001 — a metric bug must not lose the batch
                errors[st.metric.name] = f"{type(exc).__name__}: {first_line(str(exc))}"
        if save_images:
            for d in group:
                write_png(image_path(store.dir, d.sample.id), d.restored.permute(1, 2, 0).cpu().numpy())
        for j, d in enumerate(group):
            row = {"id": d.sample.id, "status": "ok", "reason": None,
                   "metrics": {k: float(v[j]) for k, v in values.items()},
                   "meta": d.sample.meta, "restore_s": round(d.restore_s, 6)}
            if errors:
                row["metric_errors"] = errors
            if d.warnings:
                row["warnings"] = list(dict.fromkeys(d.warnings))  # a retried batch may repeat one
            rows[d.sample.id] = row
    timings["metrics_s"] += time.perf_counter() - tm
    # keep split order
    return [rows[d.sample.id] for d in decoded if d.sample.id in rows]


def _batch_of(group: list[Decoded], device: torch.device) -> Batch:
    restored = torch.stack([d.restored for d in group]).to(device)
    reference = None
    if group[0].reference is not None:
        reference = torch.from_numpy(np.stack([d.reference for d in group])).permute(0, 3, 1, 2).to(device)
    blurred = torch.from_numpy(np.stack([d.blurred for d in group])).permute(0, 3, 1, 2).to(device)
    return Batch([d.sample for d in group], restored, reference, blurred)


def missing_metrics(row: dict, live: list[MetricState], stored_features: dict[str, set[str]]) -> list[MetricState]:
    """The live metrics a stored ok row has no result for: a paired metric without a value and
    without a recorded error, a set metric without stored per-image state (``stored_features``:
    metric name -> ids with state). A recorded error is a result: it is not retried."""
    errors = row.get("metric_errors") or {}
    need = []
    for st in live:
        name = st.metric.name
        if name in errors:
            continue
        if st.metric.kind == "set":
            if row["id"] not in stored_features.get(name, set()):
                need.append(st)
        elif name not in (row.get("metrics") or {}):
            need.append(st)
    return need


def complete_stored(decoded: list[Decoded], stored: dict[str, dict], need: dict[str, list[MetricState]],
                    method: Method, store: RunStore, device: torch.device, save_images: bool,
                    session: int | None, timings: dict, split: Split) -> tuple[list[dict], int, int]:
    """Add what stored ok rows lack, without touching what they hold: score the metrics in
    ``need[id]`` and, with ``save_images``, write the restored images that are not on disk.

    The restored image is read back from ``images/`` when it was saved; otherwise it is
    restored again (the only case where a method runs for a stored row). Returns (updated rows
    to append — only those that gained a metric, each a copy of the stored row with the new
    values merged and ``added_metrics`` naming the session —, images written, images restored
    again). Rows whose image cannot be read or restored are left as they are."""
    todo: list[Decoded] = []
    redo: list[Decoded] = []
    for d in decoded:
        if d.error is not None:
            continue
        saved = image_path(store.dir, d.sample.id)
        if saved.is_file():
            try:
                d.restored = torch.from_numpy(np.array(read_image(saved))).permute(2, 0, 1).contiguous()
                todo.append(d)
                continue
            except FaceblurError:
                pass  # a damaged saved image: restore again
        redo.append(d)
    groups: dict[tuple, list[Decoded]] = {}
    for d in redo:
        groups.setdefault(d.blurred.shape, []).append(d)
    rerestored = 0
    for group in groups.values():
        for d, restored, reason, dt in restore_group(group, method, device, split):
            if reason is None:
                d.restored = restored
                timings["restore_s"] += dt
                todo.append(d)
                rerestored += 1
    written = 0
    redo_ids = {id(d) for d in redo}
    if save_images:
        for d in todo:
            path = image_path(store.dir, d.sample.id)
            if not path.is_file() or id(d) in redo_ids:
                write_png(path, d.restored.permute(1, 2, 0).cpu().numpy())
                written += 1
    tm = time.perf_counter()
    new_values: dict[str, dict[str, float]] = {}
    new_errors: dict[str, dict[str, str]] = {}
    states = {id(st): st for d in todo for st in need.get(d.sample.id, [])}
    for st in states.values():
        sub = [d for d in todo if any(x is st for x in need.get(d.sample.id, []))
               and (d.reference is None or tuple(d.reference.shape[:2]) == tuple(d.restored.shape[-2:]))]
        by_size: dict[tuple, list[Decoded]] = {}
        for d in sub:
            by_size.setdefault(tuple(d.restored.shape), []).append(d)
        for group in by_size.values():
            batch = _batch_of(group, device)
            try:
                with torch.inference_mode():
                    v = st.update(batch, store)
                for j, d in enumerate(group):
                    new_values.setdefault(d.sample.id, {})
                    if v is not None:
                        new_values[d.sample.id][st.metric.name] = float(v[j])
            except Exception as exc:  # noqa: BLE001 — as in process_batch: a metric bug must not lose the rows
                msg = first_line(exc.message) if isinstance(exc, FaceblurError) else \
                    f"{type(exc).__name__}: {first_line(str(exc))}"
                for d in group:
                    new_errors.setdefault(d.sample.id, {})[st.metric.name] = msg
    timings["metrics_s"] += time.perf_counter() - tm
    rows = []
    for d in todo:
        iid = d.sample.id
        if iid not in new_values and iid not in new_errors:
            continue
        row = dict(stored[iid])
        row["metrics"] = {**(row.get("metrics") or {}), **new_values.get(iid, {})}
        if new_errors.get(iid):
            row["metric_errors"] = {**(row.get("metric_errors") or {}), **new_errors[iid]}
        added = [st.metric.name for st in need.get(iid, [])]
        row["added_metrics"] = {**(row.get("added_metrics") or {}), **{m: session for m in added}}
        rows.append(row)
    return rows, written, rerestored


def restore_group(group: list[Decoded], method: Method, device: torch.device, split: Split):
    """Yield (decoded, uint8 restored (3,H,W) cpu tensor | None, failure reason | None, seconds)."""
    from ..imageio import quantize, to_tensor01

    x = to_tensor01([d.blurred for d in group]).to(device)
    meta = []
    for d in group:
        # "notes": the decoded image's warnings list itself, so a method can add a line to the
        # row (e.g. the folder method saying it cropped a full photo)
        m = {**d.sample.meta, "id": d.sample.id, "blurred_name": d.sample.blurred.name,
             "notes": d.warnings}
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
    except (Exception, SystemExit) as exc:  # noqa: BLE001 — a plugin's failure (even sys.exit) is per image
        if len(group) > 1:  # isolate the image(s) that break the method
            for d in group:
                yield from restore_group([d], method, device, split)
            return
        if isinstance(exc, FaceblurError):
            reason = first_line(exc.message)
        elif isinstance(exc, SystemExit):
            reason = f"restore() raised SystemExit({exc.code!r}) (sys.exit / exit() in the method)"
        else:
            reason = f"restore() raised {type(exc).__name__}: {first_line(str(exc))}"
        yield group[0], None, reason, 0.0
        return
    dt = (time.perf_counter() - t) / len(group)
    q = quantize(out).cpu()
    for i, d in enumerate(group):
        yield d, q[i], reasons[i], dt


def failed_row(sample: Sample, reason: str) -> dict:
    return {"id": sample.id, "status": "failed", "reason": reason, "metrics": {}, "meta": sample.meta}
