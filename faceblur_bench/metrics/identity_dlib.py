"""The dlib face-recognition metric family: identity kept by a restoration, with genuine weights
that install from PyPI (``dlib-bin`` + ``face-recognition-models``), so the default run and the CI
gate score identity without any download.

Shared protocol (see :mod:`faceblur_bench.nets.dlib_face` and ``docs/metrics-dlib.md``):

- face box: the largest MTCNN face of the **ground truth** (the same detection the ArcFace metrics
  use, :func:`~faceblur_bench.metrics.identity.batch_faces`);
- landmarks: dlib's 5-point shape predictor on the ground truth, started from that box;
- chips: dlib's standard 150x150 chip (``get_face_chip``, padding 0.25) cut from the ground truth
  *and* from the restored image with the ground truth's landmarks — a restoration that destroys
  the face is still scored (a detector run on the restored image would drop exactly the worst);
- descriptor: dlib's ResNet, 128-d, no jitter; distance: Euclidean (dlib's convention);
  same person iff distance < 0.6 (dlib's threshold);
- a ground truth without a detectable face gives NaN, counted by the engine as unscored.

``identity-dlib`` is the per-image distance, ``identity-kept-dlib`` the fraction of images
within 0.6, ``verification-dlib`` the LFW 10-fold accuracy on these descriptors (pairs as in
:mod:`~faceblur_bench.metrics.verification`, with its ``own-gt-fallback`` pairs on splits
without identity metadata).

The ground truth's box, landmarks and descriptor are computed once per file (the demo split
blurs each face 8 ways, MSPL 80) and kept across runs and methods in the reference cache; the
descriptors of a batch are computed once for all three metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import weights as wts
from ..data.base import Sample
from ..errors import WeightsMissingError
from ..nets.align import DETECTOR_PROTOCOL, MTCNNDetector, main_face, to_hwc_numpy
from ..nets.dlib_face import (
    CHIP_PADDING,
    CHIP_SIZE,
    DESCRIPTOR_DIM,
    MODEL_PACKAGE,
    PREDICTOR,
    RECOGNIZER,
    SAME_PERSON_DISTANCE,
    DlibFaceRecognizer,
    descriptor_distance,
    install_error,
)
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .identity import mtcnn_detector
from .reference_cache import package_version, reference_cache
from .verification import (
    FALLBACK_SOURCE,
    LFW_THRESHOLDS,
    N_FOLDS,
    _PairedEmbeddingSetMetric,
    lfw_10fold_distances,
    pack_gt_aligned,
)

WEIGHTS = (RECOGNIZER, PREDICTOR)
_ALIGN = (f"cut as dlib's {CHIP_SIZE}x{CHIP_SIZE} chip (padding {CHIP_PADDING}) with the "
          f"ground truth's dlib 5-point landmarks (predictor started on the ground truth's "
          f"largest MTCNN box: {DETECTOR_PROTOCOL})")


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
                             detector: MTCNNDetector) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One ground truth ``(1, 3, H, W)`` uint8: dlib's 5 landmarks ``(5, 2)`` int64 of its
    largest MTCNN face (None without a face) and its descriptor ``(128,)`` float64 (NaN then)."""
    img = to_hwc_numpy(gt)[0]
    face = main_face(detector.detect(gt)[0])
    lm = None if face is None else recognizer.landmarks(img, face.box)
    desc = torch.from_numpy(recognizer.describe([img], [lm])[0])
    return (None if lm is None else torch.from_numpy(lm)), desc


def dlib_pair_descriptors(batch: Batch, ctx: MetricContext, recognizer: DlibFaceRecognizer,
                          detector: MTCNNDetector) -> dict[str, np.ndarray]:
    """dlib descriptors of restored and reference, both cut with the reference's landmarks.

    Returns ``{"restored": (N, 128), "reference": (N, 128), "face": (N,) bool}`` float64; rows
    are NaN where the reference has no detectable face. Computed once per batch; the
    reference's face box, landmarks and descriptor once per ground-truth file, one image at a
    time, kept across runs (:mod:`~faceblur_bench.metrics.reference_cache`).
    """
    def run() -> dict[str, np.ndarray]:
        batch.reference_for("identity-dlib")
        restored = to_hwc_numpy(batch.restored)
        ns = _gt_namespace(ctx, recognizer)
        per_gt = reference_cache(ctx).per_reference(
            ns, batch, lambda y: _gt_landmarks_descriptor(y, recognizer, detector))
        lms = [None if lm is None else lm.numpy() for lm, _ in per_gt]
        ref = np.stack([d.numpy() for _, d in per_gt]) if per_gt else \
            np.zeros((0, DESCRIPTOR_DIM), np.float64)
        res = recognizer.describe(list(restored), lms)
        return {"restored": res, "reference": ref,
                "face": np.array([lm is not None for lm in lms], dtype=bool)}

    return batch.memo(("dlib-face", "gt-aligned"), run)


