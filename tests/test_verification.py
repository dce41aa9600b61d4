"""Verification / identification: pure protocol functions against brute force, pairs, metrics."""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceblur_bench.data.base import Sample
from faceblur_bench.errors import UsageError
from faceblur_bench.metrics.base import MetricContext
from faceblur_bench.metrics.verification import (
    NotApplicableError,
    balanced_folds,
    build_pairs,
    kfold_unshuffled,
    lfw_10fold,
    pack,
    topk_identification,
    unpack,
    verification_accuracy_paper,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared helpers, any import mode
from test_metrics_identity import (  # noqa: F401
    face_crop,
    group_photo,
    make_arcface_onnx,
    randomise_bn,
    to_batch,
    weight_dirs,
)


# -- brute-force references (written independently of the module) -----------------------------------
def brute_paper(dist, issame, thresholds, n_folds=10):
    """The MSPL notebook's calculate_roc (pca=0) with sklearn's unshuffled KFold, by loops."""
    n = len(dist)
    bounds, start = [], 0
    for k in range(n_folds):
        size = n // n_folds + (1 if k < n % n_folds else 0)
        bounds.append((start, start + size))
        start += size
    accs = []
    for a, b in bounds:
        test = np.arange(a, b)
        train = np.array([i for i in range(n) if not a <= i < b])
        best_acc, best_t = -1.0, None
        for t in thresholds:
            pred = np.less(dist[train], t)
            acc = float(np.sum(pred == issame[train])) / train.size
            if acc > best_acc:  # first maximum
                best_acc, best_t = acc, t
        accs.append(float(np.sum(np.less(dist[test], best_t) == issame[test])) / test.size)
    return float(np.mean(accs)), accs


def brute_lfw(e1, e2, issame, thresholds, n_folds=10):
    e1 = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = e2 / np.linalg.norm(e2, axis=1, keepdims=True)
    dist = np.array([float(np.dot(a - b, a - b)) for a, b in zip(e1, e2)])
    pos = [i for i in range(len(issame)) if issame[i]]
    neg = [i for i in range(len(issame)) if not issame[i]]
    accs = []
    for k in range(n_folds):
        def chunk(lst, k=k):
            q, r = divmod(len(lst), n_folds)
            start = k * q + min(k, r)
            return lst[start:start + q + (1 if k < r else 0)]
        test = set(chunk(pos)) | set(chunk(neg))
        train = [i for i in range(len(issame)) if i not in test]
        best = max(thresholds, key=lambda t: (np.mean([(dist[i] < t) == issame[i] for i in train]), -t))
        accs.append(np.mean([(dist[i] < best) == issame[i] for i in sorted(test)]))
    return float(np.mean(accs)), float(np.std(accs))


# -- pure functions -------------------------------------------------------------------------------
def test_kfold_unshuffled_has_sklearn_fold_sizes_and_order():
    folds = kfold_unshuffled(23, 10)
    assert [len(t) for _, t in folds] == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert np.array_equal(np.concatenate([t for _, t in folds]), np.arange(23))
    for train, test in folds:
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(23))
    with pytest.raises(ValueError, match="at least 10"):
        kfold_unshuffled(9)


def test_paper_accuracy_equals_bruteforce_and_warns_single_class_folds():
    rng = np.random.default_rng(0)
    n = 60
    dist = np.concatenate([rng.normal(0.9, 0.3, n), rng.normal(1.6, 0.3, n)]).clip(0, 4).astype(np.float32)
    issame = np.array([True] * n + [False] * n)
    thresholds = np.arange(0, 4, 0.001)
    expect, _ = brute_paper(dist, issame, thresholds)
    with pytest.warns(UserWarning, match="single class"):
        res = verification_accuracy_paper(dist, issame, thresholds)
    assert res.accuracy == pytest.approx(expect, abs=1e-12)
    assert len(res.warnings) == 1 and res.n_pairs == 2 * n and res.n_positive == n


