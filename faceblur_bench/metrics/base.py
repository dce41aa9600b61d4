"""Metric interface: every protocol is a named metric with a one-line definition.

Two kinds:
- ``paired``: one value per image (``compute`` -> ``(N,)``); the run value is the mean over the
  images that succeeded (std reported beside it).
- ``set``: per-image *state* (``features`` -> ``(N, D)`` float array: embeddings, Inception
  features, detection flags) stored with the results as images complete, then ``aggregate``
  once over all stored state. Storing per-image state is what makes set metrics resumable and
  gatherable across processes (concatenate the state of every shard, aggregate once).

Inputs arrive in a :class:`Batch` as uint8 ``(N, 3, H, W)`` tensors on the run device; each
metric converts them as its protocol says. Networks are built once per run in ``setup`` (eval
mode, no grad) and can be shared between metrics through ``ctx.shared(key, factory)``; derived
per-batch tensors (e.g. embeddings of the restored images) through ``batch.cache``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from ..aggregates import finite_mean_std  # noqa: F401  (the one aggregation rule; re-exported)
from ..data.base import Sample


@dataclass
class Batch:
    """Decoded images of a batch of samples, uint8 ``(N, 3, H, W)`` on the run device."""

    samples: Sequence[Sample]
    restored: torch.Tensor
    reference: torch.Tensor | None
    blurred: torch.Tensor | None = None
    #: per-batch memo shared by metrics (e.g. ``cache["arcface", "restored"]``)
    cache: dict[Any, Any] = field(default_factory=dict)
    #: a one-image view's fellow views of the batch it was cut from (itself included), so
    #: per-image work can be done for all of them at once (:mod:`.face_analysis`); else None
    siblings: list[Batch] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.samples)

    def reference_for(self, metric: str) -> torch.Tensor:
        """The reference images, or the "needs ground truth" error naming ``metric``."""
        return require_reference(self.reference, metric)

    def memo(self, key: Any, factory: Callable[[], Any]) -> Any:
        """``factory()`` once per batch and ``key``; later calls return the same object."""
        if key not in self.cache:
            self.cache[key] = factory()
        return self.cache[key]


    def images(self) -> list[Batch]:
        """This batch as one-image batches, made once and shared by every metric (so the memo of
        an image's view serves every metric of that image); a one-image batch is its own view.

        Paired and set metrics alike score each view alone (a value or a stored feature must
        not depend on which images shared its batch).
        """
        if len(self) == 1:
            return [self]

        def split() -> list[Batch]:
            def one(t: torch.Tensor | None, i: int) -> torch.Tensor | None:
                return None if t is None else t[i:i + 1]

            views = [Batch([s], one(self.restored, i), one(self.reference, i), one(self.blurred, i))
                     for i, s in enumerate(self.samples)]
            for v in views:
                v.siblings = views
            return views

        return self.memo(("one-image-views",), split)


def require_reference(reference: torch.Tensor | None, metric: str) -> torch.Tensor:
    """``reference`` when present; the one "needs a ground-truth image" refusal otherwise.

    The engine already marks such metrics "not applicable" on splits without ground truth
    (``needs_reference``); this guards direct library calls with a clear error."""
    if reference is None:
        from ..errors import UsageError

        raise UsageError(f"metric {metric!r} needs ground-truth (reference) images; this batch has none",
                         "use a split with ground truth, or a no-reference metric")
    return reference


class MetricContext:
    """What a metric may use while setting up: device, split, weight overrides, shared nets."""

    def __init__(self, device: torch.device | str = "cpu", split: Any = None,
                 weights_overrides: dict[str, str] | None = None):
        self.device = torch.device(device)
        self.split = split
        self.weights_overrides = dict(weights_overrides or {})
        self._shared: dict[Any, Any] = {}
        self._shared_used: dict[Any, list] = {}

    def shared(self, key: Any, factory: Callable[[], Any]) -> Any:
        """Build an object (typically a network) once per run and share it between metrics.

        The weight files the factory resolved are reported again to every later user, so each
        metric's record of the files it used is complete even when another metric built the net.
        """
        from .. import weights

        if key not in self._shared:
            with weights.recording() as used:
                obj = factory()
            self._shared[key] = obj
            self._shared_used[key] = list(used)
        weights.note_used(self._shared_used.get(key, ()))
        return self._shared[key]


class Metric:
    """Base class of a metric protocol (registered in ``faceblur_bench.registry.metrics``)."""

    name: ClassVar[str] = ""
    #: one line: inputs, range, network, layer, distance, aggregation
    protocol: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    kind: ClassVar[Literal["paired", "set"]] = "paired"
    #: names of weight files (see faceblur_bench.weights) the metric needs
    weights: ClassVar[tuple[str, ...]] = ()
    #: False for no-reference metrics (usable on real blur without ground truth)
    needs_reference: ClassVar[bool] = True
    #: True when the metric compares ``batch.blurred`` with the output pixel for pixel (same
    #: size): "not applicable" for methods that change the size (``Method.scale != 1``)
    needs_blurred: ClassVar[bool] = False
    #: display name for table headers (defaults to name)
    label: ClassVar[str] = ""
    #: "paper" (as the papers' code computed it) or "standard"
    family: ClassVar[Literal["paper", "standard"]] = "standard"
    #: False: left out of the metric set ``run`` uses when no --metrics are given (selected by name)
    default: ClassVar[bool] = True

    def setup(self, ctx: MetricContext) -> None:
        """Build networks / load weights. Raise WeightsMissingError when a file is missing."""

    # paired metrics ----------------------------------------------------------------------------
    def compute(self, batch: Batch) -> np.ndarray:
        """Per-image values, float64 ``(N,)``; NaN marks an image the metric could not score."""
        raise TypeError(f"{self.name} is a {self.kind} metric: it has no per-image compute()")

    # set metrics -------------------------------------------------------------------------------
    def features(self, batch: Batch) -> np.ndarray:
        """Per-image state, float ``(N, D)``, stored with the results (resume, gather)."""
        raise TypeError(f"{self.name} is a {self.kind} metric: it has no features()")

    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        """Set value from all per-image state: ``{"value": float, ...extra fields}``."""
        raise TypeError(f"{self.name} is a {self.kind} metric: it has no aggregate()")

    # -------------------------------------------------------------------------------------------
    @classmethod
    def arrow(cls) -> str:
        return "↑" if cls.higher_is_better else "↓"

    @classmethod
    def header(cls) -> str:
        return f"{cls.label or cls.name} {cls.arrow()}"


def nan_mean_std(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, population std and count over the non-NaN entries of ``values``.

    NaN marks an image the metric could not score (excluded and counted); +inf is a value
    (PSNR of identical images) and is kept, so the mean is +inf as MATLAB/skimage would give.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    with np.errstate(invalid="ignore"):
        return float(v.mean()), float(v.std()), int(v.size)
