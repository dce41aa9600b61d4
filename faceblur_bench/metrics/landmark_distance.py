"""Landmark distance (LMD) with dlib's 68-point model: ``lmd-dlib``, ``lmd-dlib-iod``,
``lmd-dlib-found``.

LMD, as GFPGAN, VQFR and PMRF report it, is the mean Euclidean distance between the facial
landmarks found on the restored image and on the ground truth (lower is better). Here the
landmark model is dlib's 68-point shape predictor (iBUG 300-W markup), whose genuine weights the
PyPI package ``face-recognition-models`` installs (weight entry ``dlib-shape-predictor-68``), so
the metric runs with no download. Protocol per image (ground truth G, restored R, same size,
uint8 RGB):

1. **Face box**: the largest MTCNN face of G (the detection every identity metric of the
   harness starts from, :mod:`faceblur_bench.nets.align`). No face on G: NaN (unscored).
2. **Restored face**: MTCNN on R (the same detection as ``detection-rate``, computed once per
   batch for both). No face on R: NaN (unscored) — and recorded, per image, by
   ``lmd-dlib-found`` (0), so a method that destroys faces cannot hide behind a mean taken over
   the faces it kept.
3. **Landmarks**: dlib's 68-point predictor on G *and* on R, both started from **G's box** (the
   predictor refines its mean shape from the box; one box for both sides keeps detector jitter
   out of the distance — with R's own MTCNN box a 5-px shift of a demo face read 16.9 px on one
   face instead of 5.6). dlib returns whole-pixel coordinates.
4. ``lmd-dlib`` (primary): mean over the 68 points of ``||p_R - p_G||``, in **pixels of the
   ground-truth image**. ``lmd-dlib-iod``: the same distance divided by G's inter-ocular
   distance, that of the outer eye corners (points 36 and 45, 0-based; the 300-W normalisation),
   so faces of different sizes compare. Both are NaN in the same images.

G's box and landmarks are computed once per ground-truth file and kept in the reference cache;
G's MTCNN detections are those every face metric of the image shares
(:func:`~faceblur_bench.metrics.identity.reference_faces`).

``lmd-fan``: the same protocol with the model GFPGAN, VQFR and PMRF use — facexlib's AdaptiveWing
FAN (98 WFLW points, weight entry ``awing-fan``, ``alignment_WFLW_4HG.pth``), run as facexlib's
``get_landmarks`` (:func:`~faceblur_bench.nets.awing_fan.fan_landmarks`) on the **crop of G's
box** (:func:`face_crop`), the same crop cut from G and from R; landmarks in pixels of the
ground-truth image (sub-pixel, corner origin), mean over the 98 points; NaN in the same images
as ``lmd-dlib`` (``lmd-dlib-found`` counts the restored faces for both). Without the file the
metric is n/a with the fetch command (``faceblur-bench weights fetch awing-fan``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .. import weights as wts
from ..nets.align import DETECTOR_PROTOCOL, FaceDetection, MTCNNDetector, main_face, to_hwc_numpy
from ..nets.awing_fan import AWingFAN, fan_landmarks, load_awing_fan
from ..nets.dlib_face import MODEL_PACKAGE, DlibShapePredictor
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .identity import batch_faces, mtcnn_detector, reference_faces
from .face_analysis import packaged_model
from .reference_cache import package_version, reference_cache

LANDMARKS_68 = "dlib-shape-predictor-68"
N_POINTS = 68
#: outer corners of the right and left eye in the 68-point (iBUG 300-W) markup, 0-based
OUTER_EYE_CORNERS = (36, 45)
_PROTOCOL = (f"dlib 68-point shape predictor ({MODEL_PACKAGE}) on the ground truth and on the "
             f"restored image, both started from the ground truth's largest face box "
             f"({DETECTOR_PROTOCOL}); mean Euclidean distance over the 68 points")
_UNSCORED = ("; NaN (counted as unscored) when either image has no MTCNN face (restored side "
             "recorded by lmd-dlib-found)")


def landmark_predictor(ctx: MetricContext) -> DlibShapePredictor:
    """The run's dlib 68-point predictor (built once per run and file)."""
    path = packaged_model(LANDMARKS_68, ctx.weights_overrides)
    return ctx.shared(("dlib-68", str(path)), lambda: DlibShapePredictor(path, LANDMARKS_68))


