"""Face detection (MTCNN, facenet-pytorch) and 5-point ArcFace alignment to 112×112.

Detector: facenet-pytorch's MTCNN (P/R/O-Net weights ship inside the wheel, so nothing is
downloaded) configured like the MTCNN of the MSPL/DFPG verification code: minimum face 20 px,
stage thresholds 0.6/0.7/0.8, pyramid factor 0.707. A face counts as detected when the O-Net
stage accepts it (probability > 0.8).

Alignment: insightface's ``face_align.norm_crop`` (similarity transform of the 5 landmarks —
left eye, right eye, nose tip, left and right mouth corners, in image coordinates — onto the
ArcFace 112×112 template, which is also TreB1eN's ``default_square`` reference used by the
paper protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

ALIGNED_SIZE = 112
MIN_FACE_SIZE = 20
STAGE_THRESHOLDS = (0.6, 0.7, 0.8)
PYRAMID_FACTOR = 0.707
DETECTOR_PROTOCOL = (f"MTCNN (facenet-pytorch weights), min face {MIN_FACE_SIZE} px, stage thresholds "
                     f"{'/'.join(str(t) for t in STAGE_THRESHOLDS)}, pyramid factor {PYRAMID_FACTOR}")


@dataclass(frozen=True)
class FaceDetection:
    """One detected face: ``box`` (x1, y1, x2, y2) pixels, ``prob`` in [0, 1], ``landmarks`` (5, 2)."""

    box: np.ndarray
    prob: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


def main_face(faces: Sequence[FaceDetection]) -> FaceDetection | None:
    """The largest detected face (ties: higher probability), or None when there is none."""
    if not faces:
        return None
    return max(faces, key=lambda f: (f.area, f.prob))


class MTCNNDetector:
    """Batched MTCNN on a torch device. Build once per run (``ctx.shared``)."""

    def __init__(self, device: torch.device | str = "cpu"):
        from facenet_pytorch import MTCNN

        self.device = torch.device(device)
        self.net = MTCNN(min_face_size=MIN_FACE_SIZE, thresholds=list(STAGE_THRESHOLDS),
                         factor=PYRAMID_FACTOR, keep_all=True, select_largest=False,
                         device=self.device)
        self.net.eval()

    def detect(self, images: torch.Tensor | np.ndarray) -> list[list[FaceDetection]]:
        """All faces in each image, highest probability first.

        images: uint8 ``(N, 3, H, W)`` tensor (the Batch layout), or one ``(H, W, 3)`` uint8 RGB
        array. Returns a list of N lists (one list for a single image).
        """
        if isinstance(images, np.ndarray):
            if images.ndim != 3 or images.shape[2] != 3 or images.dtype != np.uint8:
                raise ValueError(f"expected one (H, W, 3) uint8 RGB image, got {images.shape} "
                                 f"{images.dtype}")
            hwc = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))[None]
        else:
            if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
                raise ValueError(f"expected uint8 (N, 3, H, W) images, got {tuple(images.shape)} "
                                 f"{images.dtype}")
            hwc = images.permute(0, 2, 3, 1)
        if hwc.shape[0] == 0:
            return []
        hwc = hwc.to(self.device).contiguous()
        with torch.no_grad():
            boxes, probs, points = self.net.detect(hwc, landmarks=True)
        out: list[list[FaceDetection]] = []
        for b, p, pts in zip(boxes, probs, points):
            faces: list[FaceDetection] = []
            if b is not None:
                # facenet-pytorch returns object arrays under numpy 2: convert explicitly
                b = np.asarray(b.tolist() if isinstance(b, np.ndarray) else b, dtype=np.float64)
                p = np.asarray(p.tolist() if isinstance(p, np.ndarray) else p, dtype=np.float64)
                pts = np.asarray(pts.tolist() if isinstance(pts, np.ndarray) else pts, dtype=np.float64)
                for i in range(b.shape[0]):
                    faces.append(FaceDetection(b[i, :4].copy(), float(p[i]), pts[i].reshape(5, 2).copy()))
                faces.sort(key=lambda f: -f.prob)
            out.append(faces)
        return out


def align_face(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp ``image_rgb`` (H, W, 3) uint8 so that ``landmarks`` (5, 2) land on the ArcFace template.

    Returns ``(size, size, 3)`` uint8 in the input's channel order (borders filled with 0).
    """
    from insightface.utils import face_align

    lm = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    return face_align.norm_crop(np.ascontiguousarray(image_rgb), landmark=lm, image_size=size)


def to_hwc_numpy(images: torch.Tensor) -> np.ndarray:
    """uint8 ``(N, 3, H, W)`` tensor (any device) → uint8 ``(N, H, W, 3)`` numpy array."""
    return images.detach().permute(0, 2, 3, 1).contiguous().cpu().numpy()