def test_paper_accuracy_default_thresholds_bruteforce_interleaved():
    """Default 1e-4 grid, pairs interleaved (folds hold both classes: no warning)."""
    rng = np.random.default_rng(1)
    n = 40
    issame = np.tile([True, False], n)
    dist = np.where(issame, rng.normal(1.0, 0.4, 2 * n), rng.normal(1.5, 0.4, 2 * n)).clip(0, 4).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = verification_accuracy_paper(dist, issame)
    expect, folds = brute_paper(dist, issame, np.arange(0, 4, 0.0001))
    assert res.accuracy == pytest.approx(expect, abs=1e-12)
    np.testing.assert_allclose(res.fold_accuracies, folds)
    assert res.warnings == ()


def test_paper_accuracy_separable_known_answer():
    dist = np.array([0.5] * 20 + [1.5] * 20, np.float32)
    issame = np.array([True] * 20 + [False] * 20)
    with pytest.warns(UserWarning):
        res = verification_accuracy_paper(dist, issame)
    assert res.accuracy == 1.0
    # first maximum on the 1e-4 grid: the smallest threshold above 0.5
    assert res.thresholds[0] == pytest.approx(0.5001, abs=1e-9)


def test_lfw_10fold_equals_bruteforce():
    rng = np.random.default_rng(2)
    ids = rng.normal(size=(30, 16))
    e1 = ids + rng.normal(scale=0.8, size=ids.shape)
    same = ids + rng.normal(scale=0.8, size=ids.shape)
    other = np.roll(ids, 1, axis=0) + rng.normal(scale=0.8, size=ids.shape)
    emb1 = np.concatenate([e1, e1])
    emb2 = np.concatenate([same, other])
    issame = np.array([True] * 30 + [False] * 30)
    res = lfw_10fold(emb1, emb2, issame)
    mean, std = brute_lfw(emb1, emb2, issame, np.arange(0, 4, 0.01))
    assert res.accuracy == pytest.approx(mean, abs=1e-12)
    assert res.std == pytest.approx(std, abs=1e-12)
    assert 0.5 < res.accuracy <= 1.0


def test_lfw_folds_are_balanced_and_separable_data_scores_one():
    issame = np.array([True] * 25 + [False] * 35)
    for train, test in balanced_folds(issame):
        assert issame[test].any() and (~issame[test]).any()
        assert len(set(train) & set(test)) == 0
    e = np.eye(60, 8)[np.arange(60) % 8] + 0.0
    rng = np.random.default_rng(3)
    a = rng.normal(size=(60, 8))
    b = np.where(issame[:, None], a + 0.01 * rng.normal(size=a.shape), -a)
    res = lfw_10fold(a, b, issame)
    assert res.accuracy == 1.0 and res.std == 0.0
    with pytest.raises(ValueError, match="positive and 10 negative"):
        lfw_10fold(a[:15], b[:15], np.array([True] * 9 + [False] * 6))
    assert e.shape == (60, 8)


def test_topk_identification_known_answer():
    gallery = np.eye(5)
    gids = ["a", "b", "c", "d", "e"]
    probe = np.array([[1, 0.1, 0, 0, 0],      # a: rank 1
                      [0.9, 1.0, 0.95, 0, 0],  # a: rank 3 (b, c, a)
                      [0, 0, 0, 0.2, 1.0],     # d: rank 2
                      [1, 0.9, 0.8, 0.7, 0.0]])  # e: rank 5
    acc = topk_identification(probe, ["a", "a", "d", "e"], gallery, gids, ks=(1, 2, 3, 5))
    assert acc == {1: 0.25, 2: 0.5, 3: 0.75, 5: 1.0}


def test_pack_unpack_roundtrip():
    r = np.arange(6, dtype=np.float32).reshape(2, 3)
    f = pack(np.array([True, False]), r, np.array([False, True]), -r)
    ok, emb, gok, gemb = unpack(f)
    assert ok.tolist() == [True, False] and gok.tolist() == [False, True]
    np.testing.assert_array_equal(emb, r)
    np.testing.assert_array_equal(gemb, -r)