def _gt_namespace(ctx: MetricContext, predictor: DlibShapePredictor) -> str:
    refs = reference_cache(ctx)
    return ctx.shared(("dlib-68-gt-namespace", str(predictor.path)), lambda: refs.namespace(
        {"what": "dlib-68-gt-box-landmarks", "detector": DETECTOR_PROTOCOL,
         "facenet-pytorch": package_version("facenet-pytorch"),
         "dlib": package_version("dlib-bin") or package_version("dlib")}, [predictor.path]))


def _gt_box_landmarks(gt: torch.Tensor, predictor: DlibShapePredictor, faces: list[FaceDetection]
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """One ground truth ``(1, 3, H, W)`` uint8 and its MTCNN ``faces``: its largest MTCNN box
    ``(4,)`` float64 and the 68 landmarks ``(68, 2)`` int64 found in it; ``(None, None)`` without
    a face."""
    face = main_face(faces)
    if face is None:
        return None, None
    lm = predictor.landmarks(to_hwc_numpy(gt)[0], face.box)
    return torch.as_tensor(np.asarray(face.box, np.float64)), torch.from_numpy(lm)


def mean_point_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the points of the Euclidean distance of two ``(K, 2)`` landmark sets, float64."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=1).mean())


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance of the outer eye corners (points 36, 45) of a ``(68, 2)`` landmark set."""
    i, j = OUTER_EYE_CORNERS
    return mean_point_distance(landmarks[i:i + 1], landmarks[j:j + 1])


def landmark_distances(batch: Batch, ctx: MetricContext, predictor: DlibShapePredictor,
                       detector: MTCNNDetector) -> dict[str, np.ndarray]:
    """Per image ``{"px": (N,), "iod": (N,), "found": (N,)}`` float64 (the protocol above):
    ``px``/``iod`` NaN without a face on either side; ``found`` 1/0 for a face on the restored
    image, NaN without a ground-truth face. Computed once per batch for the three metrics."""
    def run() -> dict[str, np.ndarray]:
        batch.reference_for("lmd-dlib")
        per_gt = reference_cache(ctx).per_reference_at(
            _gt_namespace(ctx, predictor), batch,
            lambda y, i: _gt_box_landmarks(y, predictor, reference_faces(batch, i, ctx, detector)))
        restored = to_hwc_numpy(batch.restored)
        faces = batch_faces(batch, "restored", detector)
        n = len(batch)
        px, iod, found = (np.full(n, np.nan) for _ in range(3))
        for i, (box, lm_gt) in enumerate(per_gt):
            if box is None:
                continue
            found[i] = 1.0 if faces[i] else 0.0
            if not faces[i]:
                continue
            lm_g = lm_gt.numpy()
            px[i] = mean_point_distance(predictor.landmarks(restored[i], box.numpy()), lm_g)
            iod[i] = px[i] / inter_ocular(lm_g)
        return {"px": px, "iod": iod, "found": found}

    return batch.memo(("lmd-dlib",), run)


class _LandmarkDistance(Metric):
    family = "standard"
    kind = "paired"
    weights = (LANDMARKS_68,)
    #: which value of :func:`landmark_distances` the metric reports
    field = ""

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.predictor = landmark_predictor(ctx)
        self.detector = mtcnn_detector(ctx)

    def compute(self, batch: Batch) -> np.ndarray:
        return landmark_distances(batch, self.ctx, self.predictor, self.detector)[self.field]


@metrics.register("lmd-dlib")
class LandmarkDistanceDlib(_LandmarkDistance):
    label = "LMD (dlib, px)"
    higher_is_better = False
    field = "px"
    protocol = _PROTOCOL + ", in pixels of the ground-truth image" + _UNSCORED


@metrics.register("lmd-dlib-iod")
class LandmarkDistanceDlibIOD(_LandmarkDistance):
    label = "LMD/IOD (dlib)"
    higher_is_better = False
    field = "iod"
    protocol = (_PROTOCOL + ", divided by the ground truth's inter-ocular distance (outer eye "
                "corners, points 36/45)" + _UNSCORED)


@metrics.register("lmd-dlib-found")
class LandmarkFaceFoundDlib(_LandmarkDistance):
    label = "LMD face found"
    higher_is_better = True
    field = "found"
    protocol = ("per image 1 when the restored image has an MTCNN face (" + DETECTOR_PROTOCOL +
                "), else 0 (lmd-dlib then NaN); NaN when the ground truth has none; mean = "
                "fraction of ground-truth faces that lmd-dlib scores")



# -- lmd-fan: the 98-point AdaptiveWing FAN of facexlib ------------------------------------------------
LANDMARKS_98 = "awing-fan"
_FAN_PROTOCOL = ("facexlib's AdaptiveWing FAN (alignment_WFLW_4HG.pth, 98 WFLW points) as its "
                 "get_landmarks runs it (bilinear 256x256, RGB/255, heatmap argmax + quarter-pixel "
                 "step) on the crop of the ground truth's largest face box (" + DETECTOR_PROTOCOL +
                 "), the same crop on the ground truth and on the restored image; mean Euclidean "
                 "distance over the 98 points, in pixels of the ground-truth image")


def face_crop(image_hwc: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of a face box: ``(crop (h, w, 3), origin (x0, y0) float64)``.

    The box ``(x0, y0, x1, y1)`` (MTCNN's, float pixel edges) is widened to whole pixels
    (floor of the top-left, ceil of the bottom-right) and clipped to the image, so every pixel the
    box touches is in the crop. The crop of a ground truth's box cut from its restored image (same
    size) covers the same pixels."""
    h, w = image_hwc.shape[:2]
    x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x1, y1 = min(w, math.ceil(box[2])), min(h, math.ceil(box[3]))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ValueError(f"face box {tuple(box)} lies outside the {w}x{h} image")
    return image_hwc[y0:y1, x0:x1], np.array([x0, y0], np.float64)


def fan_image_landmarks(net: AWingFAN, image_hwc: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The 98 landmarks ``(98, 2)`` float64 ``(x, y)`` of ``image_hwc`` (uint8 RGB) found in the
    crop of ``box``, in image pixels with the corner origin of :func:`fan_landmarks`."""
    crop, origin = face_crop(image_hwc, box)
    return fan_landmarks(net, np.ascontiguousarray(crop)) + origin


def fan_network(ctx: MetricContext) -> tuple[AWingFAN, Path]:
    """The run's FAN (built once per run, file and device) and its file; raises
    :class:`~faceblur_bench.errors.WeightsMissingError` with the fetch command when the file is absent."""
    path = wts.resolve(LANDMARKS_98, ctx.weights_overrides)
    return ctx.shared(("awing-fan", str(path), str(ctx.device)),
                      lambda: load_awing_fan(path, ctx.device)), path


def fan_distances(batch: Batch, ctx: MetricContext, net: AWingFAN, path: Path,
                  detector: MTCNNDetector) -> np.ndarray:
    """``lmd-fan`` per image ``(N,)`` float64 with the FAN ``net`` loaded from ``path``: NaN
    without a face on either side (the rules of :func:`landmark_distances`)."""
    import cv2

    batch.reference_for("lmd-fan")
    refs = reference_cache(ctx)
    ns = ctx.shared(("awing-fan-gt-namespace", str(path)), lambda: refs.namespace(
        {"what": "awing-fan-gt-box-landmarks", "detector": DETECTOR_PROTOCOL,
         "facenet-pytorch": package_version("facenet-pytorch"), "crop": "box floor/ceil, clipped",
         "resize": "cv2 bilinear 256", "opencv": cv2.__version__}, [path]))

    def gt_side(gt: torch.Tensor, i: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        face = main_face(reference_faces(batch, i, ctx, detector))
        if face is None:
            return None, None
        box = np.asarray(face.box, np.float64)
        return torch.from_numpy(box), torch.from_numpy(fan_image_landmarks(net, to_hwc_numpy(gt)[0], box))

    per_gt = refs.per_reference_at(ns, batch, gt_side)
    restored = to_hwc_numpy(batch.restored)
    faces = batch_faces(batch, "restored", detector)
    out = np.full(len(batch), np.nan)
    for i, (box, lm_gt) in enumerate(per_gt):
        if box is not None and faces[i]:
            out[i] = mean_point_distance(fan_image_landmarks(net, restored[i], box.numpy()), lm_gt.numpy())
    return out


@metrics.register("lmd-fan")
class LandmarkDistanceFAN(Metric):
    label = "LMD (FAN, px)"
    family = "standard"
    kind = "paired"
    higher_is_better = False
    weights = (LANDMARKS_98,)
    protocol = _FAN_PROTOCOL + _UNSCORED

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.net, self.path = fan_network(ctx)
        self.detector = mtcnn_detector(ctx)

    def compute(self, batch: Batch) -> np.ndarray:
        return fan_distances(batch, self.ctx, self.net, self.path, self.detector)
