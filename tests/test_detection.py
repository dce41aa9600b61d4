"""Face detection rate and the MTCNN / alignment helpers on real face photos."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceblur_bench.metrics.base import MetricContext

sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared helpers, any import mode
from test_metrics_identity import face_crop, to_batch


@pytest.fixture(scope="module")
def detector():
    from faceblur_bench.nets.align import MTCNNDetector

    return MTCNNDetector("cpu")


def test_detection_rate_per_image_flags_and_mean(detector):
    from facenet_pytorch import MTCNN

    from faceblur_bench.metrics.detection import DetectionRate

    face = face_crop(128)
    blank = np.full_like(face, 200)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, face.shape, dtype=np.uint8)
    imgs = [face, blank, face[:, ::-1].copy(), noise]
    m = DetectionRate()
    ctx = MetricContext("cpu")
    m.setup(ctx)
    assert m.detector is ctx.shared(("mtcnn", "cpu"), lambda: None)
    got = m.compute(to_batch(imgs, None))  # no ground truth needed
    # independent: facenet-pytorch MTCNN with the stated thresholds, one image at a time
    ref = MTCNN(keep_all=True, thresholds=[0.6, 0.7, 0.8], factor=0.707, min_face_size=20)
    expect = [0.0 if ref.detect(torch.from_numpy(im.copy())[None])[0][0] is None else 1.0 for im in imgs]
    assert got.tolist() == expect
    assert got[0] == 1.0 and got[1] == 0.0 and got[2] == 1.0
    assert m.needs_reference is False and "0.8" in m.protocol


def test_detections_memoised_per_image_and_shared(detector, monkeypatch):
    from faceblur_bench.metrics.detection import DetectionRate
    from faceblur_bench.metrics.identity import batch_faces

    calls = []
    orig = detector.detect

    def counting(images):
        calls.append(len(images))
        return orig(images)

    monkeypatch.setattr(detector, "detect", counting)
    ctx = MetricContext("cpu")
    ctx.shared(("mtcnn", "cpu"), lambda: detector)
    m = DetectionRate()
    m.setup(ctx)
    batch = to_batch([face_crop(128)] * 2, [face_crop(128)] * 2)
    m.compute(batch)
    m.compute(batch)
    # each image detected alone (as the engine scores it), once: the views' memo serves the
    # ArcFace metrics too
    faces = [batch_faces(view, "restored", detector)[0] for view in batch.images()]
    assert calls == [1, 1] and len(faces) == 2 and all(len(f) == 1 for f in faces)


def test_single_image_and_batch_detection_agree(detector):
    face = face_crop(128)
    one = detector.detect(face)[0]
    batch = detector.detect(torch.from_numpy(np.stack([face, face])).permute(0, 3, 1, 2))
    assert len(one) == 1 and len(batch) == 2
    np.testing.assert_allclose(one[0].landmarks, batch[1][0].landmarks, atol=1e-3)
    assert 0.8 < one[0].prob <= 1.0
    lm = one[0].landmarks
    # anatomy: left eye left of right eye, nose between and below the eyes, mouth below the nose
    assert lm[0, 0] < lm[1, 0] and lm[0, 1] < lm[2, 1] < lm[3, 1]
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(face.astype(np.float32))


def test_alignment_puts_landmarks_on_arcface_template(detector):
    from insightface.utils import face_align

    from faceblur_bench.nets.align import align_face

    face = face_crop(128)
    lm = detector.detect(face)[0][0].landmarks
    crop = align_face(face, lm)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    m = face_align.estimate_norm(lm.astype(np.float32), 112)
    mapped = np.c_[lm, np.ones(5)] @ m.T
    template = face_align.arcface_dst
    # a similarity fit of a real face: every landmark within a few pixels of the template
    assert np.abs(mapped - template).max() < 6.0
    # re-detecting on the aligned crop finds the eyes where the template puts them
    again = detector.detect(crop)[0]
    assert len(again) >= 1
    assert np.abs(again[0].landmarks[:2] - template[:2]).max() < 6.0