# -- pairs ----------------------------------------------------------------------------------------
def _samples(ids: list, sharp_names: list[str], extra: list[dict] | None = None) -> list[Sample]:
    out = []
    for i, (ident, sharp) in enumerate(zip(ids, sharp_names)):
        meta = {} if ident is None else {"identity": ident}
        meta.update((extra or [{}] * len(ids))[i])
        out.append(Sample(id=f"s{i}", blurred=Path(f"/d/b{i}.png"), sharp=Path(f"/d/{sharp}"), meta=meta))
    return out


def test_identity_pairs_positive_same_negative_different_positives_first():
    samples = _samples(["A", "A", "B", "C", "C"], ["a1.png", "a2.png", "b1.png", "c1.png", "c1.png"])
    pairs, source = build_pairs(samples, None)
    assert source == "identity"
    n_pos = sum(p.same for p in pairs)
    assert [p.same for p in pairs] == [True] * n_pos + [False] * (len(pairs) - n_pos)
    assert n_pos == 5 and len(pairs) == 10
    for p in pairs:
        kind, j = p.partner
        assert kind == "gt"
        same_id = samples[p.index].meta["identity"] == samples[j].meta["identity"]
        assert same_id == p.same
    # A has two ground truths: positives use the *other* one
    first = {p.index: p.partner[1] for p in pairs if p.same}
    assert first[0] == 1 and first[1] == 0
    # C has one ground-truth file: the sample's own
    assert samples[first[3]].sharp.name == "c1.png"


def test_meta_file_pairs_and_not_applicable(tmp_path):
    extra = [{"positive": "pos.png", "negative": "neg.png"}] * 2
    samples = _samples([None, None], ["x.png", "y.png"], extra)
    pairs, source = build_pairs(samples, None)
    assert source == "meta-files" and [p.same for p in pairs] == [True, True, False, False]
    assert pairs[0].partner == ("file", Path("/d/pos.png"))
    with pytest.raises(NotApplicableError) as ei:
        build_pairs(_samples([None, None], ["x.png", "y.png"]), None)
    assert isinstance(ei.value, UsageError) and "identity" in ei.value.message


def test_pairs_file(tmp_path):
    class FakeSplit:
        verification_pairs = tmp_path / "pairs.txt"
        root = tmp_path

    (tmp_path / "pairs.txt").write_text("# id path same\ns0 imgs/p.png 1\ns1 /abs/n.png 0\nzz q.png 1\n")
    samples = _samples([None, None], ["x.png", "y.png"])
    pairs, source = build_pairs(samples, MetricContext("cpu", split=FakeSplit()))
    assert source == "pairs-file"
    assert [(p.index, p.partner[1], p.same) for p in pairs] == [
        (0, tmp_path / "imgs" / "p.png", True), (1, Path("/abs/n.png"), False)]
    (tmp_path / "pairs.txt").write_text("s0 p.png yes\n")
    with pytest.raises(UsageError, match="pairs.txt:1"):
        build_pairs(samples, MetricContext("cpu", split=FakeSplit()))


# -- metrics end to end (random networks; structure and consistency, no real numbers) ----------------
def _save_random_mobilefacenet(dirpath: Path, seed: int = 0) -> dict:
    from faceblur_bench.nets.mobilefacenet import MobileFaceNet

    torch.manual_seed(seed)
    net = MobileFaceNet(512)
    randomise_bn(net, seed)
    sd = net.state_dict()
    torch.save(sd, dirpath / "model_mobilefacenet.pth")
    return sd


def test_mobilefacenet_has_treb1en_keys_and_shapes():
    from faceblur_bench.nets.mobilefacenet import MobileFaceNet

    sd = MobileFaceNet(512).state_dict()
    # shapes printed by the MSPL verification notebook's model repr
    expect = {
        "conv1.conv.weight": (64, 3, 3, 3), "conv1.prelu.weight": (64,),
        "conv2_dw.conv.weight": (64, 1, 3, 3),
        "conv_23.conv.conv.weight": (128, 64, 1, 1), "conv_23.conv_dw.conv.weight": (128, 1, 3, 3),
        "conv_23.project.conv.weight": (64, 128, 1, 1),
        "conv_3.model.3.project.bn.running_var": (64,),
        "conv_34.conv.conv.weight": (256, 64, 1, 1), "conv_4.model.5.conv_dw.prelu.weight": (256,),
        "conv_45.conv_dw.conv.weight": (512, 1, 3, 3), "conv_45.project.conv.weight": (128, 512, 1, 1),
        "conv_5.model.1.conv.conv.weight": (256, 128, 1, 1),
        "conv_6_sep.conv.weight": (512, 128, 1, 1), "conv_6_dw.conv.weight": (512, 1, 7, 7),
        "linear.weight": (512, 512), "bn.running_mean": (512,),
    }
    for k, shape in expect.items():
        assert tuple(sd[k].shape) == shape, k
    assert "linear.bias" not in sd and "conv_3.model.4.conv.conv.weight" not in sd
    assert "conv_4.model.5.conv.conv.weight" in sd and "conv_4.model.6.conv.conv.weight" not in sd


