"""The demo split: built from bundled photos, deterministic, faithful to its recorded recipe."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from faceblur_bench.data import demo as demo_mod
from faceblur_bench.data.degrade import blur_image
from faceblur_bench.data.kernels import KERNEL_SIZES
from faceblur_bench.errors import DataLayoutError, DataNotFoundError
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.pixel import psnr_u8
from faceblur_bench.registry import splits


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a)).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    a = tmp_path_factory.mktemp("rootA")
    b = tmp_path_factory.mktemp("rootB")
    sa = splits.get("demo")(a)
    sb = splits.get("demo")(b)
    return sa, sa.samples(), sb, sb.samples()


def test_two_builds_are_byte_identical(two_builds):
    sa, _, sb, _ = two_builds
    ra, rb = sa.find(), sb.find()
    fa = sorted(p.relative_to(ra) for p in ra.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(rb) for p in rb.rglob("*") if p.is_file())
    assert fa == fb
    assert len(fa) > 50
    for rel in fa:
        assert (ra / rel).read_bytes() == (rb / rel).read_bytes(), rel
    man = json.loads((ra / "manifest.json").read_text())
    import hashlib

    for rel, digest in man["files"].items():
        assert hashlib.sha256((ra / rel).read_bytes()).hexdigest() == digest


def test_sample_count_meta_and_sizes(two_builds):
    split, samples, _, _ = two_builds
    faces = sorted({s.meta["face"] for s in samples})
    assert 8 <= len(faces) <= 15
    assert len(samples) == 8 * len(faces)
    assert 60 <= len(samples) <= 100
    assert len({s.id for s in samples}) == len(samples)
    assert {s.meta["subset"] for s in samples} == {"insightface", "skimage"}
    for f in faces:
        assert sorted(s.meta["kernel_size"] for s in samples if s.meta["face"] == f) == list(KERNEL_SIZES)
    for s in samples[::7]:
        for p in (s.blurred, s.sharp):
            img = read_image(p)
            assert img.shape == (128, 128, 3) and img.dtype == np.uint8
        assert s.blurred.name == f"{s.meta['face']}_ker{s.meta['kernel_id']:02d}_blur_k{s.meta['kernel_size']}.png"
    man = split.manifest()
    assert "insightface:t1" in man["sources_used"] and "skimage:astronaut" in man["sources_used"]
    assert man["missing"] == []


def test_subset_filter(two_builds):
    split, samples, _, _ = two_builds
    sk = splits.get("demo")(split.data_root, subset="skimage").samples()
    assert sk and all(s.meta["subset"] == "skimage" for s in sk)
    assert len(sk) < len(samples)


def test_kernels_and_reblur_reproduce_the_files(two_builds):
    split, samples, _, _ = two_builds
    for s in samples[::5]:
        k = split.kernel(s)
        assert k.shape == (s.meta["kernel_size"],) * 2
        assert abs(k.sum() - 1.0) < 1e-9 and k.min() >= 0
        sharp, blurred = read_image(s.sharp), read_image(s.blurred)
        again = blur_image(sharp, k, demo_mod.NOISE_SIGMA, s.meta["noise_seed"])
        assert np.array_equal(again, blurred)
        # without noise: close to the file (noise σ=2/255 -> PSNR ≈ 48 dB), far from the sharp image
        clean = blur_image(sharp, k)
        p_clean = float(psnr_u8(_t(clean), _t(blurred))[0])
        p_sharp = float(psnr_u8(_t(sharp), _t(blurred))[0])
        assert p_clean > 40.0
        assert p_sharp < p_clean - 10


def test_missing_sources_warn_and_are_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_mod, "INSIGHTFACE_PHOTOS", ("Tom_Hanks_54745.png", "no_such_photo.jpg"))
    monkeypatch.setattr(demo_mod, "SKIMAGE_PHOTOS", ("no_such_skimage_photo",))
    # a leftover of an interrupted build (no manifest) is replaced
    (tmp_path / "demo" / "blur").mkdir(parents=True)
    (tmp_path / "demo" / "blur" / "junk.png").write_bytes(b"x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = splits.get("demo")(tmp_path)
        samples = split.samples()
    assert any("no_such_photo.jpg" in str(w.message) for w in caught)
    man = split.manifest()
    assert man["missing"] == ["insightface:no_such_photo.jpg", "skimage:no_such_skimage_photo"]
    assert len(samples) == 8 and not (tmp_path / "demo" / "blur" / "junk.png").exists()


def test_no_source_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_mod, "INSIGHTFACE_PHOTOS", ("none.jpg",))
    monkeypatch.setattr(demo_mod, "SKIMAGE_PHOTOS", ("none",))
    with pytest.warns(UserWarning), pytest.raises(DataNotFoundError, match="source photos"):
        splits.get("demo")(tmp_path).samples()
    assert not (tmp_path / "demo").exists()


def test_tampered_manifest_entry_is_refused(two_builds, tmp_path):
    import shutil

    split, _, _, _ = two_builds
    root = tmp_path / "copy"
    shutil.copytree(split.find(), root / "demo")
    man = json.loads((root / "demo" / "manifest.json").read_text())
    man["samples"][0]["blurred"] = "../../etc/passwd"
    (root / "demo" / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(DataLayoutError, match="escapes"):
        splits.get("demo")(root).samples()
