"""Identity / perceptual-network metrics: d_VGG and d_ARC (paper protocols), ArcFace (standard).

``dvgg`` (paper; SAPPGAN ``test/calculate_dVGG_ArcFace.py``): VGGFace16 in torchvision's vgg16
layout, ``features[0..30]`` (through pool5), input = uint8 RGB cast to float **0–255 without mean
subtraction**, ``nn.MSELoss`` (mean over all elements of the two feature maps) per image.

``darc`` (paper; SAPPGAN ``test/arcfaceloss.py``): GFPGAN's ResNetArcFace-18 (IRBlock [2,2,2,2],
no SE, 1-channel input) from ``arcface_resnet18.pth`` (``module.`` prefix stripped), gray =
0.2989 R + 0.5870 G + 0.1140 B on 0–255 values, bilinear resize to 128×128
(``align_corners=False``), ``nn.MSELoss`` between the raw 512-d outputs (not normalised).

``arcface`` (standard): insightface recognition model (buffalo_l ``w600k_r50.onnx`` by default;
any ArcFace ONNX through ``--weights arcface-r50=PATH``) run with insightface's own
``model_zoo.get_model(path)`` → ``ArcFaceONNX.get_feat`` on 112×112 crops aligned with
``face_align.norm_crop``. **Alignment rule:** the 5 MTCNN landmarks are detected on the ground
truth and the *same* warp is applied to the ground truth and to the restored image, so a
restoration that destroys the face is still scored (a detector run on the restored image would
drop exactly the worst outputs). Distance = 1 − cosine similarity. An image whose ground truth has
no detectable face gets NaN; the engine counts it as "unscored" in the run summary.

Shared work (per batch, through ``batch.memo``): MTCNN detections of the restored images,
ResNetArcFace-18 embeddings, ArcFace-ONNX embeddings (ground-truth-aligned) — the verification and
identification metrics reuse them. The ground truth's MTCNN detections (:func:`reference_faces`)
are computed once per image for every metric that starts from them (ArcFace, MobileFaceNet, the
dlib family, the landmark distances) and kept in the reference cache once per ground-truth file.
Networks are built once per run through ``ctx.shared``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import weights as wts
from ..errors import UsageError, WeightsIntegrityError
from ..nets.align import (
    DETECTOR_PROTOCOL,
    FaceDetection,
    MTCNNDetector,
    align_face,
    main_face,
    to_hwc_numpy,
)
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .reference_cache import package_version, reference_cache

#: gray conversion of the d_ARC protocol (GFPGAN / SAPPGAN)
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
ARCFACE_DEFAULT = "arcface-r50"


#: ``ctx.shared`` key of the run's face-analysis sharing switch (the engine sets it; absent: shared)
SHARING_KEY = ("face-analysis", "sharing")


def sharing(ctx: MetricContext) -> bool:
    """Whether the metrics of ``ctx``'s run share one face analysis per image (the restored side
    in :mod:`.face_analysis`, the ground truth's detections in :func:`reference_faces`)."""
    return bool(ctx.shared(SHARING_KEY, lambda: True))


# -- shared building blocks -----------------------------------------------------------------------
def mtcnn_detector(ctx: MetricContext) -> MTCNNDetector:
    """The run's MTCNN detector (built once per run and device)."""
    return ctx.shared(("mtcnn", str(ctx.device)), lambda: MTCNNDetector(ctx.device))


def batch_faces(batch: Batch, which: str, detector: MTCNNDetector) -> list[list[FaceDetection]]:
    """MTCNN detections of ``batch.<which>`` (``"restored"`` / ``"reference"``), once per batch."""
    def run() -> list[list[FaceDetection]]:
        images = getattr(batch, which)
        if images is None:
            raise UsageError(f"batch has no {which} images")
        return detector.detect(images)

    return batch.memo(("faces", "mtcnn", which), run)


def _faces_namespace(ctx: MetricContext) -> str:
    """Reference-cache namespace of the ground truth's MTCNN detections: the detector protocol and
    the package that ships its weights and computes it (torch and the device type are part of
    every namespace)."""
    refs = reference_cache(ctx)
    return ctx.shared(("gt-mtcnn-faces-namespace",), lambda: refs.namespace(
        {"what": "gt-mtcnn-faces", "detector": DETECTOR_PROTOCOL, "input": "one image alone",
         "facenet-pytorch": package_version("facenet-pytorch")}))