def test_verification_paper_end_to_end_matches_manual_pipeline(tmp_path, weight_dirs):
    from faceblur_bench.metrics.verification import VerificationPaper
    from faceblur_bench.nets.align import MTCNNDetector, align_face
    from faceblur_bench.nets.mobilefacenet import MobileFaceNet

    sd = _save_random_mobilefacenet(weight_dirs["faceblur"])
    face = face_crop(128)
    Image.fromarray(face[:, ::-1]).save(tmp_path / "pos.png")  # mirrored: "same person"
    Image.fromarray(_t1_faces()[0]).save(tmp_path / "neg.png")
    det = MTCNNDetector()

    rng = np.random.default_rng(7)
    restored = [np.clip(face.astype(int) + rng.integers(-s, s + 1, face.shape), 0, 255).astype(np.uint8)
                for s in (5, 15, 25, 35, 45)] + [np.full_like(face, 120)]  # last: no face -> skipped
    metas = [{"positive": str(tmp_path / "pos.png"), "negative": str(tmp_path / "neg.png")}] * len(restored)
    batch = to_batch(restored, [face] * len(restored), metas)

    m = VerificationPaper()
    ctx = MetricContext("cpu")
    m.setup(ctx)
    feats = m.features(batch)
    res = m.aggregate(feats, batch.samples, ctx)

    # manual pipeline: same detector settings, exactly-one-face rule, TreB1eN normalisation
    net = MobileFaceNet(512)
    net.load_state_dict(sd)
    net.eval()

    def emb(img, faces=None):
        faces = det.detect(img)[0] if faces is None else faces
        if len(faces) != 1:
            return None
        crop = align_face(img, faces[0].landmarks)
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            return net((x - 0.5) / 0.5)[0].numpy()

    e_pos = emb(np.asarray(Image.open(tmp_path / "pos.png")))
    e_neg = emb(np.asarray(Image.open(tmp_path / "neg.png")))
    assert e_pos is not None and e_neg is not None
    all_faces = det.detect(torch.from_numpy(np.stack(restored)).permute(0, 3, 1, 2))
    used = [emb(r, f) for r, f in zip(restored, all_faces)]
    used = [u for u in used if u is not None]
    assert len(used) == len(restored) - 1
    e1 = np.array(used + used, np.float32)
    e2 = np.array([e_pos] * len(used) + [e_neg] * len(used), np.float32)
    dist = np.sum(np.square(e1 - e2), 1)
    issame = np.array([True] * len(used) + [False] * len(used))
    with pytest.warns(UserWarning):
        expect = verification_accuracy_paper(dist, issame)
    assert res["value"] == pytest.approx(expect.accuracy, abs=1e-9)
    assert res["skipped_not_one_face"] == 1 and res["n_pairs"] == 2 * len(used)
    assert res["pair_source"] == "meta-files" and res["warnings"]
    assert feats.shape == (len(restored), 2 * 512 + 2)


