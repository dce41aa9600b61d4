"""dlib face recognition: 5-point landmarks, 150x150 face chips, 128-d ResNet descriptors.

The network and the landmark model are dlib's own (run by the ``dlib`` module of the prebuilt
``dlib-bin`` wheel), read from the files the ``face-recognition-models`` package ships (weight
entries ``dlib-shape-predictor-5`` and ``dlib-resnet-v1`` in :mod:`faceblur_bench.weights`).

Pipeline, as dlib's ``face_recognition_model_v1.compute_face_descriptor(img, shape)`` does it:

1. landmarks: ``dlib.shape_predictor`` (5 points: the two corners of each eye and the base of
   the nose) started from a face box — here the MTCNN box of :mod:`faceblur_bench.nets.align`
   (rounded to whole pixels), not dlib's own HOG detector box;
2. chip: ``dlib.get_face_chips(img, shapes, size=150, padding=0.25)`` — the similarity warp
   dlib's descriptor was trained with (150x150 RGB, 25 % padding around the landmark template);
3. descriptor: ``compute_face_descriptor(chips)`` (no jitter): a 128-d float vector, not unit
   length (norms of about 1.3-1.6 on real faces); two faces are the same person for dlib when the
   Euclidean distance of their descriptors is below 0.6.

Splitting 2 from 3 lets a caller cut the restored image with the *ground truth's* landmarks and
compute many descriptors in one batched call; the result equals dlib's one-shot call (tested).

dlib's descriptor is the dominant cost of a default run (about 60 ms a chip on one core: the
``dlib-bin`` wheel has no BLAS, and its Python binding holds the GIL), so a batch of chips is
shared out over worker processes (:class:`DescriptorPool`; ``FACEBLUR_DLIB_WORKERS``, default
the core count up to 4, ``0``: in this process). A descriptor depends only on its chip and the
same dlib code computes it in either process: the values are the same bits (tested).

``dlib`` is imported only when a :class:`DlibFaceRecognizer` is built, so the rest of the harness
never needs it; where it or the model package is absent a :class:`PackageMissingError` says what
to install.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from ..errors import PackageMissingError, WeightsIntegrityError

CHIP_SIZE = 150
CHIP_PADDING = 0.25
DESCRIPTOR_DIM = 128
#: dlib's same-person threshold on the Euclidean distance of two descriptors
SAME_PERSON_DISTANCE = 0.6
PREDICTOR = "dlib-shape-predictor-5"
RECOGNIZER = "dlib-resnet-v1"
MODEL_PACKAGE = "face_recognition_models"
INSTALL_HINT = "install dlib-bin and face-recognition-models"
PROTOCOL = (f"dlib ResNet 128-d descriptors (face-recognition-models) of {CHIP_SIZE}x{CHIP_SIZE} "
            f"chips (dlib get_face_chip, padding {CHIP_PADDING}) cut with dlib's 5-point landmarks")


def install_error(what: str) -> PackageMissingError:
    """The error of a missing dlib package: ``what`` is missing; short form :data:`INSTALL_HINT`."""
    err = PackageMissingError(f"{what}; the dlib metrics need dlib (wheel dlib-bin) and dlib's "
                              "model files (package face-recognition-models)",
                              "pip install dlib-bin face-recognition-models")
    err.short = INSTALL_HINT
    return err


def import_dlib() -> ModuleType:
    """The ``dlib`` module, or :class:`PackageMissingError` naming the packages to install."""
    try:
        import dlib
    except ImportError:
        raise install_error("Python module 'dlib' is not installed") from None
    return dlib


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected one (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def file_identity(path: str | Path) -> tuple[str, int, int]:
    """``(path, mtime_ns, size)``: a file rewritten in place is another file."""
    st = os.stat(path)
    return str(path), st.st_mtime_ns, st.st_size


_LOADED: dict[tuple, object] = {}


def loaded_model(loader, path: str | Path):
    """``loader(str(path))`` (a dlib model constructor), once per process and file version.

    dlib's models are read-only after loading, so the runs of one process (the README's command
    scores three methods, one run each) share them instead of reading the 99 MB 68-point model
    again per run. A rewritten file (:func:`file_identity`) is loaded anew; a load error is not
    kept."""
    try:
        key = (getattr(loader, "__name__", repr(loader)), *file_identity(path))
    except OSError:  # not a readable file: dlib's own error says so
        return loader(str(path))
    if key not in _LOADED:
        _LOADED[key] = loader(str(path))
    return _LOADED[key]


class DlibShapePredictor:
    """One of dlib's landmark models (``dlib.shape_predictor``, an ensemble of regression trees)
    read from its ``.dat`` file: ``landmarks(image, box)`` gives ``(K, 2)`` int64 pixel
    coordinates ``(x, y)`` in the model's point order (K = 5 or 68), refined from the model's
    mean shape placed in ``box``. ``entry`` names the weight entry for the error message."""

    def __init__(self, path: str | Path, entry: str):
        self.dlib = import_dlib()
        self.path = Path(path)
        try:
            self.model = loaded_model(self.dlib.shape_predictor, self.path)
        except RuntimeError as exc:  # dlib's deserialisation error
            raise WeightsIntegrityError(
                f"cannot load dlib shape predictor {self.path}: {exc}",
                f"point --weights {entry}=PATH at the model's .dat file, or reinstall "
                "face-recognition-models") from None

    def landmarks(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """Landmarks ``(K, 2)`` int64 of the face in ``box`` (x1, y1, x2, y2 pixels, rounded)."""
        x1, y1, x2, y2 = (round(float(v)) for v in box[:4])
        shape = self.model(_rgb_uint8(image), self.dlib.rectangle(x1, y1, x2, y2))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.int64)


class DlibFaceRecognizer:
    """dlib's 5-point shape predictor and ResNet face descriptor, built once per run.

    Images are ``(H, W, 3)`` uint8 RGB numpy arrays; landmarks are ``(5, 2)`` integer pixel
    coordinates ``(x, y)`` in dlib's point order; descriptors are float64 ``(N, 128)``.
    """

    def __init__(self, predictor_path: str | Path, recognizer_path: str | Path):
        self.dlib = import_dlib()
        self.predictor_path, self.recognizer_path = Path(predictor_path), Path(recognizer_path)
        self.predictor = DlibShapePredictor(self.predictor_path, PREDICTOR)
        try:
            self.net = loaded_model(self.dlib.face_recognition_model_v1, self.recognizer_path)
        except RuntimeError as exc:
            raise WeightsIntegrityError(
                f"cannot load dlib face recognition model {self.recognizer_path}: {exc}",
                f"point --weights {RECOGNIZER}=PATH at dlib_face_recognition_resnet_model_v1.dat, "
                "or reinstall face-recognition-models") from None
        #: the file as loaded: worker processes are shared only by recognizers of the same file
        self.recognizer_file = file_identity(self.recognizer_path)

    def landmarks(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """dlib's 5 landmarks ``(5, 2)`` int64 of the face in ``box`` (x1, y1, x2, y2 pixels)."""
        return self.predictor.landmarks(image, box)

    def _shape(self, landmarks: np.ndarray):
        pts = np.asarray(landmarks, dtype=np.int64).reshape(-1, 2)
        # the chip warp uses only the points; the rectangle is their bounding box
        rect = self.dlib.rectangle(int(pts[:, 0].min()), int(pts[:, 1].min()),
                                   int(pts[:, 0].max()), int(pts[:, 1].max()))
        points = [self.dlib.point(int(x), int(y)) for x, y in pts]
        return self.dlib.full_object_detection(rect, points)

    def chips(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """``(K, 150, 150, 3)`` uint8 chips of ``image``, one per landmark set (dlib's warp)."""
        if not len(landmarks):
            return np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        shapes = self.dlib.full_object_detections()
        for lm in landmarks:
            shapes.append(self._shape(lm))
        out = self.dlib.get_face_chips(_rgb_uint8(image), shapes, size=CHIP_SIZE,
                                       padding=CHIP_PADDING)
        return np.stack([np.asarray(c, dtype=np.uint8) for c in out])

    def descriptors(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Descriptors ``(K, 128)`` float64 of 150x150 chips (one batched dlib call, no jitter)."""
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        if not batch:
            return np.zeros((0, DESCRIPTOR_DIM), np.float64)
        for c in batch:
            if c.shape != (CHIP_SIZE, CHIP_SIZE, 3):
                raise ValueError(f"dlib descriptor chips are {CHIP_SIZE}x{CHIP_SIZE}x3, "
                                 f"got {c.shape}")
        pool = descriptor_pool(self.recognizer_file) if len(batch) >= 2 else None
        if pool is not None:
            out = pool.descriptors(batch)
            if out is not None:
                return out
        return _descriptors(self.net, batch)

    def describe(self, images: Sequence[np.ndarray],
                 landmarks: Sequence[np.ndarray | None]) -> np.ndarray:
        """Descriptors ``(N, 128)`` of ``images[i]`` cut with ``landmarks[i]`` (NaN row: None)."""
        if len(images) != len(landmarks):
            raise ValueError(f"{len(images)} images but {len(landmarks)} landmark sets")
        out = np.full((len(images), DESCRIPTOR_DIM), np.nan, np.float64)
        idx = [i for i, lm in enumerate(landmarks) if lm is not None]
        if idx:
            chips = np.concatenate([self.chips(images[i], [landmarks[i]]) for i in idx])
            out[idx] = self.descriptors(chips)
        return out


# -- worker processes -------------------------------------------------------------------------------
#: environment variable: number of descriptor worker processes (0: compute in this process)
WORKERS_ENV = "FACEBLUR_DLIB_WORKERS"
MAX_DEFAULT_WORKERS = 4


def _descriptors(net, chips: list[np.ndarray]) -> np.ndarray:
    """The one dlib call: ``(K, 128)`` float64 descriptors of contiguous uint8 chips."""
    descs = net.compute_face_descriptor(chips)
    return np.array([np.asarray(d) for d in descs], np.float64)


# The worker: only dlib and numpy (no harness import, no main-module re-import, so a library
# caller's unguarded script is never run again). It reads pickled chip lists from stdin and
# writes their descriptors with the same call as :func:`_descriptors`; EOF ends it.
_WORKER = """
import pickle, sys
import numpy as np
import dlib
net = dlib.face_recognition_model_v1(sys.argv[1])
inp, out = sys.stdin.buffer, sys.stdout.buffer
sys.stdout = sys.stderr
while True:
    try:
        chips = pickle.load(inp)
    except EOFError:
        break
    descs = net.compute_face_descriptor(chips)
    pickle.dump(np.array([np.asarray(d) for d in descs], np.float64), out, protocol=4)
    out.flush()
"""


def descriptor_workers() -> int:
    """How many worker processes share out descriptor batches: ``FACEBLUR_DLIB_WORKERS`` if set
    (0 or 1: none, all in this process), else the core count, at most 4 (none on one core)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
    else:
        n = min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS)
    return n if n >= 2 else 0


class DescriptorPool:
    """``n`` worker processes holding dlib's ResNet (``recognizer_path``), started on first use.

    :meth:`descriptors` splits a batch of chips into ``n`` contiguous parts, one per worker, and
    returns the rows in order — the same bits as one in-process call (a batched dlib call equals
    one call per chip). A worker that cannot start or dies makes the pool return None (the
    caller computes in process: the pool is an optimisation, never a failure) and closes it.
    """

    def __init__(self, recognizer_path: str | Path, n: int):
        self.recognizer_path, self.n = Path(recognizer_path), n
        self.procs: list[subprocess.Popen] = []
        self.broken = False

    def _start(self) -> None:
        for _ in range(self.n - len(self.procs)):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(self.recognizer_path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))

    def descriptors(self, chips: list[np.ndarray]) -> np.ndarray | None:
        """Descriptors ``(K, 128)`` float64 of contiguous uint8 150x150 chips; None if broken."""
        if self.broken:
            return None
        try:
            self._start()
            parts = [p for p in np.array_split(np.arange(len(chips)), self.n) if len(p)]
            for proc, part in zip(self.procs, parts):  # all sent first: the workers run together
                pickle.dump([chips[i] for i in part], proc.stdin, protocol=4)
                proc.stdin.flush()
            out = [pickle.load(proc.stdout) for proc, _ in zip(self.procs, parts)]
        except (OSError, EOFError, pickle.UnpicklingError):
            self.close()
            self.broken = True
            return None
        return np.concatenate(out).reshape(len(chips), DESCRIPTOR_DIM)

    def close(self) -> None:
        """End the workers (EOF on their input)."""
        for proc in self.procs:
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
        self.procs = []


_POOLS: dict[tuple, DescriptorPool] = {}


def descriptor_pool(recognizer_file: tuple[str, int, int]) -> DescriptorPool | None:
    """The process's pool for one ResNet file ``(path, mtime_ns, size)`` (kept across runs: a
    rewritten file gets its own), or None without workers."""
    n = descriptor_workers()
    if n == 0:
        return None
    key = (*recognizer_file, n)
    if key not in _POOLS:
        _POOLS[key] = DescriptorPool(recognizer_file[0], n)
    return _POOLS[key]


@atexit.register
def close_pools() -> None:
    """End every worker of every pool (at exit; tests call it to start fresh)."""
    for pool in _POOLS.values():
        pool.close()
    _POOLS.clear()


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance of descriptors ``(N, 128)`` in float64 (dlib's convention)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.sqrt(((a - b) ** 2).sum(-1))
