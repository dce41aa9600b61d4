"""Sparse direct blur engine (numba): equals the convolution definition, quantises like numpy,
gives the same bytes whatever SIMD width numba compiles for, and rejects bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from faceblur_bench.data.degrade import quantize_uint8, reflect_pad
from faceblur_bench.data.direct import (DIRECT_MAX_TAPS, DirectBlur, blur_all_pairs_u8, count_taps, direct_ok,
                                        kernel_taps)
from faceblur_bench.data.kernels import random_walk_kernel, spline_kernel
from faceblur_bench.errors import UsageError


def _faces(n: int, h: int = 128, w: int = 128, c: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 64.0
    out = np.empty((n, h, w, c), np.uint8)
    for i in range(n):
        base = 0.5 + 0.4 * np.sin(2 * np.pi * (xx * (1 + i) + yy * 2))[..., None] * np.linspace(1, 0.4, c)
        out[i] = np.clip((base + 0.08 * rng.standard_normal((h, w, c))) * 255, 0, 255).astype(np.uint8)
    return out


def _kernels() -> list[np.ndarray]:
    return [spline_kernel(13, 1, 0), random_walk_kernel(27, 1, 1), spline_kernel(19, 1, 2),
            random_walk_kernel(15, 1, 3), spline_kernel(27, 1, 4)]


def _exact(faces: np.ndarray, ks: list[np.ndarray]) -> np.ndarray:
    """float64 definition (scipy direct method) on the float32-rounded images: (N, B, H, W, C)."""
    x = (faces / 255.0).astype(np.float32).astype(np.float64)
    return np.stack([np.stack([np.stack([signal.convolve(reflect_pad(x[n], (len(k) - 1) // 2)[:, :, c], k,
                                                         mode="valid", method="direct")
                                         for c in range(x.shape[-1])], -1) for k in ks]) for n in range(len(x))])


@pytest.mark.parametrize("shape", [(128, 128, 3), (96, 80, 3), (64, 64, 1)])
@pytest.mark.parametrize("precision,tol", [("float64", 1e-13), ("float32", 1e-6)])
def test_float_output_is_the_convolution(shape, precision, tol):
    faces = _faces(2, *shape)
    ks = _kernels()
    out = DirectBlur(ks, *shape, precision=precision)(faces, quantize=False)
    assert out.shape == (2, len(ks)) + shape and out.dtype == np.dtype(precision)
    err = np.abs(out - _exact(faces, ks)).max()
    assert err < tol, err


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_uint8_output_rounds_half_to_even_like_numpy(precision):
    faces = _faces(3)
    ks = _kernels()
    got = DirectBlur(ks, 128, 128, precision=precision)(faces)
    exact = _exact(faces, ks)
    want = quantize_uint8(exact)
    diff = got.astype(int) - want
    assert np.abs(diff).max() <= 1
    # every disagreement sits on a rounding tie within the engine's precision
    frac = np.abs(exact * 255.0 - np.floor(exact * 255.0) - 0.5)
    tie_tol = 1e-9 if precision == "float64" else 2e-4
    assert np.all(frac[diff != 0] < tie_tol)
    assert np.mean(diff == 0) > 0.9999


def test_reused_buffer_and_fresh_output_agree_and_taps_are_sparse():
    faces = _faces(4)
    ks = _kernels()
    blur = DirectBlur(ks, 128, 128)
    buf = np.full((2, len(ks), 128, 128, 3), 7, np.uint8)
    first = blur(faces[:2], out=buf).copy()
    second = blur(faces[2:], out=buf)
    assert second is buf
    assert np.array_equal(first, blur(faces[:2])) and np.array_equal(second, blur(faces[2:]))
    assert blur.taps == count_taps(ks) and max(blur.taps) < 0.25 * 27 * 27
    starts, offs, ws = kernel_taps(ks, 13, 154 * 3, 3, 1.0, np.float64)
    assert np.all(np.diff(starts) % 4 == 0)
    for b, k in enumerate(ks):
        assert ws[starts[b]:starts[b + 1]].sum() == pytest.approx(k.sum(), abs=1e-12)


def test_same_bytes_for_every_simd_width(tmp_path):
    """numba compiled for plain x86-64 (SSE2) writes exactly the bytes of the host build (AVX2/AVX-512)."""
    code = (
        "import hashlib, sys, numpy as np\n"
        "sys.path.insert(0, %r)\n"
        "from test_data_direct import _faces, _kernels\n"
        "from faceblur_bench.data.direct import DirectBlur\n"
        "f = _faces(2)\n"
        "print(hashlib.sha256(DirectBlur(_kernels(), 128, 128, precision='float32')(f).tobytes()"
        " + DirectBlur(_kernels(), 128, 128, precision='float64')(f).tobytes()).hexdigest())\n"
    ) % os.path.dirname(__file__)
    env = dict(os.environ, NUMBA_CPU_NAME="x86-64", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    f = _faces(2)
    here = hashlib.sha256(DirectBlur(_kernels(), 128, 128, precision="float32")(f).tobytes()
                          + DirectBlur(_kernels(), 128, 128, precision="float64")(f).tobytes()).hexdigest()
    assert res.stdout.strip() == here


def test_engines_agree_and_auto_picks_fft_for_dense_kernels():
    faces = _faces(2)
    ks = _kernels()
    direct = blur_all_pairs_u8(faces, ks, "float64", engine="direct")
    fft = blur_all_pairs_u8(faces, ks, "float64", engine="fft")
    assert direct.shape == fft.shape == (2, len(ks), 128, 128, 3)
    assert np.abs(direct.astype(int) - fft).max() <= 1 and np.mean(direct == fft) > 0.9999
    assert direct_ok(ks)
    g = np.exp(-((np.arange(27) - 13) ** 2) / 40.0)
    gauss = np.outer(g, g) / np.outer(g, g).sum()
    assert count_taps([gauss]) == [729] and 729 > DIRECT_MAX_TAPS and not direct_ok(ks + [gauss])


def test_bad_input_is_named():
    ks = _kernels()
    with pytest.raises(UsageError, match="kernel 1 has shape"):
        DirectBlur([ks[0], np.ones((4, 4)) / 16], 128, 128)
    bad = ks[0].copy()
    bad[3, 3] = np.nan
    with pytest.raises(UsageError, match="kernel 0 holds NaN"):
        DirectBlur([bad], 128, 128)
    with pytest.raises(UsageError, match="too large"):
        DirectBlur([ks[1]], 12, 12)
    with pytest.raises(UsageError, match="unknown precision"):
        DirectBlur(ks, 128, 128, precision="float16")
    blur = DirectBlur(ks, 128, 128)
    with pytest.raises(UsageError, match="expected uint8"):
        blur(_faces(1).astype(np.float32))
    with pytest.raises(UsageError, match="expected uint8"):
        blur(_faces(1, 64, 64))
    with pytest.raises(UsageError, match="out buffer"):
        blur(_faces(1), out=np.empty((1, 2, 128, 128, 3), np.uint8))
    with pytest.raises(UsageError, match="unknown blur engine"):
        blur_all_pairs_u8(_faces(1), ks, engine="gpu")


def test_make_split_manifest_names_the_engine(tmp_path):
    from faceblur_bench.data.synth import make_split
    from faceblur_bench.imageio import write_png

    sharp = tmp_path / "sharp"
    sharp.mkdir()
    for i, f in enumerate(_faces(2)):
        write_png(sharp / f"f{i}.png", f)
    man = make_split(sharp, "mspl", tmp_path / "out", seed=1)
    assert "sparse direct" in man["blur"]
    stored = json.loads(next((tmp_path / "out").rglob("make_split.json")).read_text())
    assert stored["blur"] == man["blur"]
