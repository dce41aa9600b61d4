"""Samples and splits.

A :class:`Split` lists :class:`Sample` records; it never decodes images (the engine does, once).
Paths in a sample are absolute; ``Split.root`` is the directory the layout was found in.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DataNotFoundError
from ..files import cache_dir


@dataclass(frozen=True)
class Sample:
    """One evaluation item.

    id:       stable, unique within the split (used to resume and to pair results)
    blurred:  path of the degraded input image
    sharp:    path of the ground truth (None for real blur without ground truth)
    frames:   all sharp frames of a window (300VW; temporal order, or the test list's FMR order --
              meta ``frame_order``); empty otherwise
    meta:     JSON-serialisable metadata: subset, kernel_id, kernel_size, identity, n_frames, ...
    """

    id: str
    blurred: Path
    sharp: Path | None = None
    frames: tuple[Path, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[Path]:
        out = [self.blurred]
        if self.sharp is not None:
            out.append(self.sharp)
        out.extend(self.frames)
        return out


def default_data_root() -> Path:
    """``$FACEBLUR_DATA`` or ``~/.cache/faceblur_bench/data`` (also where the demo split is built)."""
    env = os.environ.get("FACEBLUR_DATA")
    if env:
        return Path(env).expanduser()
    return cache_dir("data")


class Split(ABC):
    """Base class of a split layout (registered in ``faceblur_bench.registry.splits``).

    Subclasses set ``name``, ``description``, ``layout`` (the expected directory tree, shown
    when the data is missing) and implement :meth:`find` and :meth:`samples`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    #: subsets addressable as ``<split>/<subset>``
    subsets: ClassVar[tuple[str, ...]] = ()
    #: False for real-blur splits: reference metrics are "not applicable"
    has_reference: ClassVar[bool] = True
    #: ground-truth size / input size
    scale: ClassVar[int] = 1

    def __init__(self, data_root: str | Path | None = None, subset: str | None = None,
                 allow_partial: bool = False):
        self.data_root = Path(data_root).expanduser() if data_root else default_data_root()
        if subset is not None and self.subsets and subset not in self.subsets:
            import difflib

            from ..errors import UnknownNameError

            raise UnknownNameError(
                f"subset of {self.name}", subset, list(self.subsets),
                difflib.get_close_matches(subset, self.subsets, n=3, cutoff=0.4),
            )
        self.subset = subset
        self.allow_partial = allow_partial
        #: set by loaders when files are missing and allow_partial is True
        self.partial = False

    @property
    def full_name(self) -> str:
        return f"{self.name}/{self.subset}" if self.subset else self.name

    # -- to implement ---------------------------------------------------------------------------
    @abstractmethod
    def find(self) -> Path:
        """Directory holding this split under ``data_root``; raise :class:`DataNotFoundError`."""

    @abstractmethod
    def samples(self) -> list[Sample]:
        """Every sample of the split (or subset), in a stable order."""

    def kernel(self, sample: Sample) -> np.ndarray | None:
        """The true blur kernel of ``sample`` (K x K, unit sum) when the split provides one."""
        return None

    # -- shared ---------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.find()

    def missing(self, where: Path) -> DataNotFoundError:
        return DataNotFoundError(
            f"split {self.full_name!r} not found: looked in {where}",
            f"place the data in this layout under --data-root (or $FACEBLUR_DATA):\n{self.layout}",
        )

    def fingerprint(self, samples: list[Sample] | None = None) -> str:
        """sha256 over the sample list (ids, relative paths, file sizes) of this split.

        Cheap identity used to key resumable runs; per-file content hashes live in the
        manifest written by ``faceblur-bench data verify``.
        """
        samples = self.samples() if samples is None else samples
        root = self.root
        h = hashlib.sha256()
        for s in samples:
            parts = [s.id]
            for p in s.files():
                try:
                    rel = str(p.relative_to(root))
                except ValueError:
                    rel = str(p)
                size = p.stat().st_size if p.exists() else -1
                parts.append(f"{rel}:{size}")
            h.update(json.dumps(parts).encode())
        return h.hexdigest()

