"""One face analysis per restored image, shared by every metric that needs it.

The face metrics of a run (``detection-rate``, ``identity-dlib``, ``identity-kept-dlib``,
``verification-dlib``, ``identity-consistency-dlib``; the ArcFace metrics for the MTCNN part)
look at the same restored face. Each part of that look is computed at most once per image per
run and handed to every metric that asks, as the reference cache
(:mod:`~faceblur_bench.metrics.reference_cache`) does for the ground-truth side:

- ``restored_faces``: MTCNN detections of the restored image, run on that image alone (a batch
  of one: detections of a batch depend in their last bits on the other images in it);
- ``landmarks("gt")``: dlib's 5 landmarks of the ground truth (its largest MTCNN box), with the
  ground truth's descriptor — from the reference cache, once per ground-truth file; the ground
  truth's MTCNN detections are those every metric of the image shares
  (:func:`~faceblur_bench.metrics.identity.reference_faces`: LMD, ArcFace, MobileFaceNet);
- ``landmarks("own")``: dlib's 5 landmarks of the restored image, started from its largest
  MTCNN box;
- ``descriptor(rule)``: the dlib descriptor of the restored image cut with the ``rule``'s
  landmarks (``"gt"``: identity-dlib, identity-kept-dlib, verification-dlib; ``"own"``:
  identity-consistency-dlib);
- ``input_descriptor()``: the blurred input (at the output size) cut with the restored image's
  own landmarks; when those pixels equal the restored image (the ``blurred`` baseline) it is the
  ``"own"`` descriptor, not computed twice (same pixels and landmarks: the same dlib call).

Values are those of each metric computing alone (tested bit for bit against the unshared path
and against the protocol written out with dlib and MTCNN): a dlib descriptor depends only on its
chip — a batched dlib call returns the same bits as one call per chip (tested) — so a set metric
scoring a whole batch takes the per-image descriptors of the one-image views the paired metrics
use (:meth:`Batch.images`), and a descriptor one image's metric asks for is computed in one call
for every image of its batch that lacks it (:attr:`Batch.siblings`), shared out over dlib worker
processes (:class:`~faceblur_bench.nets.dlib_face.DescriptorPool`).

Sharing can be switched off for a run (``RunConfig(share_face_analysis=False)``): every metric
then computes its own analysis — the same values, for measuring what sharing saves
(``benchmarks/bench_face_analysis.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from .. import weights as wts
from ..errors import WeightsMissingError
from ..nets.align import DETECTOR_PROTOCOL, FaceDetection, MTCNNDetector, main_face, to_hwc_numpy
from ..nets.dlib_face import (
    CHIP_PADDING,
    CHIP_SIZE,
    DESCRIPTOR_DIM,
    MODEL_PACKAGE,
    PREDICTOR,
    RECOGNIZER,
    DlibFaceRecognizer,
    install_error,
)
from .base import Batch, MetricContext
from .identity import SHARING_KEY, batch_faces, mtcnn_detector, reference_faces, sharing
from .reference_cache import package_version, reference_cache

__all__ = ["SHARING_KEY", "CropRule", "FaceAnalysis", "analyses", "dlib_recognizer",
           "input_at_output_size", "model_paths", "packaged_model", "set_sharing", "sharing"]
CropRule = Literal["gt", "own"]


def set_sharing(ctx: MetricContext, enabled: bool) -> None:
    """Share (default) or not share the face analysis between the metrics of ``ctx``'s run.

    Must be called before the first metric asks for an analysis (the engine does it when it
    creates the run's context)."""
    ctx.shared(SHARING_KEY, lambda: bool(enabled))


# -- the dlib family's files and networks -----------------------------------------------------------
def packaged_model(name: str, overrides: dict[str, str] | None = None) -> Path:
    """Path of the dlib model file of weight entry ``name`` (one of the files
    ``face-recognition-models`` ships), sha256-checked; an override wins.

    A file not found while ``face_recognition_models`` is not installed raises
    :class:`~faceblur_bench.errors.PackageMissingError` ("install dlib-bin and
    face-recognition-models").
    """
    try:
        return wts.resolve(name, overrides)
    except WeightsMissingError:
        if wts.package_dir(MODEL_PACKAGE) is None:
            raise install_error("package 'face-recognition-models' (dlib's model files) is "
                                "not installed") from None
        raise


def model_paths(overrides: dict[str, str] | None = None) -> tuple[Path, Path]:
    """``(shape predictor, ResNet)`` paths (:func:`packaged_model`)."""
    return packaged_model(PREDICTOR, overrides), packaged_model(RECOGNIZER, overrides)


def dlib_recognizer(ctx: MetricContext) -> DlibFaceRecognizer:
    """The run's dlib recognizer (built once per run and file pair)."""
    predictor, recognizer = model_paths(ctx.weights_overrides)
    return ctx.shared(("dlib-face", str(predictor), str(recognizer)),
                      lambda: DlibFaceRecognizer(predictor, recognizer))


def _gt_namespace(ctx: MetricContext, recognizer: DlibFaceRecognizer) -> str:
    """Reference-cache namespace of the ground-truth side (box, landmarks, descriptor): the
    detector protocol, the packages that compute it and both dlib model files."""
    refs = reference_cache(ctx)
    key = ("dlib-gt-namespace", str(recognizer.predictor_path), str(recognizer.recognizer_path))
    return ctx.shared(key, lambda: refs.namespace(
        {"what": "dlib-gt-box-landmarks-descriptor", "detector": DETECTOR_PROTOCOL,
         "facenet-pytorch": package_version("facenet-pytorch"), "dlib": package_version("dlib-bin")
         or package_version("dlib"), "chip": [CHIP_SIZE, CHIP_PADDING]},
        [recognizer.predictor_path, recognizer.recognizer_path]))


def _gt_landmarks_descriptor(gt: torch.Tensor, recognizer: DlibFaceRecognizer,
                             faces: list[FaceDetection]) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One ground truth ``(1, 3, H, W)`` uint8 and its MTCNN ``faces``: dlib's 5 landmarks
    ``(5, 2)`` int64 of its largest face (None without a face) and its descriptor ``(128,)``
    float64 (NaN then)."""
    img = to_hwc_numpy(gt)[0]
    face = main_face(faces)
    lm = None if face is None else recognizer.landmarks(img, face.box)
    desc = torch.from_numpy(recognizer.describe([img], [lm])[0])
    return (None if lm is None else torch.from_numpy(lm)), desc


def input_at_output_size(blurred: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The blurred input ``(H, W, 3)`` uint8, resized (PIL bicubic) to ``shape[:2]`` if it differs."""
    if blurred.shape[:2] == tuple(shape[:2]):
        return blurred
    return np.asarray(Image.fromarray(blurred).resize((shape[1], shape[0]), Image.BICUBIC))


# -- the analysis of one image ----------------------------------------------------------------------
class FaceAnalysis:
    """The face analysis of one restored image (a one-image :class:`Batch`), computed lazily.

    Every part is memoised on the image's batch view, so all metrics of a run that build a
    ``FaceAnalysis`` of the same image share it; with sharing off (:func:`set_sharing`) the memo
    is private to ``owner`` (the metric's name) and each metric computes its own.
    Images are uint8; landmarks ``(5, 2)`` int64 pixel ``(x, y)``; descriptors ``(128,)``
    float64, NaN where the landmarks are None (no face).
    """

    def __init__(self, view: Batch, ctx: MetricContext, owner: str):
        if len(view) != 1:
            raise ValueError(f"a face analysis is of one image; this batch holds {len(view)} "
                             "(use batch.images())")
        self.view, self.ctx, self.owner = view, ctx, owner
        self.scope: tuple[str, ...] = () if sharing(ctx) else (owner,)

    def _key(self, part: Any) -> tuple:
        return ("face-analysis", part, *self.scope)

    def _memo(self, part: Any, factory: Callable[[], Any]) -> Any:
        return self.view.memo(self._key(part), factory)

    def _missing(self, part: Any) -> list[FaceAnalysis]:
        """This image and its fellow images of the batch (:attr:`Batch.siblings`) whose ``part``
        is not computed yet — empty when this image's is."""
        if self._key(part) in self.view.cache:
            return []
        views = self.view.siblings or [self.view]
        return [f for f in (FaceAnalysis(v, self.ctx, self.owner) for v in views)
                if f._key(part) not in f.view.cache]

    def _describe_all(self, part: Any, jobs: list[tuple[FaceAnalysis, np.ndarray, np.ndarray | None]]
                      ) -> None:
        """Memoise ``part`` = the descriptor of ``image`` cut with ``landmarks`` for every job
        ``(analysis, image, landmarks)``, all chips in one dlib call (shared out over the worker
        processes; a descriptor depends only on its chip, so each is the bits of a call alone)."""
        rec = self.recognizer
        cut = [(f, rec.chips(img, [lm])) for f, img, lm in jobs if lm is not None]
        descs = rec.descriptors(np.concatenate([c for _, c in cut])) if cut else None
        for k, (f, _) in enumerate(cut):
            f.view.cache[f._key(part)] = descs[k]
        for f, _, lm in jobs:
            if lm is None:
                f.view.cache[f._key(part)] = np.full(DESCRIPTOR_DIM, np.nan, np.float64)

    @property
    def detector(self) -> MTCNNDetector:
        return mtcnn_detector(self.ctx)

    @property
    def recognizer(self) -> DlibFaceRecognizer:
        return dlib_recognizer(self.ctx)

    def restored_hwc(self) -> np.ndarray:
        """The restored image ``(H, W, 3)`` uint8 (on the CPU)."""
        return self._memo("restored-hwc", lambda: to_hwc_numpy(self.view.restored)[0])

    def restored_faces(self) -> list[FaceDetection]:
        """MTCNN detections of the restored image alone, highest probability first."""
        if not self.scope:  # the per-batch memo the ArcFace metrics read as well
            return batch_faces(self.view, "restored", self.detector)[0]
        return self._memo("mtcnn", lambda: self.detector.detect(self.view.restored))[0]

    def _gt(self) -> tuple[np.ndarray | None, np.ndarray]:
        def run() -> tuple[np.ndarray | None, np.ndarray]:
            self.view.reference_for(self.owner)
            rec, det = self.recognizer, self.detector
            (lm, desc), = reference_cache(self.ctx).per_reference_at(
                _gt_namespace(self.ctx, rec), self.view, lambda y, i: _gt_landmarks_descriptor(
                    y, rec, reference_faces(self.view, i, self.ctx, det)))
            return (None if lm is None else lm.numpy()), desc.numpy()

        return self._memo("gt", run)

    def landmarks(self, rule: CropRule) -> np.ndarray | None:
        """dlib's 5 landmarks of the ground truth (``"gt"``) or of the restored image (``"own"``);
        None when that image shows no MTCNN face."""
        if rule == "gt":
            return self._gt()[0]
        if rule != "own":
            raise ValueError(f"crop rule {rule!r}: expected 'gt' or 'own'")

        def own() -> np.ndarray | None:
            face = main_face(self.restored_faces())
            return None if face is None else self.recognizer.landmarks(self.restored_hwc(), face.box)

        return self._memo("landmarks-own", own)

    def reference_descriptor(self) -> np.ndarray:
        """The ground truth's descriptor ``(128,)`` (cut with its own landmarks)."""
        return self._gt()[1]

    def descriptor(self, rule: CropRule) -> np.ndarray:
        """The restored image's descriptor ``(128,)``, cut with the ``rule``'s landmarks.

        Computed for every image of the batch that lacks it at once (one dlib call)."""
        part = ("descriptor", rule)
        self._describe_all(part, [(f, f.restored_hwc(), f.landmarks(rule))
                                  for f in self._missing(part)])
        return self.view.cache[self._key(part)]

    def input_descriptor(self) -> np.ndarray:
        """The blurred input's descriptor ``(128,)``, resized to the output size and cut with the
        restored image's own landmarks (with the images of the batch that lack it, at once)."""
        if self.view.blurred is None:
            raise ValueError("identity-consistency-dlib needs the blurred input of each image")
        part, jobs = "descriptor-input", []
        for f in self._missing(part):
            if f.view.blurred is None:
                continue
            restored = f.restored_hwc()
            inp = input_at_output_size(to_hwc_numpy(f.view.blurred)[0], restored.shape)
            if np.array_equal(inp, restored):  # same pixels, same landmarks: the same chip
                f.view.cache[f._key(part)] = f.descriptor("own")
            else:
                jobs.append((f, inp, f.landmarks("own")))
        self._describe_all(part, jobs)
        return self.view.cache[self._key(part)]


def analyses(batch: Batch, ctx: MetricContext, owner: str) -> list[FaceAnalysis]:
    """The face analysis of every image of ``batch`` (shared with the batch's one-image views)."""
    return [FaceAnalysis(view, ctx, owner) for view in batch.images()]
