"""Runtime and size of a restoration method: how long ``Method.restore`` takes.

Protocol: random inputs ``(B, 3, H, W)`` float32 in [0, 1] on the device, ``torch.inference_mode``;
``warmup`` untimed calls, then ``repeats`` timed calls, each one ``restore()`` call.
- CUDA: a pair of CUDA events around each call (``elapsed_time`` after synchronising), so the
  GPU time of the call is measured without host-side jitter between calls;
- CPU: ``time.perf_counter`` around each call.
The reported figure is the median per call (and per image = median / B) with the 10th/90th
percentiles. ``bf16`` runs the call under ``torch.autocast(device_type, dtype=torch.bfloat16)``
(the method's weights stay fp32); a configuration the device cannot run (no bf16 support, out of
memory) is recorded with an ``error`` instead of a time. Parameters are counted with
``Method.num_parameters()`` and reported in millions. Methods that read the true kernel
(``uses_kernel``) get a 15x15 unit-sum linear motion kernel per image in ``meta``.
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from ..methods.base import Method
from .catalog import DTYPES  # torch-free: `runtime --dtype` is checked before torch loads



def device_name(device: torch.device) -> str:
    """Human-readable device name: the GPU's name, or the CPU model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "fp32":
        return contextlib.nullcontext()
    if dtype == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError(f"{device_name(device)} does not support bfloat16")
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown dtype {dtype!r}; use one of {DTYPES}")


def _percentile(values: Sequence[float], q: float) -> float:
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def time_calls(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int,
               tick: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls.

    ``tick`` (progress) is called after every call, outside the timed interval.
    """
    tick = tick or (lambda: None)
    for _ in range(warmup):
        fn()
        tick()
    times: list[float] = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
            tick()
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0)
            tick()
    return times


def applicable_dtypes(method: Method) -> tuple[str, ...]:
    """The dtypes worth measuring by default: ``bf16`` autocast changes only torch networks, so
    a method without one (numpy/scikit-image code such as the Wiener baseline) gets ``fp32``.
    A method counts as a torch network when it holds an ``nn.Module`` in ``net``."""
    return DTYPES if isinstance(getattr(method, "net", None), torch.nn.Module) else ("fp32",)


def timing_meta(method: Method, batch: int, kernel_size: int = 15) -> list[dict] | None:
    """Per-image ``meta`` for timing: a unit-sum horizontal motion kernel for oracle methods."""
    if not method.uses_kernel:
        return None
    k = np.zeros((kernel_size, kernel_size))
    k[kernel_size // 2, :] = 1.0 / kernel_size
    return [{"kernel": k.copy(), "kernel_size": kernel_size} for _ in range(batch)]


def measure_runtime(method: Method, device: torch.device | str,
                    sizes: Iterable[tuple[int, int]] = ((128, 128),),
                    batches: Iterable[int] = (1, 16),
                    dtypes: Iterable[str] = DTYPES,
                    repeats: int = 50, warmup: int = 10, seed: int = 0,
                    progress: Callable[[str], None] | None = None,
                    tick: Callable[[], None] | None = None) -> dict[str, Any]:
    """Time ``method.restore`` for every (size, batch, dtype) combination.

    ``progress`` receives the configuration about to be timed; ``tick`` is called after each
    of its ``1 + warmup + repeats`` calls (untimed), for a progress bar.

    ``method`` must already be built; it is moved to ``device`` with ``method.load`` when it is
    elsewhere. ``sizes`` are input ``(H, W)`` (outputs are ``scale`` times larger). Returns::

        {"method", "device", "device_type", "timer", "torch", "threads" (CPU), "parameters",
         "parameters_m", "scale", "repeats", "warmup",
         "results": [{"size": [H, W], "batch", "dtype", "median_ms", "per_image_ms", "p10_ms",
                      "p90_ms", "min_ms", "images_per_s"} | {..., "error": str}]}
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0 (got {repeats}, {warmup})")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if torch.device(method.device) != device:
        method.load(method.checkpoint, device)
    dtypes = list(dtypes)
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"unknown dtype {d!r}; use one of {DTYPES}")
    n_params = method.num_parameters()
    gen = torch.Generator().manual_seed(seed)
    results: list[dict[str, Any]] = []
    for h, w in sizes:
        for b in batches:
            x = torch.rand((b, 3, h, w), generator=gen).to(device)
            meta = timing_meta(method, b)
            for dt in dtypes:
                row: dict[str, Any] = {"size": [h, w], "batch": b, "dtype": dt}
                if progress:
                    progress(f"{h}x{w} batch {b} {dt}")
                try:
                    def call(x: torch.Tensor = x, meta: list[dict] | None = meta, dt: str = dt) -> None:
                        with _autocast(device, dt), torch.inference_mode():
                            method.restore(x, meta)

                    with torch.inference_mode(), _autocast(device, dt):
                        y = method.restore(x, meta)
                    if tick:
                        tick()
                    expected = (b, 3, h * method.scale, w * method.scale)
                    if tuple(y.shape) != expected:
                        raise RuntimeError(f"restore() returned {tuple(y.shape)}, expected {expected}")
                    del y
                    t = time_calls(call, device, repeats, warmup, tick)
                    med = statistics.median(t)
                    row.update(median_ms=med, per_image_ms=med / b, p10_ms=_percentile(t, 0.1),
                               p90_ms=_percentile(t, 0.9), min_ms=min(t),
                               images_per_s=1000.0 * b / med if med > 0 else float("inf"))
                except torch.OutOfMemoryError:
                    row["error"] = "out of memory"
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                except RuntimeError as exc:  # e.g. an op without a bf16 kernel
                    row["error"] = str(exc).splitlines()[0][:200]
                results.append(row)
    info: dict[str, Any] = {
        "method": method.name or type(method).__name__,
        "device": device_name(device),
        "device_type": device.type,
        "timer": "cuda-events" if device.type == "cuda" else "perf_counter",
        "torch": torch.__version__,
        "parameters": n_params,
        "parameters_m": None if n_params is None else round(n_params / 1e6, 3),
        "scale": method.scale,
        "repeats": repeats,
        "warmup": warmup,
        "results": results,
    }
    if device.type == "cpu":
        info["threads"] = torch.get_num_threads()
    return info


__all__ = ["DTYPES", "applicable_dtypes", "device_name", "measure_runtime", "time_calls", "timing_meta"]
