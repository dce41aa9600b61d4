"""dlib face-recognition metrics with the REAL dlib weights (installed from PyPI with
face-recognition-models), on real faces of the demo split: agreement with dlib's own call,
known answers, packaging (model files found without importing the package, sha256), and the
"n/a — install ..." path when dlib or the model package is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dlib  # a default dependency (dlib-bin): this module fails, not skips, without it
import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from faceblur_bench import weights as wts
from faceblur_bench.data.base import Sample
from faceblur_bench.errors import PackageMissingError
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.metrics.verification import (
    FALLBACK_SOURCE,
    NotApplicableError,
    build_pairs,
    fallback_pairs,
    lfw_10fold,
    lfw_10fold_distances,
)
from faceblur_bench.nets.align import main_face
from faceblur_bench.registry import metrics

DLIB_METRICS = ("identity-dlib", "identity-kept-dlib", "verification-dlib")


# -- fixtures: real weights, real faces ------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx() -> MetricContext:
    return MetricContext("cpu")


@pytest.fixture(scope="module")
def recognizer(ctx):
    from faceblur_bench.metrics.face_analysis import dlib_recognizer

    return dlib_recognizer(ctx)


@pytest.fixture(scope="module")
def detector(ctx):
    from faceblur_bench.metrics.identity import mtcnn_detector

    return mtcnn_detector(ctx)


@pytest.fixture(scope="module")
def faces(demo_data_root) -> dict[str, np.ndarray]:
    """The demo split's ground-truth faces (real photos, 128x128 RGB), by name."""
    sharp = demo_data_root / "demo" / "sharp"
    return {p.stem: read_image(p) for p in sorted(sharp.glob("*.png"))}


@pytest.fixture(scope="module")
def own(recognizer, detector):
    """Image -> its own dlib landmarks from its largest MTCNN box (the metric's recipe)."""
    def landmarks(img: np.ndarray) -> np.ndarray:
        face = main_face(detector.detect(img)[0])
        assert face is not None
        return recognizer.landmarks(img, face.box)

    return landmarks


def _nchw(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _batch(restored: list[np.ndarray], reference: list[np.ndarray]) -> Batch:
    samples = [Sample(id=f"s{i}", blurred=Path(f"/x/{i}.png"), sharp=Path(f"/x/gt{i}.png"))
               for i in range(len(restored))]
    return Batch(samples, _nchw(restored), _nchw(reference))


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


# -- packaging -----------------------------------------------------------------------------------
def test_model_files_found_in_package_without_importing_it():
    sys.modules.pop("face_recognition_models", None)
    root = wts.package_dir("face_recognition_models")
    assert root is not None and (root / "__init__.py").is_file()
    sts = {st.entry.name: st for st in wts.status(["dlib-resnet-v1", "dlib-shape-predictor-5"])}
    for name, st in sts.items():
        assert st.path is not None and st.path.parent == root / "models", name
        assert st.hash_ok is True, f"{name}: sha256 of the installed file differs from the entry"
    # found through find_spec only: the package's __init__ (which imports pkg_resources) never ran
    assert "face_recognition_models" not in sys.modules


def test_cli_weights_lists_dlib_files_found_with_sha256(monkeypatch, capsys):
    from faceblur_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["faceblur-bench", "weights", "--json"])
    with pytest.raises(SystemExit) as ei:
        main()
    assert int(ei.value.code or 0) == 0
    recs = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, size in (("dlib-resnet-v1", 22.5), ("dlib-shape-predictor-5", 9.2)):
        r = recs[name]
        assert r["status"] == "found" and r["sha256"] == "ok" and r["size_MB"] == size, r
        assert "face_recognition_models" in r["path"]
        assert set(DLIB_METRICS) <= set(r["used_by"].split(", "))


def test_model_package_hidden_reads_install_hint(monkeypatch):
    from faceblur_bench.metrics.face_analysis import model_paths

    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # find_spec -> None
    assert wts.package_dir("face_recognition_models") is None
    st = wts.status(["dlib-resnet-v1"], hash_files=False)[0]
    assert st.path is None and st.detail == "missing"
    with pytest.raises(PackageMissingError) as ei:
        model_paths()
    assert ei.value.short == "install dlib-bin and face-recognition-models"
    assert "pip install dlib-bin face-recognition-models" in str(ei.value)


def test_weight_override_is_used_and_hash_checked(tmp_path, recognizer):
    from faceblur_bench.errors import WeightsIntegrityError
    from faceblur_bench.metrics.face_analysis import model_paths

    p, r = model_paths({"dlib-resnet-v1": str(recognizer.recognizer_path)})
    assert r == recognizer.recognizer_path and p == recognizer.predictor_path
    bad = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    bad.write_bytes(b"not a dlib model")
    with pytest.raises(WeightsIntegrityError, match="dlib-resnet-v1"):
        model_paths({"dlib-resnet-v1": str(bad)})