@functools.cache
def _t1_faces(n: int = 6) -> list[np.ndarray]:
    """Square 128x128 crops of the n left-most faces of insightface's t1.jpg (computed once)."""
    from faceblur_bench.nets.align import MTCNNDetector

    t1 = group_photo()
    half = np.asarray(Image.fromarray(t1).resize((t1.shape[1] // 2, t1.shape[0] // 2)))  # faster
    faces = sorted(MTCNNDetector().detect(half)[0], key=lambda f: f.box[0])[:n]
    out = []
    for f in faces:
        x1, y1, x2, y2 = 2 * f.box
        c, s = ((x1 + x2) / 2, (y1 + y2) / 2), max(x2 - x1, y2 - y1) * 1.4
        box = (int(c[0] - s / 2), int(c[1] - s / 2), int(c[0] + s / 2), int(c[1] + s / 2))
        out.append(np.asarray(Image.fromarray(t1).crop(box).resize((128, 128), Image.BICUBIC)))
    return out


def test_lfw_and_identification_share_arcface_embeddings(weight_dirs):
    from faceblur_bench.metrics.identity import ArcFaceDistance
    from faceblur_bench.metrics.verification import (
        IdentificationTop1,
        IdentificationTop5,
        VerificationLFW,
    )

    make_arcface_onnx(weight_dirs["insightface"])
    gts = _t1_faces(6) + [face_crop(128)]
    ids = [f"person{i}" for i in range(len(gts))]
    rng = np.random.default_rng(9)
    gt_list = gts + gts
    restored = [np.clip(g.astype(int) + rng.integers(-20, 21, g.shape), 0, 255).astype(np.uint8) for g in gt_list]
    batch = to_batch(restored, gt_list, [{"identity": i} for i in ids + ids])
    # distinct ground-truth files per identity image
    batch.samples = [Sample(s.id, s.blurred, Path(f"/gt/{s.meta['identity']}.png"), meta=s.meta)
                     for s in batch.samples]

    ctx = MetricContext("cpu")
    ms = [ArcFaceDistance(), VerificationLFW(), IdentificationTop1(), IdentificationTop5()]
    for m in ms:
        m.setup(ctx)
    d = ms[0].compute(batch)
    assert np.isfinite(d).all()
    feats = [m.features(batch) for m in ms[1:]]
    arc_keys = [k for k in batch.cache if k[0] == "arcface-onnx"]
    assert len(arc_keys) == 1, "ArcFace embeddings computed once per batch for all metrics"
    assert not [k for k in batch.cache if k[0] == "faces"]  # no detector run on restored images
    from faceblur_bench.metrics.reference_cache import reference_cache

    # ground truths: detected and embedded once per file (14 pairs share 7 files), for all metrics:
    # one entry of the shared detections (gt-mtcnn-faces) and one of the ArcFace side per file
    assert reference_cache(ctx).stats["computed"] == 2 * len(gts)

    lfw = ms[1].aggregate(feats[0], batch.samples, ctx)
    assert lfw["pair_source"] == "identity" and lfw["n_pairs"] == 28 and lfw["n_positive"] == 14
    assert 0.0 <= lfw["value"] <= 1.0 and len(lfw["fold_accuracies"]) == 10

    # identification with restored == ground truth is exact: top-1 = 1
    exact = to_batch(gt_list, gt_list, [{"identity": i} for i in ids + ids])
    f_exact = ms[2].features(exact)
    top = ms[2].aggregate(f_exact, exact.samples, ctx)
    assert top["value"] == 1.0 and top["gallery_identities"] == 7 and top["top5"] == 1.0
    top5 = ms[3].aggregate(feats[2], batch.samples, ctx)
    assert top5["value"] == top5["top5"] >= top5["top1"]


def test_verification_not_applicable_without_identity(weight_dirs):
    from faceblur_bench.metrics.verification import VerificationLFW

    make_arcface_onnx(weight_dirs["insightface"])

    class NoIdSplit:
        root = Path("/nowhere")

        def samples(self):
            return _samples([None, None], ["x.png", "y.png"])

    with pytest.raises(NotApplicableError, match="no identity metadata"):
        VerificationLFW().setup(MetricContext("cpu", split=NoIdSplit()))
    m = VerificationLFW()
    m.setup(MetricContext("cpu"))
    out = m.aggregate(np.zeros((2, 2 * 512 + 2), np.float32), NoIdSplit().samples(), MetricContext("cpu"))
    assert out["value"] is None and "identity" in out["reason"]