def pack_faces(faces: list[FaceDetection]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detections of one image as tensors (what the reference cache stores): boxes ``(K, 4)``,
    probabilities ``(K,)``, landmarks ``(K, 5, 2)``, all float64 — the detector's own values, so
    :func:`unpack_faces` gives back the same bits in the same order."""
    return (torch.from_numpy(np.array([f.box for f in faces], np.float64).reshape(-1, 4)),
            torch.tensor([f.prob for f in faces], dtype=torch.float64),
            torch.from_numpy(np.array([f.landmarks for f in faces], np.float64).reshape(-1, 5, 2)))


def unpack_faces(packed: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> list[FaceDetection]:
    """Inverse of :func:`pack_faces`."""
    boxes, probs, lms = (t.numpy() for t in packed)
    return [FaceDetection(boxes[k].copy(), float(probs[k]), lms[k].copy()) for k in range(len(probs))]


def reference_faces(batch: Batch, i: int, ctx: MetricContext, detector: MTCNNDetector
                    ) -> list[FaceDetection]:
    """MTCNN detections of ground truth ``i`` of ``batch``, highest probability first.

    Run on that image alone (a batch of one: batched detections differ in their last bits), once
    per image for every metric of the run (memo of the image's one-image view, which the paired
    metrics score and a set metric's whole batch is cut into) and once per ground-truth file
    (reference cache, namespace ``gt-mtcnn-faces``). With sharing off (:func:`sharing`) the caller
    gets a detection of its own, as when each metric detected alone."""
    if batch.reference is None:
        raise ValueError("reference_faces needs a batch with ground-truth images")
    if not sharing(ctx):
        return detector.detect(batch.reference[i:i + 1])[0]
    view = batch.images()[i]

    def run() -> list[FaceDetection]:
        (packed,) = reference_cache(ctx).per_reference(
            _faces_namespace(ctx), view, lambda gt: pack_faces(detector.detect(gt)[0]))
        return unpack_faces(packed)

    return view.memo(("faces", "mtcnn", "reference-alone"), run)


def main_landmarks(faces: list[list[FaceDetection]]) -> list[np.ndarray | None]:
    """Landmarks (5, 2) of the largest face per image, None where no face was found."""
    out = []
    for f in faces:
        m = main_face(f)
        out.append(None if m is None else m.landmarks)
    return out


def gray_resize_0_255(images: torch.Tensor, size: int = 128) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` → float32 ``(N, 1, size, size)`` gray in 0–255 (d_ARC protocol)."""
    x = images.float()
    r, g, b = GRAY_WEIGHTS
    gray = (r * x[:, 0] + g * x[:, 1] + b * x[:, 2]).unsqueeze(1)
    return F.interpolate(gray, (size, size), mode="bilinear", align_corners=False)


class ArcFaceONNXEmbedder:
    """An insightface ArcFace ONNX model, loaded with ``insightface.model_zoo.get_model``.

    ``embed`` takes ``(N, 112, 112, 3)`` uint8 **RGB** aligned crops and returns ``(N, D)``
    float32 raw embeddings (insightface's ``get_feat``: BGR input, ``(x − 127.5)/127.5``).
    """

    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        import onnxruntime as ort
        from insightface.model_zoo import model_zoo
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        self.path = Path(path)
        device = torch.device(device)
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        try:
            model = model_zoo.get_model(str(self.path), providers=providers)
        except Exception as exc:  # onnx parse errors, ORT session errors
            raise WeightsIntegrityError(
                f"cannot load ArcFace ONNX model {self.path}: {type(exc).__name__}: {exc}",
                "point --weights arcface-r50=PATH at an insightface recognition .onnx file",
            ) from None
        if not isinstance(model, ArcFaceONNX):
            raise WeightsIntegrityError(
                f"{self.path} is not an ArcFace recognition model (insightface routed it to "
                f"{type(model).__name__})",
                "use a recognition model with a square >=112 px input and one embedding output "
                "(e.g. buffalo_l/w600k_r50.onnx)",
            )
        if tuple(model.input_size) != (112, 112):
            raise WeightsIntegrityError(
                f"{self.path} expects {model.input_size} inputs; the ArcFace protocol aligns to 112x112",
                "use a 112x112 ArcFace recognition model",
            )
        self.model = model
        self.dim = int(model.output_shape[-1]) if isinstance(model.output_shape[-1], int) else None

    def embed(self, aligned_rgb: np.ndarray) -> np.ndarray:
        if len(aligned_rgb) == 0:
            return np.zeros((0, self.dim or 512), np.float32)
        bgr = [np.ascontiguousarray(a[:, :, ::-1]) for a in aligned_rgb]
        return np.asarray(self.model.get_feat(bgr), dtype=np.float32).reshape(len(bgr), -1)


def arcface_embedder(ctx: MetricContext, name: str = ARCFACE_DEFAULT) -> ArcFaceONNXEmbedder:
    """The ArcFace ONNX model of weight entry ``name`` (built once per run; raises if missing)."""
    path = wts.resolve(name, ctx.weights_overrides)
    return ctx.shared(("arcface-onnx", str(path), str(ctx.device)),
                      lambda: ArcFaceONNXEmbedder(path, ctx.device))


def embed_aligned(embedder: ArcFaceONNXEmbedder, images_hwc: np.ndarray,
                  landmarks: list[np.ndarray | None]) -> np.ndarray:
    """Embeddings ``(N, D)`` float32 of images aligned with ``landmarks``; NaN rows where None."""
    idx = [i for i, lm in enumerate(landmarks) if lm is not None]
    crops = np.stack([align_face(images_hwc[i], landmarks[i]) for i in idx]) if idx else \
        np.zeros((0, 112, 112, 3), np.uint8)
    emb = embedder.embed(crops)
    width = emb.shape[1] if emb.ndim == 2 and emb.shape[0] else (embedder.dim or 512)
    out = np.full((len(landmarks), width), np.nan, np.float32)
    if idx:
        out[idx] = emb
    return out


def arcface_pair_embeddings(batch: Batch, ctx: MetricContext, embedder: ArcFaceONNXEmbedder,
                            detector: MTCNNDetector) -> dict[str, np.ndarray]:
    """ArcFace embeddings of restored and reference, both aligned with the reference's landmarks.

    Returns ``{"restored": (N, D), "reference": (N, D), "face": (N,) bool}``; rows are NaN where
    the reference has no detectable face. Without a reference (real blur) the restored image's
    own landmarks are used and ``"reference"`` is all NaN. Computed once per batch and model.
    """
    def run() -> dict[str, np.ndarray]:
        restored = to_hwc_numpy(batch.restored)
        if batch.reference is not None:  # landmarks + embedding of each ground truth, once
            refs = reference_cache(ctx)
            ns = ctx.shared(("arcface-gt-namespace", str(embedder.path)), lambda: refs.namespace(
                {"what": "arcface-gt-landmarks-embedding", "detector": DETECTOR_PROTOCOL,
                 "facenet-pytorch": package_version("facenet-pytorch"),
                 "insightface": package_version("insightface"), "align": "norm_crop 112"},
                [embedder.path]))
            per_gt = refs.per_reference_at(ns, batch, lambda y, i: _gt_landmarks_embedding(
                y, embedder, reference_faces(batch, i, ctx, detector)))
            lms = [None if lm is None else lm.numpy() for lm, _ in per_gt]
            ref_emb = np.concatenate([e.numpy() for _, e in per_gt]) if per_gt else \
                np.zeros((0, embedder.dim or 512), np.float32)
        else:
            lms = main_landmarks(batch_faces(batch, "restored", detector))
            ref_emb = None
        res_emb = embed_aligned(embedder, restored, lms)
        if ref_emb is None:
            ref_emb = np.full_like(res_emb, np.nan)
        face = np.array([lm is not None for lm in lms], dtype=bool)
        return {"restored": res_emb, "reference": ref_emb, "face": face}

    return batch.memo(("arcface-onnx", str(embedder.path), "gt-aligned"), run)


def _gt_landmarks_embedding(gt: torch.Tensor, embedder: ArcFaceONNXEmbedder,
                            faces: list[FaceDetection]) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One ground truth ``(1, 3, H, W)`` uint8 and its MTCNN ``faces``: its main face's landmarks
    ``(5, 2)`` (None when no face) and its aligned ArcFace embedding ``(1, D)`` (NaN row when no face)."""
    (lm,) = main_landmarks([faces])
    emb = embed_aligned(embedder, to_hwc_numpy(gt), [lm])
    return (None if lm is None else torch.from_numpy(np.asarray(lm, np.float32).copy())), torch.from_numpy(emb)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``1 − cos(a_i, b_i)`` in float64; NaN where a row is NaN or zero."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return 1.0 - cos


# -- metrics ------------------------------------------------------------------------------------
@metrics.register("dvgg")
class DVGG(Metric):
    label = "d_VGG"
    family = "paper"
    higher_is_better = False
    weights = ("vggface16",)
    protocol = ("VGGFace16 (torchvision vgg16 layout, 2622 classes) features[0..30] (through pool5) "
                "on raw 0-255 RGB without mean subtraction; MSE over all feature elements per image; "
                "mean over images (SAPPGAN/MSPL code)")

    def setup(self, ctx: MetricContext) -> None:
        from ..nets.vggface import load_vggface16_features

        path = wts.resolve("vggface16", ctx.weights_overrides)
        self.net = ctx.shared(("vggface16-pool5", str(path), str(ctx.device)),
                              lambda: load_vggface16_features(path, ctx.device))
        self.refs = reference_cache(ctx)
        self.ref_namespace = self.refs.namespace({"what": "vggface16-pool5", "input": "0-255 raw"}, [path])

    def compute(self, batch: Batch) -> np.ndarray:
        batch.reference_for(self.name)
        h, w = batch.restored.shape[-2:]
        if min(h, w) < 32:
            raise UsageError(f"d_VGG needs images of at least 32x32 pixels (got {h}x{w})")
        fy = self.refs.per_reference(self.ref_namespace, batch, lambda y: self.net(y.float()))
        with torch.no_grad():
            # one image per forward, like the ground truth: an output equal to its ground truth
            # has exactly the same features (distance 0.0, not a rounding residue)
            fx = torch.cat([self.net(batch.restored[i:i + 1].float()) for i in range(len(batch))])
            fy = torch.cat(fy).to(fx.device)
            d = (fx - fy).pow(2).flatten(1).mean(1)
        return d.double().cpu().numpy()


@metrics.register("darc")
class DARC(Metric):
    label = "d_ARC"
    family = "paper"
    higher_is_better = False
    weights = ("arcface-resnet18",)
    protocol = ("GFPGAN ResNetArcFace-18 (arcface_resnet18.pth) on gray 0.2989R+0.587G+0.114B in 0-255, "
                "bilinear to 128x128, no alignment; MSE between the raw 512-d embeddings; mean over "
                "images (SAPPGAN code)")

    def setup(self, ctx: MetricContext) -> None:
        from ..nets.arcface_resnet import load_arcface_resnet18

        path = wts.resolve("arcface-resnet18", ctx.weights_overrides)
        self.path = path
        self.net = ctx.shared(("arcface-resnet18", str(path), str(ctx.device)),
                              lambda: load_arcface_resnet18(path, ctx.device))
        self.refs = reference_cache(ctx)
        self.ref_namespace = self.refs.namespace(
            {"what": "resnetarcface18-embedding", "input": "gray 0.2989/0.587/0.114 0-255, bilinear 128"}, [path])

    def embeddings(self, batch: Batch, which: str) -> torch.Tensor:
        """Raw ResNetArcFace-18 embeddings ``(N, 512)`` of ``batch.<which>`` (memoised; those of
        the ground truth once per file, through the reference cache)."""
        def run() -> torch.Tensor:
            if which == "reference":
                embs = self.refs.per_reference(self.ref_namespace, batch,
                                               lambda y: self.net(gray_resize_0_255(y)))
                return torch.cat(embs).to(batch.reference.device)
            with torch.no_grad():
                return self.net(gray_resize_0_255(getattr(batch, which)))

        return batch.memo(("arcface-resnet18", str(self.path), which), run)

    def compute(self, batch: Batch) -> np.ndarray:
        batch.reference_for(self.name)
        a = self.embeddings(batch, "restored")
        b = self.embeddings(batch, "reference")
        return (a - b).pow(2).mean(1).double().cpu().numpy()


@metrics.register("arcface")
class ArcFaceDistance(Metric):
    label = "ArcFace dist"
    family = "standard"
    higher_is_better = False
    weights = (ARCFACE_DEFAULT,)
    protocol = ("insightface ArcFace ONNX (buffalo_l w600k_r50 by default) on 112x112 norm_crop faces; "
                "both images warped with the ground truth's 5 landmarks (" + DETECTOR_PROTOCOL + "); "
                "1 - cosine; NaN (counted as unscored) when the ground truth has no face")

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.embedder = arcface_embedder(ctx, ARCFACE_DEFAULT)
        self.detector = mtcnn_detector(ctx)

    def compute(self, batch: Batch) -> np.ndarray:
        batch.reference_for(self.name)
        e = arcface_pair_embeddings(batch, self.ctx, self.embedder, self.detector)
        return cosine_distance(e["restored"], e["reference"])

