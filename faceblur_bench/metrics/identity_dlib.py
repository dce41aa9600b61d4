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

Descriptors of a ground-truth image are computed once per run (the demo split blurs each face 8
ways) and those of a batch once for all three metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import weights as wts
from ..data.base import Sample
from ..errors import WeightsMissingError
from ..imageio import read_image
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
from .identity import batch_faces, mtcnn_detector
from .verification import (
    FALLBACK_SOURCE,
    LFW_THRESHOLDS,
    N_FOLDS,
    _PairedEmbeddingSetMetric,
    lfw_10fold_distances,
    pack,
)

WEIGHTS = (RECOGNIZER, PREDICTOR)
_ALIGN = (f"cut as dlib's {CHIP_SIZE}x{CHIP_SIZE} chip (padding {CHIP_PADDING}) with the "
          f"ground truth's dlib 5-point landmarks (predictor started on the ground truth's "
          f"largest MTCNN box: {DETECTOR_PROTOCOL})")


def model_paths(overrides: dict[str, str] | None = None) -> tuple[Path, Path]:
    """``(shape predictor, ResNet)`` paths, sha256-checked; overrides win.

    A file not found while ``face_recognition_models`` is not installed raises
    :class:`~faceblur_bench.errors.PackageMissingError` ("install dlib-bin and
    face-recognition-models").
    """
    out = []
    for name in (PREDICTOR, RECOGNIZER):
        try:
            out.append(wts.resolve(name, overrides))
        except WeightsMissingError:
            if wts.package_dir(MODEL_PACKAGE) is None:
                raise install_error("package 'face-recognition-models' (dlib's model files) is "
                                    "not installed") from None
            raise
    return out[0], out[1]


def dlib_recognizer(ctx: MetricContext) -> DlibFaceRecognizer:
    """The run's dlib recognizer (built once per run and file pair)."""
    predictor, recognizer = model_paths(ctx.weights_overrides)
    return ctx.shared(("dlib-face", str(predictor), str(recognizer)),
                      lambda: DlibFaceRecognizer(predictor, recognizer))


def _reference_cache(ctx: MetricContext, recognizer: DlibFaceRecognizer) -> dict[str, Any]:
    key = ("dlib-face", "reference-cache", str(recognizer.predictor_path),
           str(recognizer.recognizer_path))
    return ctx.shared(key, dict)


def dlib_pair_descriptors(batch: Batch, ctx: MetricContext, recognizer: DlibFaceRecognizer,
                          detector: MTCNNDetector) -> dict[str, np.ndarray]:
    """dlib descriptors of restored and reference, both cut with the reference's landmarks.

    Returns ``{"restored": (N, 128), "reference": (N, 128), "face": (N,) bool}`` float64; rows
    are NaN where the reference has no detectable face. Computed once per batch; the
    reference's face box, landmarks and descriptor once per run and image content.
    """
    def run() -> dict[str, np.ndarray]:
        reference = to_hwc_numpy(batch.reference_for("identity-dlib"))
        restored = to_hwc_numpy(batch.restored)
        cache = _reference_cache(ctx, recognizer)
        keys = [hashlib.sha1(img.tobytes()).hexdigest() + str(img.shape) for img in reference]
        if any(k not in cache for k in keys):  # MTCNN only for ground truths not seen yet
            faces = batch_faces(batch, "reference", detector)
            for i, (k, img) in enumerate(zip(keys, reference)):
                if k not in cache:
                    face = main_face(faces[i])
                    lm = None if face is None else recognizer.landmarks(img, face.box)
                    cache[k] = (lm, recognizer.describe([img], [lm])[0])
        lms = [cache[k][0] for k in keys]
        ref = np.stack([cache[k][1] for k in keys]) if keys else \
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
        e = dlib_pair_descriptors(batch, self.ctx, self.recognizer, self.detector)
        ok = e["face"] & np.isfinite(e["restored"]).all(1)
        return pack(ok, e["restored"], ok & np.isfinite(e["reference"]).all(1), e["reference"])

    def embed_file(self, path: Path) -> np.ndarray | None:
        """Descriptor of a partner image, cut with its own landmarks (None without a face)."""
        img = read_image(path)
        face = main_face(self.detector.detect(img)[0])
        if face is None:
            return None
        return self.recognizer.describe([img], [self.recognizer.landmarks(img, face.box)])[0]

    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        if not hasattr(self, "recognizer"):
            self.setup(ctx)
        na, got = self._usable_pairs(features, samples, ctx)
        if na is not None:
            return na
        r_ok, e1, e2, issame, source, unusable = got
        try:
            res = lfw_10fold_distances(descriptor_distance(e1, e2), issame, LFW_THRESHOLDS, N_FOLDS)
        except ValueError as exc:
            return {"value": None, "reason": str(exc)}
        out = res.as_dict()
        out.update(count=int(r_ok.sum()), pair_source=source, unscored_no_face=int((~r_ok).sum()),
                   partners_unusable=int(unusable))
        if source == FALLBACK_SOURCE:
            out["pairs_note"] = ("fallback pairs: positive = the sample's own ground truth, "
                                 "negative = another face's ground truth; not the LFW pair list")
        return out