@pytest.mark.parametrize("hidden", ["dlib", "face_recognition_models"])
def test_run_without_dlib_reports_na_and_scores_the_rest(tmp_path, demo_data_root, hidden):
    """A subprocess where ``hidden`` cannot be imported (nor found): the CLI imports, runs, and
    the dlib metrics read "n/a — install dlib-bin and face-recognition-models"."""
    script = (f"import sys; sys.modules[{hidden!r}] = None\n"
              "from faceblur_bench.cli import main\n"
              "sys.argv = ['faceblur-bench'] + sys.argv[1:]\nmain()\n")
    out = tmp_path / "results"
    r = subprocess.run([sys.executable, "-c", script, "run", "--method", "blurred", "--split",
                        "demo", "--data-root", str(demo_data_root), "--limit", "2",
                        "--out", str(out),
                        "--metrics", "psnr," + ",".join(DLIB_METRICS), "--leaderboard",
                        str(tmp_path / "lb.md")],
                       capture_output=True, text=True, timeout=600, check=False,
                       env=dict(os.environ, COLUMNS="250"))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(next(out.glob("runs/demo/blurred/*/summary.json")).read_text())
    assert summary["metrics"]["psnr"]["value"] > 10
    for name in DLIB_METRICS:
        m = summary["metrics"][name]
        assert m["status"] == "unavailable" and m["value"] is None
        assert m["reason"] == "install dlib-bin and face-recognition-models", m
    assert "n/a — install dlib-bin and face-recognition-models" in (out / "demo.md").read_text()


# -- calibration against dlib itself (real weights) ----------------------------------------------
def test_descriptor_equals_dlibs_own_compute_face_descriptor(faces, recognizer, detector, capsys):
    """Our pipeline (landmarks -> get_face_chips -> batched descriptors of chips) equals dlib's
    one-shot ``compute_face_descriptor(img, shape)`` on the same image and landmarks."""
    sp = dlib.shape_predictor(str(recognizer.predictor_path))
    net = dlib.face_recognition_model_v1(str(recognizer.recognizer_path))
    worst = 0.0
    for name, img in faces.items():
        box = main_face(detector.detect(img)[0]).box
        rect = dlib.rectangle(*(round(float(v)) for v in box))
        shape = sp(img, rect)
        theirs = np.array(net.compute_face_descriptor(img, shape, 0, 0.25))
        lm = recognizer.landmarks(img, box)
        assert lm.tolist() == [[p.x, p.y] for p in shape.parts()], name
        ours = recognizer.describe([img], [lm])[0]
        assert ours.shape == (128,) and np.isfinite(ours).all()
        worst = max(worst, float(np.abs(ours - theirs).max()))
    with capsys.disabled():
        print(f"\n[dlib] max |ours - compute_face_descriptor| over {len(faces)} demo faces: "
              f"{worst:.3g}")
    assert worst < 1e-6


def test_same_face_zero_flipped_and_resized_small(faces, recognizer, own, capsys):
    """Known answers on real faces: itself ~0; a ±10 % resized copy < 0.3; a mirrored copy
    < 0.3 for near-frontal faces (|nose offset| < 0.35 inter-ocular: mirroring a turned head
    changes the view, so it is only required to stay the same person, < 0.6)."""
    flips, resized = {}, {}
    for name, img in faces.items():
        lm = own(img)
        d0 = recognizer.describe([img], [lm])[0]
        assert _dist(d0, recognizer.describe([img.copy()], [lm])[0]) < 1e-9
        eye_a, eye_b = lm[0:2].mean(0), lm[2:4].mean(0)
        yaw = abs(lm[4, 0] - (eye_a[0] + eye_b[0]) / 2) / np.linalg.norm(eye_a - eye_b)
        mirrored = np.ascontiguousarray(img[:, ::-1])
        flips[name] = (_dist(d0, recognizer.describe([mirrored], [own(mirrored)])[0]), yaw)
        for scale in (0.9, 1.1):
            s = round(img.shape[0] * scale)
            r = np.asarray(Image.fromarray(img).resize((s, s), Image.BICUBIC))
            resized[name, scale] = _dist(d0, recognizer.describe([r], [own(r)])[0])
    with capsys.disabled():
        print("\n[dlib] flip distance (yaw): "
              + ", ".join(f"{k} {d:.3f} ({y:.2f})" for k, (d, y) in flips.items()))
        print(f"[dlib] resize distance max {max(resized.values()):.3f}")
    frontal = {k: d for k, (d, y) in flips.items() if y < 0.35}
    assert len(frontal) >= 7
    assert max(frontal.values()) < 0.3, frontal
    assert max(d for d, _ in flips.values()) < 0.6
    assert max(resized.values()) < 0.3, resized


