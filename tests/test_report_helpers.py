"""Helpers (no tests): writers of small results trees following the results schema."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PROTOCOLS = {
    "psnr": ("PSNR", True, "uint8 RGB, peak 255, mean over images"),
    "ssim": ("SSIM", True, "uint8 RGB, Gaussian window, mean over channels"),
    "lpips": ("LPIPS", False, "AlexNet v0.1 on [-1,1]"),
    "d_arc": ("d_ARC", False, "MSE of raw ArcFace-R18 embeddings, 0-255 gray"),
}


def metric_entry(name: str, value: float | None, std: float | None = 0.5, status: str = "ok",
                 reason: str | None = None, count: int = 4) -> dict[str, Any]:
    label, hib, proto = PROTOCOLS.get(name, (name, True, f"{name} protocol"))
    return {"value": value, "std": std, "count": count, "status": status, "reason": reason,
            "label": label, "protocol": proto, "higher_is_better": hib, "family": "standard",
            "kind": "paired", "extra": {}}


def write_run(results: Path, method: str, split: str, metrics: dict[str, Any],
              rows: list[dict[str, Any]] | None = None, run_key: str = "k1",
              failed: int = 0, total: int | None = None, complete: bool = True,
              date: str = "2024-05-01T12:00:00", device: str = "cpu") -> Path:
    """Write one run whose summary follows from its rows, as the engine writes it (readers
    check that: :func:`faceblur_bench.report.store.verify_against_rows`).

    ``metrics`` values: float (ok) or a full entry dict. Without ``rows``, ``total`` (default 4)
    rows are written: ``failed`` failed ones, the others holding every paired value as given
    (their mean is that value). With ``rows``, paired values and counts are computed from them
    (``total`` defaults to their number). ``complete=False`` leaves the last image without a
    row (an unfinished run)."""
    from faceblur_bench.aggregates import paired_aggregate

    d = results / "runs" / split.replace("/", "__") / method / run_key
    d.mkdir(parents=True, exist_ok=True)
    name, _, subset = split.partition("/")
    entries = {k: (dict(v) if isinstance(v, dict) else metric_entry(k, v)) for k, v in metrics.items()}
    if rows is None:
        n = total if total is not None else 4
        n_rows = n if complete else n - 1
        paired = {k: e["value"] for k, e in entries.items()
                  if e.get("kind", "paired") == "paired" and e.get("status", "ok") == "ok"
                  and e.get("value") is not None}
        rows = [row(f"img{i}", {}, status="failed") for i in range(failed)]
        rows += [row(f"img{i}", dict(paired)) for i in range(failed, n_rows)]
    else:
        n = total if total is not None else len(rows)
    ok_rows = [r for r in rows if r["status"] == "ok"]
    for k, e in entries.items():
        if e.get("kind", "paired") == "paired" and e.get("status", "ok") == "ok":
            agg = paired_aggregate(k, ok_rows)
            e.update(value=agg["value"], count=agg["count"],
                     extra={**(e.get("extra") or {}), **agg["extra"]})
    summ = {
        "schema": 1, "run_key": run_key, "method": method, "method_options": {},
        "checkpoint": None, "checkpoint_sha256": None, "num_parameters": 1000,
        "split": split, "split_name": name, "subset": subset or None,
        "split_fingerprint": "abc", "partial": False, "complete": len(rows) >= n,
        "counts": {"total": n, "done": len(rows), "ok": len(ok_rows), "failed": len(rows) - len(ok_rows)},
        "failures": [{"id": r["id"], "reason": "MethodOutputError: NaN in output"}
                     for r in rows if r["status"] != "ok"],
        "metrics": entries,
        "timings": {"total_s": 1.0, "restore_s": 0.5, "metrics_s": 0.5},
        "provenance": {"faceblur_bench": "0.1.0", "python": "3.11", "torch": "2.x",
                       "device": device, "device_name": None, "date": date, "seed": 0,
                       "cudnn_deterministic": True, "autocast": False, "packages": {}},
    }
    (d / "summary.json").write_text(json.dumps(summ, allow_nan=True))
    with (d / "rows.jsonl").open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r, allow_nan=True) + "\n")
    return d


def row(id_: str, metrics: dict[str, float], status: str = "ok", **meta: Any) -> dict[str, Any]:
    return {"id": id_, "status": status, "reason": None if status == "ok" else "boom",
            "metrics": metrics, "meta": meta, "restore_s": 0.01}


def nan() -> float:
    return math.nan


def write_lai_real(top: Path) -> None:
    """Two small real-blur photos (``face``, ``face2``: the astronaut's face box-blurred 3x3 and
    7x7, 96x96) in ``top`` — a ``lai-real`` split without its other files."""
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    top.mkdir(parents=True, exist_ok=True)
    img = skdata.astronaut()[20:300, 140:420]
    for name, k in (("face", 3), ("face2", 7)):
        small = np.asarray(Image.fromarray(img).resize((96, 96), Image.BICUBIC)).astype(np.float64)
        pad = np.pad(small, ((k // 2,) * 2, (k // 2,) * 2, (0, 0)), mode="edge")
        blur = sum(pad[i:i + 96, j:j + 96] for i in range(k) for j in range(k)) / (k * k)
        Image.fromarray(np.round(blur).astype(np.uint8)).save(top / f"{name}.png")
