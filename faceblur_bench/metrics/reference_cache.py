"""Ground-truth-side features computed once: per run in memory, across runs on disk.

MSPL and Shen reuse each sharp image for 80 blurred inputs (the demo for 8), and every method of
a split shares them, so the reference half of a paired network metric (LPIPS activations,
d_VGG pool5 features, ResNetArcFace-18 embeddings, the ground truth's MTCNN detections and
ArcFace embeddings) is computed once per distinct ground-truth file.

Policy
------
- **Computed one image at a time.** The reference side of an image is always computed on that
  image alone (a batch of one), cache or no cache, hit or miss — so a value never depends on
  which other images shared its batch, and scores are bit-identical with the cache on, off,
  cold or warm.
- **Memory (per run):** least-recently-used entries are dropped once their size passes
  ``FACEBLUR_REFERENCE_CACHE_MB`` (default 1024 MiB; 0 keeps nothing); a dropped entry is read
  back from disk if the disk cache holds it, else recomputed.
- **Key:** a SHA-1 of the ground truth's decoded pixels (:func:`pixel_key`), not its file
  name: a name reused for other content never returns another image's features.
- **Disk (across runs):** ``<results>/cache/reference/<namespace>/<sha256(pixel key)>.pt``
  where ``namespace`` hashes split fingerprint × metric protocol (name, protocol text, input
  convention) × sha256 of every weight file involved × torch version and device type (the
  kernels that computed the features: a GPU's bits are never read back on a CPU, nor the
  reverse): a change of any part is a different directory, so stale features are never read.
  Files are written to a temporary name and renamed (atomic; concurrent runs write identical bytes), read with ``torch.load(...,
  weights_only=True)``; an unreadable file is recomputed and rewritten.

Values are tensors (or tuples/lists of tensors, or None) on the CPU; metrics move them to
their device.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..files import outside_link, sha256_file
from .base import Batch, MetricContext

#: ``ctx.shared`` key of the run's cache (the engine creates it with the disk layer)
SHARED_KEY = ("reference-cache",)
DEFAULT_BUDGET_MB = 1024.0


def memory_budget_bytes() -> int:
    """``FACEBLUR_REFERENCE_CACHE_MB`` in bytes (default 1024 MiB)."""
    try:
        mb = float(os.environ.get("FACEBLUR_REFERENCE_CACHE_MB", DEFAULT_BUDGET_MB))
    except ValueError:
        mb = DEFAULT_BUDGET_MB
    return max(0, int(mb * 2**20))


def package_version(name: str) -> str | None:
    """Installed version of a distribution (part of a namespace when its code computes features)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 64


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().contiguous()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def pixel_key(image: torch.Tensor) -> str:
    """Cache key of one decoded ground truth ``(3, H, W)`` uint8: SHA-1 of its pixels and shape.

    Keyed by content, not by file name: a name reused for other pixels (a synthetic batch in a
    notebook, a file rewritten mid-run) never returns another image's features, and identical
    images under two names share one entry."""
    pixels = image.detach().cpu().contiguous().numpy()
    return hashlib.sha1(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()


class ReferenceCache:
    """Per-ground-truth results of reference-side computations (see the module policy)."""

    def __init__(self, budget_bytes: int | None = None, disk_root: str | Path | None = None,
                 split_fingerprint: str | None = None, results_root: str | Path | None = None,
                 device: str | torch.device = "cpu"):
        #: what computed the features, part of every namespace (torch version, device type)
        self.compute_env = {"torch": torch.__version__, "device": torch.device(device).type}
        self.budget = memory_budget_bytes() if budget_bytes is None else int(budget_bytes)
        self.disk_root = None if disk_root is None or split_fingerprint is None else Path(disk_root)
        self.split_fingerprint = split_fingerprint
        #: the results directory the disk layer must stay inside (a link out of it is not used)
        self.results_root = None if results_root is None else Path(results_root)
        self._mem: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._size = 0
        #: counters for tests and benchmarks: computed / memory hits / disk hits
        self.stats = {"computed": 0, "memory": 0, "disk": 0}

    def namespace(self, protocol: dict[str, Any], weight_files: Sequence[str | Path] = ()) -> str:
        """Key of one metric protocol on this split: split fingerprint × protocol × weights
        sha256 × torch version and device type (:attr:`compute_env`)."""
        blob = json.dumps({"split": self.split_fingerprint, "protocol": protocol,
                           "weights": [sha256_file(p) for p in weight_files],
                           "computed_by": self.compute_env}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def per_reference(self, namespace: str, batch: Batch,
                      compute: Callable[[torch.Tensor], Any]) -> list[Any]:
        """``compute(batch.reference[i:i+1])`` for every image ``i``, once per distinct ground truth.

        ``compute`` takes a uint8 ``(1, 3, H, W)`` tensor on the batch's device and returns
        tensors (or tuples/lists of tensors, or None); results come back on the CPU.
        """
        return self.per_reference_at(namespace, batch, lambda y, i: compute(y))

    def per_reference_at(self, namespace: str, batch: Batch,
                         compute: Callable[[torch.Tensor, int], Any]) -> list[Any]:
        """:meth:`per_reference` with ``compute(batch.reference[i:i+1], i)``: the index lets a
        computation use what is shared per image of the batch (the ground truth's MTCNN
        detections, :func:`~faceblur_bench.metrics.identity.reference_faces`)."""
        if batch.reference is None:
            raise ValueError("per_reference needs a batch with ground-truth images")
        # hashed once per batch, not once per metric (and moved off the GPU once)
        keys = batch.memo(("reference-pixel-keys",), lambda: [pixel_key(r) for r in batch.reference])
        return [self._get(namespace, key, lambda i=i: compute(batch.reference[i:i + 1], i))
                for i, key in enumerate(keys)]

    # -- layers -----------------------------------------------------------------------------------
    def _get(self, namespace: str, gt: str, compute: Callable[[], Any]) -> Any:
        key = (namespace, gt)
        if key in self._mem:
            self._mem.move_to_end(key)
            self.stats["memory"] += 1
            return self._mem[key]
        value = self._read(key)
        if value is not None:
            self.stats["disk"] += 1
        else:
            with torch.inference_mode():
                value = _to_cpu(compute())
            self.stats["computed"] += 1
            self._write(key, value)
        self._remember(key, value)
        return value

    def _remember(self, key: tuple[str, str], value: Any) -> None:
        n = _nbytes(value)
        if n > self.budget:
            return
        self._mem[key] = value
        self._size += n
        while self._size > self.budget and self._mem:
            _, old = self._mem.popitem(last=False)
            self._size -= _nbytes(old)

    def _path(self, key: tuple[str, str]) -> Path | None:
        if self.disk_root is None:
            return None
        name = hashlib.sha256(key[1].encode("utf-8", "surrogatepass")).hexdigest()[:32]
        path = self.disk_root / key[0] / f"{name}.pt"
        if self.results_root is not None and outside_link(self.results_root, path) is not None:
            return None  # the cache is an optimisation: a link out of --out is neither read nor written
        return path

    def _read(self, key: tuple[str, str]) -> Any:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 — a damaged cache file is recomputed and rewritten
            return None
        if not isinstance(blob, dict) or blob.get("gt") != key[1]:
            return None  # a hash collision or a foreign file: recompute
        return blob["value"]

    def _write(self, key: tuple[str, str], value: Any) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".ref.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                torch.save({"gt": key[1], "value": value}, f)
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk: the cache is an optimisation, never a failure
            try:
                os.unlink(tmp)
            except (OSError, UnboundLocalError):
                pass


def reference_cache(ctx: MetricContext) -> ReferenceCache:
    """The run's cache (memory + disk when the engine set it up; memory only otherwise)."""
    return ctx.shared(SHARED_KEY, lambda: ReferenceCache(device=ctx.device))