def test_different_people_of_the_demo_split_are_far(faces, recognizer, own, capsys):
    names = list(faces)
    desc = recognizer.describe([faces[n] for n in names], [own(faces[n]) for n in names])
    d = np.linalg.norm(desc[:, None] - desc[None], axis=2)
    off = d[~np.eye(len(names), dtype=bool)]
    with capsys.disabled():
        print(f"\n[dlib] different demo faces: min {off.min():.3f}, median {np.median(off):.3f}")
    assert len(names) >= 5 and off.min() > 0.6


def test_more_gaussian_blur_more_distance_through_the_metric(faces, ctx):
    """identity-dlib (ground-truth landmarks on both) grows with Gaussian blur, on every face."""
    m = metrics.get("identity-dlib")()
    m.setup(ctx)
    names = list(faces)
    sigmas = (0, 1, 2, 3, 5)
    by_sigma = []
    for s in sigmas:
        restored = [faces[n] if s == 0 else np.asarray(Image.fromarray(faces[n]).filter(
            ImageFilter.GaussianBlur(s))) for n in names]
        by_sigma.append(m.compute(_batch(restored, [faces[n] for n in names])))
    d = np.stack(by_sigma, 1)  # (faces, sigmas)
    assert np.abs(d[:, 0]).max() < 1e-6
    assert (np.diff(d, axis=1) > 0).all(), dict(zip(names, np.round(d, 3).tolist()))


def test_kept_and_unscored_through_the_metrics(faces, ctx):
    """Itself is kept (1), another person is not (0), a faceless ground truth is NaN; the kept
    value is exactly distance < 0.6 of identity-dlib."""
    a, b = list(faces.values())[:2]
    gray = np.full_like(a, 128)
    batch = _batch([a, b, a], [a, a, gray])
    dist_m, kept_m = metrics.get("identity-dlib")(), metrics.get("identity-kept-dlib")()
    dist_m.setup(ctx)
    kept_m.setup(ctx)
    d, k = dist_m.compute(batch), kept_m.compute(batch)
    assert d[0] < 1e-6 and d[1] > 0.6 and np.isnan(d[2])
    assert k[:2].tolist() == [1.0, 0.0] and np.isnan(k[2])


# -- verification-dlib ----------------------------------------------------------------------------
def _samples(sharps: list[str], meta: list[dict] | None = None) -> list[Sample]:
    meta = meta or [{} for _ in sharps]
    return [Sample(id=f"s{i}", blurred=Path(f"/d/b{i}.png"), sharp=Path(f"/d/{s}"), meta=m)
            for i, (s, m) in enumerate(zip(sharps, meta))]


def test_fallback_pairs_balanced_deterministic_other_faces():
    samples = _samples(["a.png"] * 4 + ["b.png"] * 4 + ["c.png"] * 4)
    pairs, source = build_pairs(samples, None, fallback=True)
    assert source == FALLBACK_SOURCE == "own-gt-fallback"
    pos = [p for p in pairs if p.same]
    neg = [p for p in pairs if not p.same]
    assert pairs == pos + neg and len(pos) == len(neg) == 12
    assert all(p.partner == ("gt", p.index) for p in pos)  # own ground truth
    partner_face = [samples[p.partner[1]].sharp.name for p in neg]
    assert all(f != samples[p.index].sharp.name for f, p in zip(partner_face, neg))
    # rotation over the other faces: face a's four samples alternate b, c, b, c
    assert partner_face[:4] == ["b.png", "c.png", "b.png", "c.png"]
    assert build_pairs(samples, None, fallback=True) == (pairs, source)
    # without the fallback flag the split is still not applicable (verification-lfw)
    with pytest.raises(NotApplicableError):
        build_pairs(samples, None)
    # a ground truth without a face is no partner; one face left -> no fallback pairs
    ok = np.array([True] * 4 + [False] * 8)
    assert fallback_pairs(samples, ok) == []
    with pytest.raises(NotApplicableError, match="fewer than two"):
        build_pairs(samples, None, ok, fallback=True)
    # identity metadata wins over the fallback
    ided = _samples(["a.png", "b.png"], [{"identity": "A"}, {"identity": "B"}])
    assert build_pairs(ided, None, fallback=True)[1] == "identity"


