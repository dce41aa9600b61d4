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
restored image's descriptor once per image for all three metrics (and its MTCNN detections for
``detection-rate`` and ``identity-consistency-dlib``): :mod:`.face_analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.base import Sample
from ..nets.align import DETECTOR_PROTOCOL
from ..nets.dlib_face import (
    CHIP_PADDING,
    CHIP_SIZE,
    DESCRIPTOR_DIM,
    PREDICTOR,
    RECOGNIZER,
    SAME_PERSON_DISTANCE,
    descriptor_distance,
)
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .face_analysis import analyses, dlib_recognizer
from .identity import mtcnn_detector
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


def dlib_pair_descriptors(batch: Batch, ctx: MetricContext, owner: str) -> dict[str, np.ndarray]:
    """dlib descriptors of restored and reference, both cut with the reference's landmarks.

    Returns ``{"restored": (N, 128), "reference": (N, 128), "face": (N,) bool}`` float64; rows
    are NaN where the reference has no detectable face. Read off each image's shared face
    analysis (:mod:`~faceblur_bench.metrics.face_analysis`: computed once per image for all
    the metrics of a run); the reference's landmarks and descriptor once per ground-truth
    file, kept across runs (:mod:`~faceblur_bench.metrics.reference_cache`).
    """
    batch.reference_for(owner)
    faces = analyses(batch, ctx, owner)
    if not faces:
        empty = np.zeros((0, DESCRIPTOR_DIM), np.float64)
        return {"restored": empty, "reference": empty.copy(), "face": np.zeros(0, bool)}
    return {"restored": np.stack([f.descriptor("gt") for f in faces]),
            "reference": np.stack([f.reference_descriptor() for f in faces]),
            "face": np.array([f.landmarks("gt") is not None for f in faces], dtype=bool)}


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
        e = dlib_pair_descriptors(batch, self.ctx, self.name)
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
        return pack_gt_aligned(dlib_pair_descriptors(batch, self.ctx, self.name))

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
