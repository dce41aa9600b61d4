"""``evaluate(RunConfig)``: one method on one split — resume, batches, per-image failures, summary."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import weights
from ..data import moments
from ..data.base import Sample, Split, open_split
from ..data.origin import split_origin
from ..devices import resolve_device
from ..errors import (
    SEED_MAX,
    WAIT_MAX_S,
    DataLayoutError,
    DiskFullError,
    UsageError,
    WeightsIntegrityError,
    WeightsMissingError,
    cannot_start,
    stored_warnings_once,
    warn_stored,
    check_range,
)
from ..methods.base import Method, check_options_json
from ..methods.catalog import builtin_baselines, check_checkpoint_takers
from ..metrics import face_analysis, reference_cache
from ..metrics.base import MetricContext
from ..registry import methods as method_registry
from ..registry import metrics as metric_registry
from ..results import run_dir as results_run_dir
from ..results import RunStore, check_write_inside, run_key
from . import distributed
from .scoring import complete_stored, decode_batch, missing_metrics, process_batch, setup_metrics
from .summary import provenance, summarise

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


def default_method_names(split: str, data_root: str | Path | None = None) -> list[str]:
    """``run``'s methods without ``--method``: the built-in baselines that can run on ``split``
    — a method that deconvolves with the true kernel (``uses_kernel``, Richardson–Lucy, Wiener)
    only where the split provides kernels (not on ``lai-real`` or ``folder:DIR``). When the split
    cannot be opened every baseline is kept (the run then names the missing data)."""
    from ..errors import FaceblurError

    names = builtin_baselines()
    try:
        split_obj = open_split(split, data_root, allow_partial=True)  # only its kernels matter here
        samples = split_obj.samples()
    except FaceblurError:
        return names
    if not samples:
        return names
    has_kernel = split_obj.kernel(samples[0]) is not None
    return [n for n in names if has_kernel or not method_registry.get(n).uses_kernel]


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
    #: the run's name in tables, the leaderboard, figures and LaTeX (``run --label``); not part
    #: of the run key: a later run with another label renames the stored run; None keeps its name
    label: str | None = None
    #: one face analysis per image shared by every face metric (values are the same either way;
    #: off only to measure what it saves: faceblur_bench.metrics.face_analysis)
    share_face_analysis: bool = True


def evaluate(cfg: RunConfig, progress: Any = None) -> dict:
    """Run ``cfg.method`` on ``cfg.split``, score with ``cfg.metrics``; return the run summary.

    ``progress`` is an optional object with ``start(total, done, description)`` and
    ``advance(n)`` (the CLI passes a rich progress bar). A stored file that is not used as it is
    (tampered, torn) is warned about once per call, however often it is read.
    """
    with stored_warnings_once():
        return _evaluate(cfg, progress)


def _evaluate(cfg: RunConfig, progress: Any) -> dict:
    check_range("--seed", cfg.seed, 0, SEED_MAX, integer=True)  # before numpy sees it
    check_range("--wait", cfg.wait, 0, WAIT_MAX_S)  # a negative or NaN wait would block forever
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = resolve_device(cfg.device)
    # refused before any work: an override that is not a file, options the summary cannot store
    weights.check_overrides(cfg.weights_overrides)
    if not isinstance(cfg.method, Method):
        check_options_json(cfg.method_options, str(cfg.method))
    world = distributed.init(device)  # a torchrun rank, or the single process
    device = distributed.rank_device(device, world)
    if not world.is_main:
        progress = None
    split = cfg.split if isinstance(cfg.split, Split) else open_split(cfg.split, cfg.data_root, cfg.allow_partial)
    method = cfg.method if isinstance(cfg.method, Method) else make_method(cfg.method, cfg.method_options)
    method_name = method.name or type(method).__name__
    check_options_json(method.options, method_name)
    moments.check_protocol(cfg.protocol, method_name, method.accepts_moment)
    method.check_protocol_options(cfg.protocol, method.options)
    # a checkpoint the method ignores would still enter the run identity (the CLI refuses it
    # before torch loads; a notebook's RunConfig is refused here, by the same rule)
    check_checkpoint_takers([method_name], cfg.checkpoint, lambda _: type(method).takes_checkpoint())
    try:
        with weights.recording() as method_weights:
            method.load(cfg.checkpoint, device)
    except (WeightsMissingError, WeightsIntegrityError) as exc:  # the run cannot start: exit 2
        raise cannot_start(exc) from exc

    samples = split.samples()
    fingerprint = split_fingerprint(split, samples)
    data_origin = split_origin(split, samples)  # on the whole split, before --limit
    all_samples = samples
    if cfg.limit is not None:
        samples = samples[: cfg.limit]
    if cfg.protocol == "s2v":  # limit counts blurred images; each becomes n (window, moment) rows
        samples = moments.expand_moments(samples, split.full_name)
        if cfg.limit is not None:
            all_samples = moments.expand_moments(all_samples, split.full_name)
        else:
            all_samples = samples
    # images of the whole split, in the unit of counts.total: what a limited run is a part of
    split_images = len(all_samples)
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
    check_write_inside(cfg.results_dir, run_dir)  # no link under --out leads the run elsewhere

    ctx = MetricContext(device=device, split=split, weights_overrides=cfg.weights_overrides)
    face_analysis.set_sharing(ctx, cfg.share_face_analysis)
    disk = Path(cfg.results_dir) / "cache" / "reference" if cfg.reference_cache else None
    ctx.shared(reference_cache.SHARED_KEY,  # ground-truth features once per file (and across runs)
               lambda: reference_cache.ReferenceCache(disk_root=disk, split_fingerprint=fingerprint,
                                                      results_root=Path(cfg.results_dir),
                                                      device=device))
    # metrics merge: those already stored with this run stay in its summary (the run key does
    # not include the metric list), the requested ones are added
    metric_names = _stored_metric_names(run_dir, cfg.metrics)
    need_reference = split.has_reference

    t0 = time.perf_counter()
    timings = {"restore_s": 0.0, "metrics_s": 0.0, "decode_s": 0.0}
    summary: dict = {}
    with distributed.open_store(run_dir, cfg.wait, world, ids) as store:
        session = _Session(store, device, cfg.seed, cfg.batch_size)
        # ok rows are never recomputed; failed images are retried (the cause may have been fixed).
        # Rank 0 reads the store before any rank appends: every rank shards the same list.
        stored_ok: dict[str, dict] = {}
        if world.is_main:
            by_id = {r["id"]: r for r in store.rows()}  # the latest row of an id wins
            stored_ok = {s.id: by_id[s.id] for s in samples if by_id.get(s.id, {}).get("status") == "ok"}
        done = distributed.broadcast(set(stored_ok) if world.is_main else None, world)
        pending = distributed.shard([s for s in samples if s.id not in done], world)
        previous = _previous_summary(store.summary_path)
        if (not world.sharded and not pending and not cfg.runtime and previous is not None
                and _stored_run_is_current(store, previous, samples, stored_ok, metric_names, cfg)):
            # nothing to compute: answer from the store without building a single network
            # (the same summary the full path below would keep; a no-op run takes ~2 s, not ~5)
            summary = _relabel(store, dict(previous), cfg.label)
            summary["run_dir"] = str(run_dir)
            summary["this_session"] = {"session": None, **session.counts,
                                       "reused": _reused(stored_ok, store.sessions())}
            return summary
        states = setup_metrics(metric_names, split, ctx, cfg.strict, scale=method.scale)
        live = [st for st in states if st.status == "ok"]
        if world.is_main and stored_ok and previous is not None:
            _refuse_changed_metric_weights(previous, live, stored_ok)
        if world.sharded:  # one session record for all ranks, written by rank 0
            any_pending = sum(distributed.gather(len(pending), world)) > 0
            session.idx = distributed.broadcast(
                session.index() if (world.is_main and any_pending) else None, world)
        if progress is not None and world.sharded:  # rank 0 shows its own share
            progress.start(len(pending), 0, f"{method_name} on {split.full_name} (rank 0 of {world.size})")
        elif progress is not None:
            progress.start(len(samples), len(samples) - len(pending), f"{method_name} on {split.full_name}")
        stopped: BaseException | None = None  # an interrupt or a full disk: summarise, then re-raise
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
                    idx = session.index()
                    for r in rows:
                        r["session"] = idx
                    store.append_rows(rows)
                    session.counts["computed"] += sum(r["status"] == "ok" for r in rows)
                    session.counts["failed"] += sum(r["status"] != "ok" for r in rows)
                    if progress is not None:
                        progress.advance(len(rows))
            if world.is_main:  # stored rows lacking a metric: rank 0 (it alone read them)
                _complete_stored(store, stored_ok, samples, live, method, device, cfg, timings, split,
                                 session, progress, need_reference)
        except (KeyboardInterrupt, DiskFullError) as exc:
            stopped = exc
        distributed.barrier(world)  # every rank's rows and feature files are on disk
        timings = distributed.sum_timings(timings, world)
        if not world.is_main:  # summary and set metrics once, by rank 0, over the union of the shards
            return distributed.broadcast(None, world)
        from ..results import fold_row_shards

        fold_row_shards(store.dir, [s.id for s in samples])  # rows.jsonl in split order, as one process
        runtime = _previous_runtime(store.summary_path)
        if cfg.runtime and stopped is None:
            runtime = measure_method_runtime(method, device, cfg.runtime_repeats)
            session.index()
        reused = _reused(stored_ok, store.sessions())
        summary_written = True
        rebuilt = False  # a stored summary that did not match its rows, rewritten without computing
        if (session.idx is None and previous is not None and set(metric_names) <= set(previous["metrics"])
                and _summary_still_true(store, previous)):
            # this invocation computed nothing: the stored summary (its provenance, dates and
            # timings) stays exactly as it is — a no-op run does not rewrite history (a new
            # --label is the one change it makes)
            summary = _relabel(store, previous, cfg.label)
        else:
            if session.idx is None and previous is not None:
                rebuilt = not _summary_still_true(store, previous)
                if rebuilt:
                    warn_stored(f"{store.summary_path} {_why_rebuilt(store, previous)}: rebuilt from the rows",
                                stacklevel=2)
            summary = summarise(store.dir, samples, states, ctx, method=method, cfg=cfg, split=split,
                                ident=ident, key=key, device=device,
                                timings={**timings, "total_s": time.perf_counter() - t0},
                                method_weights=method_weights)
            sessions = store.sessions()
            if sessions:
                summary["provenance"] = {k: v for k, v in sessions[-1].items() if k != "index"}
            if session.idx is None and previous is not None:
                # only the metric list changed (e.g. a metric added that cannot run here):
                # the timings and provenance stay those of the sessions that computed
                summary["timings"] = previous.get("timings", summary["timings"])
                summary["provenance"] = previous.get("provenance", summary["provenance"])
            summary["sessions"] = _session_table(store.dir, samples, sessions)
            summary["data_origin"] = data_origin
            if runtime is not None:
                summary["runtime"] = runtime
            summary["protocol"] = cfg.protocol
            label = cfg.label if cfg.label is not None else (previous or {}).get("label")
            if label is not None:
                summary["label"] = label
            if cfg.protocol == "s2v":
                summary["frame_order"] = moments.frame_orders(samples)
                summary["protocol_note"] = moments.protocol_note(cfg.protocol, summary["frame_order"])
            if world.sharded:
                summary["world_size"] = world.size
            summary["split_images"] = split_images
            _seal(store, summary)
            try:
                store.write_summary(summary)
            except DiskFullError:
                if stopped is None:
                    raise
                summary_written = False  # the rows are what counts; the next run rebuilds the summary
    summary["run_dir"] = str(run_dir)
    # what this invocation did (returned, not stored: a no-op run leaves summary.json unchanged)
    summary["this_session"] = {"session": session.idx, **session.counts, "reused": reused,
                               "rebuilt": rebuilt}
    if world.sharded:  # the other ranks wait for rank 0's summary (distributed.broadcast above)
        distributed.broadcast(summary, world)
    if stopped is not None:
        stopped.stored = {"run_dir": str(run_dir), "method": summary["method"],
                          "split": summary["split"], "counts": dict(summary["counts"]),
                          "summary_written": summary_written}
        if isinstance(stopped, DiskFullError):
            stopped.message += (f"; {summary['counts']['done']} of {summary['counts']['total']} "
                                f"images are stored in {run_dir}"
                                + ("" if summary_written else " (summary.json did not fit)"))
        raise stopped
    return summary


def _relabel(store: RunStore, summary: dict, label: str | None) -> dict:
    """``summary`` with ``label`` (written to the store, under its lock, when it changes)."""
    if label is None or summary.get("label") == label:
        return summary
    summary = {**summary, "label": label}
    store.write_summary(summary)
    return summary


class _Session:
    """This invocation's session record, started lazily: only an invocation that computes
    something (rows, added metrics, saved images, a runtime) writes provenance."""

    def __init__(self, store: RunStore, device: torch.device, seed: int, batch_size: int):
        self.store, self.device, self.seed, self.batch_size = store, device, seed, batch_size
        self.idx: int | None = None
        self.counts = {"computed": 0, "failed": 0, "completed": 0, "images_saved": 0, "rerestored": 0}

    def index(self) -> int:
        if self.idx is None:
            existing = self.store.sessions()
            rows = self.store.rows()
            if not existing and rows:
                # rows stored before sessions were recorded: keep their provenance as session 0
                old = _previous_summary(self.store.summary_path) or {}
                self.store.start_session({**(old.get("provenance") or {"date": None}),
                                          "reconstructed": "from summary.json (rows without a session)"})
            self.idx = self.store.start_session(provenance(self.device, self.seed, self.batch_size))
        return self.idx


def _stored_metric_names(run_dir: Path, requested: Sequence[str]) -> list[str]:
    """Metrics already in the stored summary of this run (in their order), then the requested
    ones not among them; unregistered stored names (a plugin since removed) are dropped."""
    prev = _previous_summary(run_dir / "summary.json") or {}
    names = [n for n in (prev.get("metrics") or {}) if n in metric_registry]
    return names + [n for n in requested if n not in names]


def _complete_stored(store: RunStore, stored_ok: dict[str, dict], samples: list[Sample],
                     live: list, method: Method, device: torch.device, cfg: RunConfig,
                     timings: dict, split: Split, session: _Session, progress: Any,
                     need_reference: bool) -> None:
    """Stored ok rows that lack a live metric get it (restored image read back from images/,
    else restored again); with ``save_images`` the images not on disk are restored and saved.
    Stored values are never changed."""
    from ..results import feature_ids, image_path

    feats = {st.metric.name: feature_ids(store.dir, st.metric.name) for st in live if st.metric.kind == "set"}
    need: dict[str, list] = {}
    todo: list[Sample] = []
    for s in samples:
        row = stored_ok.get(s.id)
        if row is None:
            continue
        missing = missing_metrics(row, live, feats)
        save = cfg.save_images and not image_path(store.dir, s.id).is_file()
        if missing or save:
            need[s.id] = missing
            todo.append(s)
    if not todo:
        return
    if progress is not None:
        what = "adding metrics" if any(need.values()) else "saving images"
        progress.start(len(todo), 0, f"{method.name or type(method).__name__}: {what} for stored rows")
    for i in range(0, len(todo), cfg.batch_size):
        chunk = todo[i:i + cfg.batch_size]
        decoded = decode_batch(chunk, need_reference)
        idx = session.index()
        rows, written, rerestored = complete_stored(decoded, stored_ok, need, method, store, device,
                                                    cfg.save_images, idx, timings, split)
        store.append_rows(rows)
        session.counts["completed"] += len(rows)
        session.counts["images_saved"] += written
        session.counts["rerestored"] += rerestored
        if progress is not None:
            progress.advance(len(chunk))


def _summary_still_true(store: RunStore, previous: dict) -> bool:
    """A stored summary a no-op run may leave as it is: it parses as a :class:`RunSummary` and
    the rows hold nothing it does not account for (no malformed line, no conflicting duplicate
    row — a hand-edited store gets a rebuilt summary that reports it)."""
    from ..results import RunSummary, SummaryFormatError, latest_rows, scan_rows

    from ..aggregates import summary_digest

    try:
        RunSummary.parse(previous, store.summary_path)
    except SummaryFormatError:
        return False
    scan = scan_rows(store.dir / "rows.jsonl", warn=False)  # all rows (a rank's store writes a shard)
    by_id, conflicts = latest_rows(scan.rows)
    if scan.discarded or conflicts:
        return False
    # sealed to its rows: an edited value, count or row (or a summary from before digests) is
    # rebuilt, never left in place and reported as "left as it was"
    return previous.get("digest") == summary_digest(previous, by_id.values())


def _why_rebuilt(store: RunStore, previous: dict) -> str:
    """Which file made a stored summary untrue: the rows (malformed lines it did not count) or
    the summary itself (edited, or from before summaries were sealed)."""
    from ..results import scan_rows

    lines = [n for n, _ in scan_rows(store.dir / "rows.jsonl", warn=False).discarded]
    known = int(previous.get("rows_discarded") or 0)
    if len(lines) > known:
        shown = ", ".join(map(str, lines[:5])) + (", …" if len(lines) > 5 else "")
        return (f"counted {known} malformed line(s) of rows.jsonl, the file now has {len(lines)} "
                f"(line(s) {shown}: the rows file was damaged after the summary was sealed)")
    return "does not match rows.jsonl (edited, or written before summaries were sealed to their rows)"


def _seal(store: RunStore, summary: dict) -> None:
    """``summary["digest"]``: the summary sealed to the rows it summarises
    (:func:`faceblur_bench.aggregates.summary_digest`); every reader and a no-op run check it."""
    from ..aggregates import summary_digest
    from ..results import latest_rows, scan_rows

    summary.pop("digest", None)
    # rows.jsonl, not store.rows_path: rank 0 of a sharded run seals the folded rows, not its shard
    rows = latest_rows(scan_rows(store.dir / "rows.jsonl", warn=False).rows)[0]
    summary["digest"] = summary_digest(summary, rows.values())


def _stored_run_is_current(store: RunStore, previous: dict, samples: list[Sample],
                           stored_ok: dict[str, dict], metric_names: Sequence[str], cfg: RunConfig) -> bool:
    """True when a full pass would compute nothing and keep ``previous`` as it is — decided from
    the store and the file system alone, before any metric network is built.

    Every sample has a stored ok row; every metric asked for is in ``previous`` and is either
    ``ok`` with a result on every row (value, recorded error or stored per-image state),
    ``not-applicable`` (a property of split and method, both in the run key), or ``unavailable``
    because declared weight files (``Metric.weights``) are missing and still none of them is
    found. Any other case (a file that appeared, a missing package, a rejected file, an error,
    images to save) takes the full path, which decides it by building the metrics."""
    from ..results import feature_ids, image_path

    if len(stored_ok) != len(samples):
        return False
    entries = previous.get("metrics") or {}
    if any(n not in entries for n in metric_names):
        return False
    for name in metric_names:
        entry = entries[name] if isinstance(entries[name], dict) else {}
        status = entry.get("status")
        cls = metric_registry.get(name)
        if status == "ok":
            if cls.kind == "set":
                have = feature_ids(store.dir, name)
                if any(sid not in have for sid in stored_ok):
                    return False
            elif any(name not in (r.get("metrics") or {}) and name not in (r.get("metric_errors") or {})
                     for r in stored_ok.values()):
                return False
        elif status == "unavailable":
            if not str(entry.get("reason", "")).startswith("weights missing:") or not cls.weights:
                return False
            for wname in cls.weights:
                wf = weights.get_entry(wname)
                if any(p.exists() for p in weights.candidates(wf, cfg.weights_overrides)):
                    return False
        elif status != "not-applicable":
            return False
    if cfg.save_images and any(not image_path(store.dir, sid).is_file() for sid in stored_ok):
        return False
    return _summary_still_true(store, previous)


def _refuse_changed_metric_weights(previous: dict, live: list, stored_ok: dict[str, dict]) -> None:
    """Stop before a metric mixes two networks in one number: its stored values were computed
    with a weight file whose sha256 differs from the file it would use now (a re-download of
    another release, a different override). The run key names the method and data, not the
    metrics' weights, so this is where such a change is caught."""
    entries = previous.get("metrics") or {}
    for st in live:
        name = st.metric.name
        before = {w.get("name"): w for w in (entries.get(name) or {}).get("weights") or []
                  if isinstance(w, dict)}
        if not before:
            continue
        if st.metric.kind != "set" and not any(name in (r.get("metrics") or {}) for r in stored_ok.values()):
            continue  # no stored value of this paired metric to mix with
        for wname, path in st.weights_used:
            old = before.get(wname)
            if old is None or not old.get("sha256"):
                continue
            now = weights.sha256_of(Path(path))
            if now != old["sha256"]:
                raise UsageError(
                    f"metric {name!r}: weight file {wname} is not the one its stored values were "
                    f"computed with (sha256 {old['sha256'][:12]}… at {old.get('path')}, now "
                    f"{now[:12]}… at {path})",
                    "scoring the remaining images with other weights would mix two networks in one "
                    "number: put the original file back, or score into a new results directory (--out)")