def test_lfw_10fold_distances_is_the_lfw_protocol_on_given_distances():
    rng = np.random.default_rng(0)
    e1, e2 = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    issame = np.arange(40) < 20
    e2[issame] = e1[issame] + 0.3 * rng.normal(size=(20, 8))
    u1 = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    u2 = e2 / np.linalg.norm(e2, axis=1, keepdims=True)
    assert lfw_10fold(e1, e2, issame) == lfw_10fold_distances(((u1 - u2) ** 2).sum(1), issame)
    res = lfw_10fold_distances(np.where(issame, 0.2, 0.9), issame)
    assert res.accuracy == 1.0 and all(0.2 < t <= 0.9 for t in res.thresholds)


def test_verification_dlib_on_demo_fallback_and_meta_file_partners(demo_data_root, ctx, faces):
    """Set metric on 24 real demo samples (3 faces x 8 blurs): fallback pairs with their source
    named; with meta positive/negative files the partners are described from the files."""
    from faceblur_bench.engine import open_split

    split = open_split("demo", demo_data_root)
    samples = split.samples()[:24]
    assert len({s.sharp for s in samples}) == 3
    m = metrics.get("verification-dlib")()
    m.setup(MetricContext("cpu", split=split))
    batch = Batch(samples, _nchw([read_image(s.blurred) for s in samples]),
                  _nchw([read_image(s.sharp) for s in samples]))
    feats = m.features(batch)
    assert feats.shape == (24, 2 * 128 + 2)
    out = m.aggregate(feats, samples, ctx)
    assert out["pair_source"] == "own-gt-fallback" and "not the LFW pair list" in out["pairs_note"]
    assert out["n_pairs"] == 48 and out["n_positive"] == 24 and 0.5 <= out["value"] <= 1.0
    assert len(out["fold_accuracies"]) == 10
    # the positive pairs are exactly identity-dlib's distances
    dm = metrics.get("identity-dlib")()
    dm.setup(ctx)
    d_id = dm.compute(batch)
    _, got = m._usable_pairs(feats, samples, ctx)
    _, e1, e2, issame, _, _ = got
    d_pairs = np.linalg.norm(e1.astype(np.float64) - e2, axis=1)
    assert np.allclose(d_pairs[issame], d_id, atol=1e-5)
    # meta-file partners: own ground truth as the positive file, the next face's as the negative
    gts = sorted({s.sharp for s in samples})
    with_files = [Sample(s.id, s.blurred, s.sharp, meta={
        "positive": str(s.sharp), "negative": str(gts[(gts.index(s.sharp) + 1) % 3])})
        for s in samples]
    out2 = m.aggregate(feats, with_files, ctx)
    assert out2["pair_source"] == "meta-files" and out2["n_pairs"] == 48
    assert "pairs_note" not in out2
    # a positive file is the ground truth itself, described from the file with its own landmarks:
    # the same descriptor as the batch's ground truth, so again identity-dlib's distances
    _, got = m._usable_pairs(feats, with_files, ctx)
    _, e1, e2, issame, _, _ = got
    assert np.allclose(np.linalg.norm(e1.astype(np.float64) - e2, axis=1)[issame], d_id, atol=1e-5)


def test_cli_metrics_lists_the_family_with_protocols(monkeypatch, capsys):
    from faceblur_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["faceblur-bench", "metrics", "--json"])
    with pytest.raises(SystemExit) as ei:
        main()
    assert int(ei.value.code or 0) == 0
    recs = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name in DLIB_METRICS:
        r = recs[name]
        assert r["weights"] == "dlib-resnet-v1, dlib-shape-predictor-5"
        assert "150x150" in r["protocol"] and "padding 0.25" in r["protocol"]
        assert "MTCNN" in r["protocol"] and "5-point" in r["protocol"]
    assert recs["identity-kept-dlib"]["better"] == "↑" and recs["identity-dlib"]["better"] == "↓"
    assert "own-gt-fallback" in recs["verification-dlib"]["protocol"]


def test_ground_truth_described_once_per_run(faces, monkeypatch):
    """A ground truth seen again (the demo blurs each face 8 ways) reuses its landmarks and
    descriptor: no second MTCNN pass, no second landmark fit, identical values."""
    ctx = MetricContext("cpu")  # a fresh run
    m = metrics.get("identity-dlib")()
    m.setup(ctx)
    calls = []
    real = m.recognizer.landmarks
    monkeypatch.setattr(m.recognizer, "landmarks", lambda img, box: calls.append(1) or real(img, box))
    a, b = list(faces.values())[:2]
    blurred = np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(2)))
    first = m.compute(_batch([a, blurred, b], [a, a, b]))
    assert len(calls) == 2
    again = _batch([blurred, b], [a, b])
    second = m.compute(again)
    assert len(calls) == 2 and ("faces", "mtcnn", "reference") not in again.cache
    assert second.tolist() == [first[1], first[2]]
