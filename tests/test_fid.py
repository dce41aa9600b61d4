"""FID metrics against pytorch-fid, with a random-valued Inception file saved under pytorch-fid's
file name in a temporary TORCH_HOME (timing/equality only: no real FID value is computed)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_fid.fid_score import calculate_frechet_distance
from pytorch_fid.inception import InceptionV3

from faceblur_bench import weights
from faceblur_bench.data.base import Sample, Split
from faceblur_bench.errors import UsageError, WeightsMissingError
from faceblur_bench.imageio import read_image, write_png
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.metrics.fid import (
    MIN_RELIABLE_N,
    fid_inception_architecture,
    frechet_distance,
    pil_bicubic_299,
)
from faceblur_bench.registry import metrics

FID_FILE = "pt_inception-2015-12-05-6726825d.pth"


def _fake_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Same keys/shapes as pytorch-fid's file; He-scaled random convs so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    sd = fid_inception_architecture().state_dict()
    out = {}
    for k, v in sd.items():
        if v.dtype != torch.float32:
            out[k] = v.clone()
        elif k.endswith("conv.weight") or k.startswith("fc."):
            fan_in = v[0].numel()
            out[k] = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif k.endswith("running_var"):
            out[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("bn.weight"):
            out[k] = 0.5 + torch.rand(v.shape, generator=g)
        else:  # bn.bias, running_mean, fc.bias
            out[k] = 0.1 * torch.randn(v.shape, generator=g)
    return out


@pytest.fixture(scope="module")
def fake_torch_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(_fake_inception_state(), home / "hub" / "checkpoints" / FID_FILE)
    return home


@pytest.fixture()
def env(fake_torch_home, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(fake_torch_home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FACEBLUR_WEIGHTS", raising=False)
    e = weights.KNOWN["fid-inception"]  # random file: skip the upstream sha256-prefix check
    monkeypatch.setitem(
        weights.KNOWN, "fid-inception", dataclasses.replace(e, sha256=None, sha256_prefix=None)
    )

    def no_download(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return fake_torch_home


class _FolderSplit(Split):
    """Test split: restored/<i>.png is the method output for sharp/<i>.png; subset = 'a' or 'b'."""

    name = "test-fid"

    def __init__(self, root: Path, subsets: dict[str, str]):
        super().__init__(data_root=root)
        self._root, self._subsets = root, subsets

    def find(self) -> Path:
        return self._root

    def samples(self) -> list[Sample]:
        out = []
        for i, sub in sorted(self._subsets.items()):
            out.append(
                Sample(
                    id=i,
                    blurred=self._root / "blurred" / f"{i}.png",
                    sharp=self._root / "sharp" / f"{i}.png",
                    meta={"subset": sub},
                )
            )
        # a second sample sharing a sharp image (different kernel): reference deduplication
        first = sorted(self._subsets)[0]
        out.append(
            Sample(
                id=first + "-k2",
                blurred=self._root / "blurred" / f"{first}.png",
                sharp=self._root / "sharp" / f"{first}.png",
                meta={"subset": self._subsets[first]},
            )
        )
        return out


def _images(n: int, seed: int, size: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size)[None, :, None] * np.ones((size, 1, 3))
    return [
        np.clip(base * rng.uniform(0.3, 1.0) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(
            np.uint8
        )
        for _ in range(n)
    ]


@pytest.fixture()
def folders(tmp_path):
    n = 6
    sharp, restored = _images(n, 1), _images(n, 2)
    for i in range(n):
        write_png(tmp_path / "sharp" / f"{i:02d}.png", sharp[i])
        write_png(tmp_path / "blurred" / f"{i:02d}.png", restored[i])
        write_png(tmp_path / "restored" / f"{i:02d}.png", restored[i])
    subsets = {f"{i:02d}": ("a" if i < 4 else "b") for i in range(n)}
    return tmp_path, _FolderSplit(tmp_path, subsets), restored


def _batch(samples, imgs) -> Batch:
    t = torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).copy())
    return Batch(samples=samples, restored=t, reference=None)


def _pytorch_fid_activations(folder: Path) -> np.ndarray:
    model = InceptionV3([3]).eval()  # loads the fake file from $TORCH_HOME/hub/checkpoints
    files = sorted(folder.glob("*.png"))
    from pytorch_fid.fid_score import get_activations

    return get_activations(
        files, model, batch_size=len(files), dims=2048, device="cpu", num_workers=0
    )


def test_fid_matches_pytorch_fid(env, folders):
    root, split, restored = folders
    samples = [s for s in split.samples() if not s.id.endswith("-k2")]
    ctx = MetricContext("cpu", split=split)
    m = metrics.get("fid")()
    m.setup(ctx)
    feats = m.features(_batch(samples, restored))
    assert feats.shape == (6, 2048) and feats.dtype == np.float32
    act_restored = _pytorch_fid_activations(root / "restored")
    act_sharp = _pytorch_fid_activations(root / "sharp")
    assert act_restored.std() > 1e-3  # the fake weights give non-degenerate features
    np.testing.assert_allclose(
        feats, act_restored, rtol=1e-4, atol=1e-5 * np.abs(act_restored).max()
    )
    out = m.aggregate(feats, samples, ctx)
    want = frechet_distance(act_restored, act_sharp)
    assert out["value"] == pytest.approx(want, rel=1e-4)
    assert out["n"] == 6 and out["n_reference"] == 6
    assert out["warning"] and str(MIN_RELIABLE_N) in out["warning"]
    assert out["value"] > 0
    # same value as pytorch-fid's own formula (mu, sigma, scipy sqrtm) on the first 4 feature dims,
    # where the covariances are non-singular and sqrtm is accurate
    a, b = act_restored[:, :4], act_sharp[:, :4]
    ref4 = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert frechet_distance(a, b) == pytest.approx(ref4, rel=1e-7)


def test_frechet_distance_matches_pytorch_fid_formula():
    rng = np.random.default_rng(0)
    for n1, n2, d in ((50, 70, 8), (400, 300, 32), (20, 30, 64)):
        a = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d))
        b = rng.normal(0.3, 1.0, size=(n2, d)) @ rng.normal(size=(d, d))
        ref = calculate_frechet_distance(
            a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
        )
        assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-7, abs=1e-7), (n1, n2, d)
    a = rng.normal(size=(30, 5))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(a[:1], a)


def test_reference_cache_subsets_and_dedup(env, folders):
    root, split, restored = folders
    samples_a = [s for s in split.samples() if s.meta["subset"] == "a" and not s.id.endswith("-k2")]
    ctx = MetricContext("cpu", split=split)
    m = metrics.get("fid")()
    m.setup(ctx)
    feats = m.features(_batch(samples_a, restored[:4]))
    first = m.aggregate(feats, samples_a, ctx)
    assert first["n_reference"] == 4  # subset 'a' only, the shared sharp image counted once
    assert first["reference"].startswith("computed")
    cached = list(
        (Path(os.environ["XDG_CACHE_HOME"]) / "faceblur_bench" / "fid_stats").glob("inception-legacy-*.npz")
    )
    assert len(cached) == 1
    second = m.aggregate(feats, samples_a, ctx)
    assert second["reference"].startswith("cache") and second["value"] == first["value"]
    # changing a reference image invalidates the cache
    img = read_image(root / "sharp" / "00.png")
    write_png(root / "sharp" / "00.png", 255 - img)
    third = m.aggregate(feats, samples_a, ctx)
    assert third["reference"].startswith("computed") and third["value"] != first["value"]


def test_clean_resize_is_pil_bicubic_and_differs_from_legacy(env, folders):
    root, split, restored = folders
    imgs = np.stack(restored[:2])
    r = pil_bicubic_299(imgs)
    assert r.shape == (2, 299, 299, 3) and r.dtype == np.float32
    # PIL's bicubic (a=-0.5) upsampling == torch's antialiased bicubic, which uses PIL's kernel
    t = torch.from_numpy(imgs.transpose(0, 3, 1, 2).astype(np.float32))
    tt = F.interpolate(t, size=(299, 299), mode="bicubic", align_corners=False, antialias=True)
    np.testing.assert_allclose(r, tt.clamp(0, 255).permute(0, 2, 3, 1).numpy(), atol=2e-3)
    const = np.full((1, 40, 50, 3), 77, np.uint8)
    assert np.allclose(pil_bicubic_299(const), 77, atol=1e-3)
    samples = [s for s in split.samples() if not s.id.endswith("-k2")]
    ctx = MetricContext("cpu", split=split)
    legacy, clean = metrics.get("fid")(), metrics.get("fid-clean")()
    legacy.setup(ctx)
    clean.setup(ctx)
    assert legacy.model is clean.model  # one network per run
    b = _batch(samples, restored)
    fl, fc = legacy.features(b), clean.features(b)
    assert not np.allclose(fl, fc, rtol=1e-3)
    vl, vc = legacy.aggregate(fl, samples, ctx)["value"], clean.aggregate(fc, samples, ctx)["value"]
    assert vl != pytest.approx(vc, rel=1e-4)


def test_fid_errors_name_the_fix(env, monkeypatch, tmp_path, folders):
    root, split, restored = folders
    samples = split.samples()[:3]
    m = metrics.get("fid")()
    m.setup(MetricContext("cpu"))
    feats = np.zeros((3, 2048), np.float32)
    with pytest.raises(UsageError, match="reference set"):
        m.aggregate(feats, samples, MetricContext("cpu"))
    with pytest.raises(ValueError, match="2048"):
        m.aggregate(feats[:, :10], samples, MetricContext("cpu", split=split))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nothing"))
    with pytest.raises(WeightsMissingError, match=FID_FILE):
        metrics.get("fid-clean")().setup(MetricContext("cpu"))


def test_kid_shares_fid_features_and_reference_cache(env, folders, monkeypatch):
    from faceblur_bench.metrics import fid as fid_module

    root, split, restored = folders
    samples = [s for s in split.samples() if not s.id.endswith("-k2")]
    ctx = MetricContext("cpu", split=split)
    fid, kid = metrics.get("fid")(), metrics.get("kid")()
    fid.setup(ctx)
    kid.setup(ctx)
    calls = []
    real = fid_module.inception_features

    def counting(model, images, resize):
        calls.append(len(images))
        return real(model, images, resize)

    monkeypatch.setattr(fid_module, "inception_features", counting)
    b = _batch(samples, restored)
    f_fid, f_kid = fid.features(b), kid.features(b)
    assert calls == [len(samples)]  # one Inception pass for both metrics
    np.testing.assert_array_equal(f_fid, f_kid)
    a_fid = fid.aggregate(f_fid, samples, ctx)
    a_kid = kid.aggregate(f_kid, samples, ctx)
    assert a_fid["reference"].startswith("computed") and a_kid["reference"].startswith("cache")
    assert calls[1:] == [len(samples)]  # the reference set went through the network once
    assert "KID" in a_fid["warning"]  # FID below 2048 images points to KID
    ref = np.load(next((Path(os.environ["XDG_CACHE_HOME"]) / "faceblur_bench" / "fid_stats")
                       .glob("inception-legacy-*.npz")))["features"]
    mean, std, size = fid_module.kernel_inception_distance(f_kid, ref)
    assert (a_kid["value"], a_kid["std"], a_kid["subset_size"]) == (mean, std, size)
    assert size == len(samples) and std <= 1e-9 * abs(mean)  # every subset is the whole set
