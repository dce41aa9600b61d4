"""Degradations: batched path == scipy reference, noise, make-split determinism and round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import signal

from faceblur_bench.data.degrade import (
    average_frames, blur_all_pairs, blur_batch, blur_float, blur_image, downsample, random_rotate_crop,
    reflect_pad,
)
from faceblur_bench.data.kernels import random_walk_kernel, spline_kernel
from faceblur_bench.data.synth import make_split
from faceblur_bench.engine import open_split
from faceblur_bench.errors import DataLayoutError, UsageError
from faceblur_bench.imageio import read_image, write_png


def _faces(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    out = []
    for i in range(n):
        base = 0.5 + 0.4 * np.sin(2 * np.pi * (xx * (2 + i) + yy * 3))[..., None] * np.array([1.0, 0.7, 0.4])
        out.append(np.clip((base + 0.1 * rng.standard_normal((128, 128, 3))) * 255, 0, 255).astype(np.uint8))
    return out


def test_reference_matches_direct_convolution_definition():
    img = np.random.default_rng(1).random((40, 40, 3))
    k = spline_kernel(13, seed=2)
    ref = blur_float(img, k)
    # explicit definition: out[y, x] = sum_ij pad[y + 12 - i, x + 12 - j] * k[i, j]  (true convolution)
    pad = reflect_pad(img, 6)
    y, x = 17, 5
    direct = sum(pad[y + 12 - i, x + 12 - j] * k[i, j] for i in range(13) for j in range(13))
    assert np.allclose(ref[y, x], direct, atol=1e-12)
    assert np.allclose(pad[:6, 6:-6], img[6:0:-1], atol=0)  # numpy 'reflect' excludes the edge row


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_batched_blur_matches_scipy(dtype, tol):
    rng = np.random.default_rng(3)
    imgs = rng.random((4, 128, 128, 3))
    ks = [spline_kernel(13, 1, 0), random_walk_kernel(27, 1, 1), spline_kernel(19, 1, 2), random_walk_kernel(15, 1, 3)]
    ref = np.stack([np.stack([signal.convolve(reflect_pad(imgs[i], (len(ks[i]) - 1) // 2)[:, :, c], ks[i],
                                              mode="valid", method="direct") for c in range(3)], -1)
                    for i in range(4)])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).to(dtype)
    out = blur_batch(x, ks).permute(0, 2, 3, 1).double().numpy()
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < tol
    allp = blur_all_pairs(x, ks)
    assert allp.shape == (4, 4, 3, 128, 128)
    assert np.abs(allp[2, 2].permute(1, 2, 0).double().numpy() - ref[2]).max() < tol
    # uint8 files from the batched path equal the authors' path (float32 image, scipy) on >99.99 % of pixels
    u8 = (imgs * 255).round().astype(np.uint8)
    by_ref = np.stack([blur_image(u8[i], ks[i]) for i in range(4)])
    xb = torch.from_numpy((u8 / 255.0).astype(np.float32).astype(np.float64)).permute(0, 3, 1, 2)
    by_batch = np.clip(np.round(blur_batch(xb, ks).permute(0, 2, 3, 1).numpy() * 255), 0, 255).astype(np.uint8)
    assert np.mean(by_ref == by_batch) > 0.9999 and np.abs(by_ref.astype(int) - by_batch).max() <= 1


def test_blur_batch_noise_and_errors():
    x = torch.full((8, 3, 64, 64), 0.5)
    k = torch.from_numpy(np.stack([spline_kernel(13, 0, i) for i in range(8)]))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = blur_batch(x, k, noise_sigma=0.01, generator=g1)
    b = blur_batch(x, k, noise_sigma=0.01, generator=g2)
    assert torch.equal(a, b)
    assert abs(float((a - 0.5).std()) - 0.01) < 0.0005  # constant image: only noise remains
    with pytest.raises(UsageError, match="one kernel per image"):
        blur_batch(x, k[:3])
    with pytest.raises(UsageError, match="odd"):
        blur_batch(x, torch.ones(8, 4, 4) / 16)


def test_other_degradations():
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (10, 11, 11)]
    assert average_frames(frames)[0, 0, 0] == 10  # mean 10.67 truncated, not rounded
    img = _faces(1)[0]
    img256 = np.repeat(np.repeat(img, 2, 0), 2, 1)
    assert downsample(img256, 8).shape == (32, 32, 3)
    with pytest.raises(UsageError, match="multiple of 8"):
        downsample(img[:100], 8)
    a, pa = random_rotate_crop(img, seed=4)
    b, pb = random_rotate_crop(img, seed=4)
    assert np.array_equal(a, b) and pa == pb and a.shape == (128, 128, 3)
    assert abs(pa["angle"]) <= 10 and pa["side"] >= 0.85 * 128 / (2 ** 0.5) - 1


def test_make_split_deterministic_and_loadable(tmp_path):
    sharp = tmp_path / "sharp"
    for i, f in enumerate(_faces(2)):
        write_png(sharp / f"face{i}.png", f)
    m1 = make_split(sharp, "shen", tmp_path / "a", seed=7)
    m2 = make_split(sharp, "shen", tmp_path / "b", seed=7)
    assert m1 == m2 and len(m1["files"]) == 8 + 2 + 160
    for rel in m1["files"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    m3 = make_split(sharp, "shen", tmp_path / "c", seed=8)
    assert m3["files"] != m1["files"]
    split = open_split("shen-helen", tmp_path / "a")
    samples = split.samples()
    assert len(samples) == 160
    s = samples[37]
    k = split.kernel(s)
    seed = json.loads((tmp_path / "a/Test_data_Helen/make_split.json").read_text())
    ns = seed["images"][int(s.meta["image"][-1])]["noise_seeds"][f"ker{s.meta['kernel_id']:02d}_blur_k{s.meta['kernel_size']}"]
    again = blur_image(read_image(s.sharp), k, 0.01, ns)  # the scipy reference path
    diff = np.abs(again.astype(int) - read_image(s.blurred))
    assert diff.max() <= 1 and np.mean(diff == 0) > 0.999


def test_make_split_mspl_random_and_bad_input(tmp_path):
    sharp = tmp_path / "sharp"
    write_png(sharp / "f0.png", _faces(1)[0])
    m = make_split(sharp, "mspl", tmp_path / "o", seed=1, subset="celeba-hq", variant="random")
    assert m["noise_sigma"] == 0.0 and m["images"][0]["rotate_crop"]["side"] > 0
    split = open_split("mspl-random/celeba-hq", tmp_path / "o")
    samples = split.samples()
    assert len(samples) == 80 and {s.meta["kernel_id"] for s in samples} == set(range(11, 21))
    s = samples[5]
    assert np.array_equal(blur_image(read_image(s.sharp), split.kernel(s)), read_image(s.blurred)) or \
        np.abs(blur_image(read_image(s.sharp), split.kernel(s)).astype(int) - read_image(s.blurred)).max() <= 1
    write_png(sharp / "big.png", np.zeros((100, 128, 3), np.uint8))
    with pytest.raises(DataLayoutError, match="big.png: image is 128x100, expected 128x128"):
        make_split(sharp, "mspl", tmp_path / "p", seed=1)
    with pytest.raises(UsageError, match="unknown protocol"):
        make_split(sharp, "dsfd", tmp_path / "p")


def test_make_split_skips_an_unreadable_face_with_its_reason(tmp_path):
    """A decompression bomb (or corrupt file) among the sharp faces is that image's failure: it
    is left out and named in make_split.json; the other faces are synthesised."""
    from PIL import Image

    sharp = tmp_path / "sharp"
    write_png(sharp / "f0.png", _faces(1)[0])
    Image.new("1", (14000, 14000)).save(sharp / "bomb.png")  # ~24 KB, 196 M pixels
    m = make_split(sharp, "mspl", tmp_path / "o", seed=1)
    assert [r["image"] for r in m["images"]] == ["f0"]
    (sk,) = m["skipped"]
    assert sk["file"] == "bomb.png" and "196,000,000 pixels" in sk["reason"]
    assert "FACEBLUR_MAX_IMAGE_PIXELS" not in sk["reason"] and str(tmp_path) not in sk["reason"]
    saved = json.loads((tmp_path / "o/Test_data_center/Test_data_CelebA/make_split.json").read_text())
    assert saved["skipped"] == m["skipped"]
    assert len(open_split("mspl-center/celeba", tmp_path / "o").samples()) == 80