class _DlibPaired(Metric):
    family = "standard"
    kind = "paired"
    weights = WEIGHTS

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.recognizer = dlib_recognizer(ctx)
        self.detector = mtcnn_detector(ctx)

    def distances(self, batch: Batch) -> np.ndarray:
        """Euclidean distance restored vs ground truth; NaN without a ground-truth face."""
        e = dlib_pair_descriptors(batch, self.ctx, self.recognizer, self.detector)
        return descriptor_distance(e["restored"], e["reference"])


@metrics.register("identity-dlib")
class IdentityDlib(_DlibPaired):
    label = "dlib dist"
    higher_is_better = False
    protocol = ("dlib ResNet 128-d descriptors (face-recognition-models) of ground truth and "
                "restored, both " + _ALIGN + "; Euclidean distance (same person < 0.6); NaN "
                "(counted as unscored) when the ground truth has no face")

    def compute(self, batch: Batch) -> np.ndarray:
        return self.distances(batch)


@metrics.register("identity-kept-dlib")
class IdentityKeptDlib(_DlibPaired):
    label = "dlib kept"
    higher_is_better = True
    protocol = (f"fraction of restored faces that dlib still matches to their ground truth: "
                f"Euclidean distance < {SAME_PERSON_DISTANCE} (dlib's same-person threshold) of "
                "the dlib ResNet descriptors of both (as identity-dlib), both " + _ALIGN +
                "; images without a ground-truth face unscored")

    def compute(self, batch: Batch) -> np.ndarray:
        d = self.distances(batch)
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(d), np.nan, (d < SAME_PERSON_DISTANCE).astype(np.float64))


@metrics.register("verification-dlib")
class VerificationDlib(_PairedEmbeddingSetMetric):
    label = "Verif. acc (dlib)"
    family = "standard"
    higher_is_better = True
    weights = WEIGHTS
    pair_fallback = True
    protocol = ("LFW 10-fold verification on dlib ResNet descriptors: restored face " + _ALIGN +
                ", partners likewise with their own; Euclidean distance (dlib's convention); 10 "
                "folds balanced in same/different pairs, threshold (arange(0,4,0.01)) chosen on "
                "nine; mean +- std of test-fold accuracy. Pairs from identity metadata; without "
                "it the own-gt-fallback pairs (positive = own ground truth, negative = another "
                "face's ground truth), not LFW's or the papers' pairs")

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.recognizer = dlib_recognizer(ctx)
        self.detector = mtcnn_detector(ctx)
        self._check_split(ctx)

    def features(self, batch: Batch) -> np.ndarray:
        return pack_gt_aligned(dlib_pair_descriptors(batch, self.ctx, self.recognizer, self.detector))

    def embed_face(self, img: np.ndarray, face: Any) -> np.ndarray:
        """Descriptor of a partner's face, cut with its own dlib landmarks."""
        return self.recognizer.describe([img], [self.recognizer.landmarks(img, face.box)])[0]

    embed_file = _PairedEmbeddingSetMetric.embed_main_face

    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        if not hasattr(self, "recognizer"):
            self.setup(ctx)
        out = self.lfw_aggregate(features, samples, ctx, lambda e1, e2, issame: lfw_10fold_distances(
            descriptor_distance(e1, e2), issame, LFW_THRESHOLDS, N_FOLDS))
        if out.get("pair_source") == FALLBACK_SOURCE:
            out["pairs_note"] = ("fallback pairs: positive = the sample's own ground truth, "
                                 "negative = another face's ground truth; not the LFW pair list")
        return out