def _previous_summary(path: Path) -> dict | None:
    """The stored ``summary.json`` when it is a valid run summary (:class:`RunSummary`); None
    when missing or unreadable, and None with a :class:`ResultsWarning` when a field has the
    wrong type (a tampered file): the run then rebuilds it from the rows."""
    import json

    from ..files import read_regular
    from ..results import RunSummary, SummaryFormatError

    try:
        data = json.loads(read_regular(path))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "metrics" not in data:
        return None
    try:
        RunSummary.parse(data, path)
    except SummaryFormatError as exc:
        warn_stored(f"{exc.message}; the summary is rebuilt from the rows", stacklevel=2)
        return None
    return data


def _reused(stored_ok: dict[str, dict], sessions: list[dict]) -> dict:
    """How many stored rows this invocation reused, and when they were computed."""
    dates = {int(r.get("index", -1)): r.get("date") for r in sessions}
    when = sorted({str(dates.get(int(r.get("session", 0)))) for r in stored_ok.values()
                   if dates.get(int(r.get("session", 0)))})
    return {"rows": len(stored_ok), "dates": when}


def _session_table(run_dir: Path, samples: list[Sample], sessions: list[dict]) -> list[dict]:
    """``summary["sessions"]``: every session's provenance with how many of the run's current
    rows it computed (``rows``) and which metrics it added to earlier rows (``added_metrics``)."""
    from ..results import read_rows

    wanted = {s.id for s in samples}
    latest = {r["id"]: r for r in read_rows(Path(run_dir) / "rows.jsonl") if r["id"] in wanted}
    out = []
    for rec in sessions:
        i = int(rec.get("index", -1))
        rows = sum(1 for r in latest.values() if int(r.get("session", 0)) == i)
        added: dict[str, int] = {}
        for r in latest.values():
            for m, si in (r.get("added_metrics") or {}).items():
                if si == i:
                    added[m] = added.get(m, 0) + 1
        keep = ("index", "date", "faceblur_bench", "python", "torch", "device", "device_name",
                "seed", "torch_threads", "batch_size", "packages", "reconstructed")
        out.append({**{k: rec.get(k) for k in keep if k in rec}, "rows": rows, "added_metrics": added})
    return out


def measure_method_runtime(method: Method, device: torch.device, repeats: int = 50) -> dict:
    """The runtime protocol of metrics.runtime at 128x128 (batch 1 and 16; fp32, and bf16 on CUDA
    for methods with a torch network).

    ``per_image_s`` (batch 1, fp32 median) is the figure the papers' runtime columns report.
    """
    from ..metrics.runtime import applicable_dtypes, measure_runtime

    dtypes = applicable_dtypes(method) if device.type == "cuda" else ("fp32",)
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
    runtime = (_previous_summary(summary_path) or {}).get("runtime")
    return runtime if isinstance(runtime, dict) else None


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
