"""The ground truth's side shared per image (issue #29): one MTCNN detection of each ground truth
for every face metric of a run (dlib family, LMD with dlib and FAN, ArcFace), kept once per
ground-truth file in the reference cache; the BT.601 luma converted once per batch for psnr-y and
ssim-y. Values are bit for bit those of each metric computing alone, with the reference cache off,
cold and warm (read back by a shared run from the entries of an unshared one: same namespaces).

The FAN and ArcFace files are written in their released formats with random values (the genuine
files cannot be downloaded here, as in ``test_landmark_distance_fan.py`` and
``test_metrics_identity.py``): they take part so that their ground-truth side asks for the shared
detections; their values are only compared with themselves, never reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from faceblur_bench.data.demo import DemoSplit
from faceblur_bench.engine import RunConfig, evaluate
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics import pixel
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.metrics.identity import mtcnn_detector, reference_faces
from faceblur_bench.metrics.reference_cache import SHARED_KEY, ReferenceCache, pixel_key
from faceblur_bench.nets.align import MTCNNDetector
from faceblur_bench.registry import metrics
from faceblur_bench.results import read_rows

#: every family that starts from the ground truth's MTCNN faces, and the luma pair
METRICS = ("identity-dlib", "lmd-dlib", "lmd-dlib-iod", "lmd-dlib-found", "lmd-fan", "arcface",
           "psnr-y", "ssim-y")
#: the ground-truth computations that detect on their own when sharing is off: dlib 5-point +
#: descriptor, dlib 68-point, FAN, ArcFace landmarks + embedding
FAMILIES = 4


class TwoFacesTwice(DemoSplit):
    """Two blurred images (kernel sizes 13 and 15) of each of the demo's first two faces: four
    images, two ground-truth files, each used twice."""

    def samples(self):
        s = super().samples()
        return [s[i] for i in (0, 1, 8, 9)]


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, str]:
    """Random-valued files in the released formats of the FAN and ArcFace models."""
    from test_landmark_distance_fan import _released_layout_state_dict
    from test_metrics_identity import make_arcface_onnx

    root = tmp_path_factory.mktemp("weights")
    fan = root / "alignment_WFLW_4HG.pth"
    torch.save({"state_dict": _released_layout_state_dict()}, fan)
    return {"awing-fan": str(fan), "arcface-r50": str(make_arcface_onnx(root))}


def _counting_detect(monkeypatch) -> list[str]:
    """Record the pixel key of every image MTCNN is run on (one entry per image of each call)."""
    seen: list[str] = []
    detect = MTCNNDetector.detect

    def counted(self, images):
        if isinstance(images, torch.Tensor):
            seen.extend(pixel_key(im) for im in images)
        return detect(self, images)

    monkeypatch.setattr(MTCNNDetector, "detect", counted)
    return seen


@pytest.fixture(scope="module")
def runs(demo_data_root, weight_files, tmp_path_factory) -> dict[str, tuple[Path, list[str]]]:
    """``setting -> (run directory, pixel keys MTCNN ran on)`` of the metrics above on the four
    images, batches of 3 (3 + 1, so the second image of the second face is in another batch than
    its first): shared without the disk cache; alone with a cold disk cache;
    shared again reading that cache back (a fresh results folder holding its copy)."""
    out = {}
    mp = pytest.MonkeyPatch()
    try:
        cold_root = None
        for setting, shared, disk in (("shared", True, False), ("alone", False, True),
                                      ("warm", True, True)):
            root = tmp_path_factory.mktemp(setting)
            if setting == "warm":
                shutil.copytree(cold_root / "cache", root / "cache")
            seen = _counting_detect(mp)
            s = evaluate(RunConfig(method="wiener", split=TwoFacesTwice(demo_data_root),
                                   metrics=METRICS, results_dir=root, device="cpu", batch_size=3,
                                   reference_cache=disk, share_face_analysis=shared,
                                   weights_overrides=weight_files))
            mp.undo()
            assert all(s["metrics"][m]["status"] == "ok" for m in METRICS), s["metrics"]
            out[setting] = (Path(s["run_dir"]), seen)
            cold_root = root if setting == "alone" else cold_root
    finally:
        mp.undo()
    return out


def _gt_keys(demo_data_root) -> list[str]:
    """Pixel keys of the four ground truths, in sample order (two distinct)."""
    return [pixel_key(torch.from_numpy(read_image(s.sharp).copy()).permute(2, 0, 1))
            for s in TwoFacesTwice(demo_data_root).samples()]


def test_values_are_bit_identical_shared_alone_and_through_the_cache(runs):
    rows = {k: {r["id"]: r["metrics"] for r in read_rows(d / "rows.jsonl")} for k, (d, _) in runs.items()}
    ids = sorted(rows["shared"])
    assert len(ids) == 4 and all(sorted(r) == ids for r in rows.values())
    scored = 0
    for i in ids:
        for m in METRICS:
            v = rows["shared"][i][m]
            scored += np.isfinite(v)
            for other in ("alone", "warm"):
                assert np.array_equal(v, rows[other][i][m], equal_nan=True), (other, i, m)
    assert scored > 5 * len(ids)  # real faces: the values were really computed, not all NaN


def test_each_ground_truth_is_detected_once(runs, demo_data_root):
    gts = _gt_keys(demo_data_root)
    distinct = set(gts)
    assert len(distinct) == 2
    _, shared = runs["shared"]
    # once per ground-truth file for all four families (the second image of each face reads it)
    assert {k: shared.count(k) for k in distinct} == {k: 1 for k in distinct}
    # each restored image once too: 4 images in all, none of them a ground truth
    assert len(shared) == 2 + 4
    # alone: each family detects the ground truth itself (its own cache entry per file)
    _, alone = runs["alone"]
    assert {k: alone.count(k) for k in distinct} == {k: FAMILIES for k in distinct}
    # warm: every ground-truth result is read back from disk; only the restored images are detected
    _, warm = runs["warm"]
    assert not distinct & set(warm) and len(warm) == 4


def _one_gt_batch(demo_data_root, n: int = 2) -> Batch:
    samples = TwoFacesTwice(demo_data_root).samples()[::2][:n]
    refs = torch.stack([torch.from_numpy(read_image(s.sharp).copy()).permute(2, 0, 1) for s in samples])
    return Batch(samples, refs.clone(), refs)


def test_detections_read_back_from_disk_are_the_detectors_bits(demo_data_root, tmp_path, monkeypatch):
    """The ``gt-mtcnn-faces`` entry stores the detections with their bits and order: read back by
    a later run (memory empty) they equal a fresh detection of the image alone, a faceless image
    included (no detection, an empty list)."""
    batch = _one_gt_batch(demo_data_root)
    gray = torch.full_like(batch.reference[:1], 128)
    batch = Batch([*batch.samples, batch.samples[0]], torch.cat([batch.restored, gray]),
                  torch.cat([batch.reference, gray]))

    def run_ctx() -> MetricContext:
        ctx = MetricContext("cpu")
        ctx.shared(SHARED_KEY, lambda: ReferenceCache(disk_root=tmp_path, split_fingerprint="t"))
        return ctx

    first = run_ctx()
    det = mtcnn_detector(first)
    fresh = [det.detect(batch.reference[i:i + 1])[0] for i in range(len(batch))]
    assert [len(f) for f in fresh][-1] == 0 and all(len(f) >= 1 for f in fresh[:-1])
    for i in range(len(batch)):
        reference_faces(batch, i, first, det)
    assert first.shared(SHARED_KEY, ReferenceCache).stats["computed"] == len(batch)

    second = run_ctx()
    seen = _counting_detect(monkeypatch)
    again = Batch(batch.samples, batch.restored, batch.reference.clone())
    got = [reference_faces(again, i, second, det) for i in range(len(batch))]
    assert seen == [] and second.shared(SHARED_KEY, ReferenceCache).stats["disk"] == len(batch)
    for a, b in zip(got, fresh):
        assert len(a) == len(b)
        for fa, fb in zip(a, b):
            assert fa.box.dtype == np.float64 and fa.box.tobytes() == fb.box.tobytes()
            assert fa.landmarks.tobytes() == fb.landmarks.tobytes() and fa.prob == fb.prob
    # the one-image view of the batch holds them: a second ask is the same object, no lookup
    assert reference_faces(again, 0, second, det) is got[0]


def test_luma_is_converted_once_per_batch_for_psnr_y_and_ssim_y(demo_data_root, monkeypatch):
    batch = _one_gt_batch(demo_data_root)
    restored = torch.flip(batch.reference, dims=(-1,))  # another image than its ground truth
    alone = {m: metrics.get(m)().compute(Batch(batch.samples, restored, batch.reference))
             for m in ("psnr-y", "ssim-y")}
    calls = []
    convert = pixel.rgb_to_y_bt601
    monkeypatch.setattr(pixel, "rgb_to_y_bt601", lambda t: (calls.append(t.shape), convert(t))[1])
    shared = Batch(batch.samples, restored, batch.reference)
    both = {m: metrics.get(m)().compute(shared) for m in ("psnr-y", "ssim-y")}
    assert len(calls) == 2  # restored and reference, once each, for both metrics
    for m in both:
        assert both[m].tobytes() == alone[m].tobytes() and np.isfinite(both[m]).all()
