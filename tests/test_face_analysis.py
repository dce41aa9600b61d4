"""One face analysis per restored image, shared by the face metrics (metrics/face_analysis.py):
the shared path gives the same bits as every metric computing alone and as the protocol written
out with dlib and MTCNN; each part is computed once per image; a batched dlib call equals one
call per chip (what lets a set metric read per-image descriptors). Real weights, real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceblur_bench.data.demo import DemoSplit
from faceblur_bench.engine import RunConfig, evaluate
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.metrics.face_analysis import FaceAnalysis, analyses, dlib_recognizer
from faceblur_bench.metrics.identity import mtcnn_detector
from faceblur_bench.metrics.verification import unpack
from faceblur_bench.nets.align import main_face
from faceblur_bench.nets.dlib_face import DlibFaceRecognizer, descriptor_distance
from faceblur_bench.results import image_path, read_features, read_rows

FACE_METRICS = ("detection-rate", "identity-dlib", "identity-kept-dlib", "verification-dlib",
                "identity-consistency-dlib")
PAIRED = ("detection-rate", "identity-dlib", "identity-kept-dlib", "identity-consistency-dlib")


class FiveFaces(DemoSplit):
    """The demo split cut to one image of each of its first 5 faces (5 ground truths), each
    with another kernel size."""

    def samples(self):
        return super().samples()[::9][:5]


@pytest.fixture(scope="module")
def runs(demo_data_root, tmp_path_factory) -> dict[tuple[str, bool], Path]:
    """``(method, shared) -> run directory`` of the five face metrics, batches of 3 (3+2:
    full batches for verification-dlib, one-image views for the paired metrics)."""
    out = {}
    # blurred: shared only (its input-equals-output shortcut is checked against the protocol)
    for method, shared in (("blurred", True), ("wiener", True), ("wiener", False)):
        root = tmp_path_factory.mktemp(f"{method}-{'shared' if shared else 'alone'}")
        s = evaluate(RunConfig(method=method, split=FiveFaces(demo_data_root), metrics=FACE_METRICS,
                               results_dir=root, device="cpu", batch_size=3, save_images=True,
                               reference_cache=False, share_face_analysis=shared))
        assert all(s["metrics"][m]["status"] == "ok" for m in PAIRED), s["metrics"]
        # 5 images are too few pairs for 10 folds: its per-image state is what is compared
        assert s["metrics"]["verification-dlib"]["status"] in ("ok", "not-applicable")
        out[method, shared] = Path(s["run_dir"])
    return out


def test_shared_analysis_is_bit_identical_to_each_metric_alone(runs):
    shared, alone = runs["wiener", True], runs["wiener", False]
    rows_s = {r["id"]: r["metrics"] for r in read_rows(shared / "rows.jsonl")}
    rows_a = {r["id"]: r["metrics"] for r in read_rows(alone / "rows.jsonl")}
    assert rows_s.keys() == rows_a.keys() and len(rows_s) == 5
    for i in rows_s:
        for m in PAIRED:
            assert np.array_equal(rows_s[i][m], rows_a[i][m], equal_nan=True), (i, m)
    ids = sorted(rows_s)
    fs, fa = (read_features(d, "verification-dlib", ids) for d in (shared, alone))
    assert fs is not None and fs.tobytes() == fa.tobytes()


def test_shared_values_equal_the_protocol_written_out(runs, demo_data_root):
    """Every value of the shared run recomputed from dlib and MTCNN one image at a time, and the
    verification state from one batched dlib call per batch of 3 (as the metric did alone)."""
    ctx = MetricContext("cpu")
    det, rec = mtcnn_detector(ctx), dlib_recognizer(ctx)
    split = FiveFaces(demo_data_root)
    samples = split.samples()

    def nchw(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(img.copy()).permute(2, 0, 1)[None]

    def landmarks(img: np.ndarray):
        face = main_face(det.detect(nchw(img))[0])
        return None if face is None else rec.landmarks(img, face.box)

    for method in ("blurred", "wiener"):
        run = runs[method, True]
        rows = {r["id"]: r["metrics"] for r in read_rows(run / "rows.jsonl")}
        restored_all, gt_lms = [], []
        for s in samples:
            restored, gt, blurred = (read_image(p) for p in (image_path(run, s.id), s.sharp, s.blurred))
            restored_all.append(restored)
            gt_lm, own_lm = landmarks(gt), landmarks(restored)
            gt_lms.append(gt_lm)
            d = descriptor_distance(rec.describe([restored], [gt_lm]), rec.describe([gt], [gt_lm]))[0]
            c = descriptor_distance(rec.describe([restored], [own_lm]), rec.describe([blurred], [own_lm]))[0]
            got = rows[s.id]
            assert got["detection-rate"] == (1.0 if det.detect(nchw(restored))[0] else 0.0)
            assert np.array_equal(got["identity-dlib"], d, equal_nan=True), s.id
            assert got["identity-kept-dlib"] == float(d < 0.6)
            assert np.array_equal(got["identity-consistency-dlib"], c, equal_nan=True), s.id
        feats = read_features(run, "verification-dlib", [s.id for s in samples])
        _, res_emb, _, _ = unpack(feats)
        batched = np.concatenate([rec.describe(restored_all[k:k + 3], gt_lms[k:k + 3])
                                  for k in range(0, len(samples), 3)])
        assert np.array_equal(res_emb, batched.astype(np.float32), equal_nan=True)


def demo_chips(demo_data_root: Path, n: int) -> tuple[DlibFaceRecognizer, np.ndarray]:
    """The run's recognizer and the dlib chips ``(n, 150, 150, 3)`` of the first ``n`` demo
    ground truths, each cut with its own landmarks (real faces: each must be found)."""
    ctx = MetricContext("cpu")
    det, rec = mtcnn_detector(ctx), dlib_recognizer(ctx)
    chips = []
    for p in sorted((demo_data_root / "demo" / "sharp").glob("*.png"))[:n]:
        img = read_image(p)
        face = main_face(det.detect(img)[0])
        assert face is not None
        chips.append(rec.chips(img, [rec.landmarks(img, face.box)]))
    return rec, np.concatenate(chips)


def test_batched_dlib_descriptors_equal_one_call_per_chip(demo_data_root, monkeypatch):
    from faceblur_bench.nets import dlib_face

    monkeypatch.setenv(dlib_face.WORKERS_ENV, "0")  # dlib's own batching, in this process
    rec, chips = demo_chips(demo_data_root, 6)
    one_by_one = np.concatenate([rec.descriptors(chips[i:i + 1]) for i in range(len(chips))])
    assert rec.descriptors(chips).tobytes() == one_by_one.tobytes()


def test_each_part_is_computed_once_per_image(demo_data_root, monkeypatch):
    """The five metrics on a batch of 3: one MTCNN pass and one landmark fit per restored image,
    one descriptor per (image, crop rule) plus the input's — whichever metric asks first."""
    from faceblur_bench.registry import metrics

    split = FiveFaces(demo_data_root)
    samples = split.samples()[:3]
    imgs = {k: [read_image(getattr(s, k)) for s in samples] for k in ("blurred", "sharp")}

    def nchw(images: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()

    # a restored image that differs from the input (the input's descriptor is its own call)
    restored = nchw([np.ascontiguousarray(img[:, ::-1]) for img in imgs["blurred"]])
    counts = {"detect": 0, "landmarks": 0, "chips": 0}
    ctx = MetricContext("cpu", split=split)
    det, rec = mtcnn_detector(ctx), dlib_recognizer(ctx)
    for name, obj in (("detect", det), ("landmarks", rec)):
        orig = getattr(type(obj), name)
        monkeypatch.setattr(obj, name, lambda *a, _o=orig, _s=obj, _n=name: (
            counts.__setitem__(_n, counts[_n] + 1), _o(_s, *a))[1])
    orig_desc = DlibFaceRecognizer.descriptors
    monkeypatch.setattr(rec, "descriptors", lambda chips: (
        counts.__setitem__("chips", counts["chips"] + len(chips)), orig_desc(rec, chips))[1])

    batch = Batch(samples, restored, nchw(imgs["sharp"]), nchw(imgs["blurred"]))
    ms = [metrics.get(n)() for n in FACE_METRICS]
    for m in ms:
        m.setup(ctx)
    for m in ms:
        if m.kind == "paired":
            for view in batch.images():
                m.compute(view)
        else:
            m.features(batch)
    n = len(samples)
    faces = analyses(batch, ctx, "test")
    with_own = sum(f.landmarks("own") is not None for f in faces)
    with_gt = sum(f.landmarks("gt") is not None for f in faces)
    assert with_own == n and with_gt == n  # real faces: every part was really computed
    # MTCNN: each restored image once + each ground truth once (reference side)
    assert counts["detect"] == 2 * n
    # dlib landmarks: restored (own) + ground truth, once each
    assert counts["landmarks"] == 2 * n
    # descriptors: restored "gt", restored "own", input "own", ground truth
    assert counts["chips"] == 4 * n


def test_analysis_is_of_one_image():
    t = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    batch = Batch([None, None], t, t)
    with pytest.raises(ValueError, match="one image"):
        FaceAnalysis(batch, MetricContext("cpu"), "identity-dlib")
    assert len(batch.images()) == 2 and batch.images() is batch.images()


def test_worker_processes_give_the_bits_of_the_scoring_process(demo_data_root, monkeypatch):
    """dlib descriptors shared out over worker processes (FACEBLUR_DLIB_WORKERS) equal the
    in-process call bit for bit, on real chips cut from real faces; rows come back in order."""
    from faceblur_bench.nets import dlib_face

    rec, chips = demo_chips(demo_data_root, 5)  # 5 chips over 2 workers: parts of 3 and 2
    monkeypatch.setenv(dlib_face.WORKERS_ENV, "0")
    assert dlib_face.descriptor_pool(rec.recognizer_file) is None
    alone = rec.descriptors(chips)
    monkeypatch.setenv(dlib_face.WORKERS_ENV, "2")
    pool = dlib_face.descriptor_pool(rec.recognizer_file)
    procs = []
    try:
        assert pool is not None and pool.n == 2
        shared_out = rec.descriptors(chips)
        procs = list(pool.procs)
        assert len(procs) == 2 and all(p.poll() is None for p in procs)  # really used
        assert not pool.broken
        assert shared_out.tobytes() == alone.tobytes()
        # five distinct faces: a row order mix-up could not pass
        assert len({row.tobytes() for row in alone}) == 5
    finally:
        dlib_face.close_pools()
    assert procs and all(p.poll() is not None for p in procs)  # ended at close


def test_broken_worker_falls_back_to_the_scoring_process(demo_data_root, monkeypatch):
    """A worker that dies makes the pool step aside: the run gets the in-process values."""
    from faceblur_bench.nets import dlib_face

    rec, chips = demo_chips(demo_data_root, 2)
    monkeypatch.setenv(dlib_face.WORKERS_ENV, "0")
    alone = rec.descriptors(chips)
    monkeypatch.setenv(dlib_face.WORKERS_ENV, "2")
    pool = dlib_face.descriptor_pool(rec.recognizer_file)
    try:
        pool._start()
        pool.procs[1].kill()
        pool.procs[1].wait()
        assert rec.descriptors(chips).tobytes() == alone.tobytes()
        assert pool.broken and not pool.procs
    finally:
        dlib_face.close_pools()


def test_openmp_threads_wait_passively_unless_told_otherwise():
    """Importing the package sets OMP_WAIT_POLICY=PASSIVE before torch loads (an explicit
    OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept); values do not depend on it (the benchmark
    hashes every value under both)."""
    import os
    import subprocess
    import sys

    code = "import faceblur_bench, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    for extra, want in (({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),
                        ({"GOMP_SPINCOUNT": "300000"}, "None")):
        out = subprocess.run([sys.executable, "-c", code], env={**base, **extra}, capture_output=True,
                             text=True, check=True, timeout=600).stdout.strip()
        assert out == want, (extra, out)
