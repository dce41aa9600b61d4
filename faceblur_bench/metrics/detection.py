"""Face detection rate on restored images (Shen et al. IJCV, Table 11).

``detection-rate``: MTCNN (facenet-pytorch weights, min face 20 px, stage thresholds
0.6/0.7/0.8 — a face is detected when the final O-Net stage scores it above 0.8) run on each
restored image; per image 1.0 when at least one face is found, else 0.0; value = mean over images
(the fraction of restored images with a detectable face). Needs no ground truth, so it also
applies to real blur. Each restored image is detected alone, once per run for every metric
that needs its faces (:mod:`.face_analysis`).
"""

from __future__ import annotations

import numpy as np

from ..nets.align import DETECTOR_PROTOCOL
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .face_analysis import analyses
from .identity import mtcnn_detector


@metrics.register("detection-rate")
class DetectionRate(Metric):
    label = "Det. rate"
    family = "standard"
    higher_is_better = True
    needs_reference = False
    weights = ()
    protocol = (DETECTOR_PROTOCOL + " on the restored image; 1 if at least one face is found (final "
                "stage probability > 0.8) else 0; mean over images")

    def setup(self, ctx: MetricContext) -> None:
        self.ctx = ctx
        self.detector = mtcnn_detector(ctx)

    def compute(self, batch: Batch) -> np.ndarray:
        faces = [f.restored_faces() for f in analyses(batch, self.ctx, self.name)]
        return np.array([1.0 if f else 0.0 for f in faces], dtype=np.float64)
