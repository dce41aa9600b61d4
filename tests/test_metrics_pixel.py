"""PSNR/SSIM protocols against scikit-image, the TID2013 official values and independent formulas."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from faceblur_bench.data.base import Sample
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.base import Batch
from faceblur_bench.registry import metrics

TID = Path(__file__).parent / "data" / "tid2013"


def _batch(restored: list[np.ndarray], reference: list[np.ndarray] | None) -> Batch:
    def t(imgs):
        return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).copy())

    samples = [Sample(id=str(i), blurred=Path(f"{i}.png")) for i in range(len(restored))]
    return Batch(
        samples=samples, restored=t(restored), reference=None if reference is None else t(reference)
    )


def _metric(name: str):
    return metrics.get(name)()


def _face_pairs(n: int = 6, size: int = 128, seed: int = 0):
    """Crops of skimage's astronaut (face region and around it) and degraded copies."""
    img = skdata.astronaut()
    rng = np.random.default_rng(seed)
    gts, outs = [], []
    for i in range(n):
        y, x = 20 + 12 * i, 150 + 9 * i
        gt = img[y : y + size, x : x + size]
        blurred = gaussian_filter(gt.astype(np.float64), sigma=(0.6 + 0.3 * i, 0.6 + 0.3 * i, 0))
        noisy = blurred + rng.normal(0, 2 + i, gt.shape)
        gts.append(gt)
        outs.append(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return outs, gts


def _tid_pairs():
    names = sorted(p.name for p in (TID / "ref_dir").iterdir())
    dist = [read_image(TID / "dist_dir" / n) for n in names]
    ref = [read_image(TID / "ref_dir" / n) for n in names]
    return names, dist, ref


def _official(row: str) -> dict[str, float]:
    with open(TID / "results_official.csv", newline="") as f:
        rows = {r[0]: r[1:] for r in csv.reader(f)}
    return dict(zip(rows["Method"], map(float, rows[row])))


def test_psnr_ssim_match_skimage_on_face_crops():
    outs, gts = _face_pairs()
    b = _batch(outs, gts)
    p = _metric("psnr").compute(b)
    s = _metric("ssim").compute(b)
    for i, (o, g) in enumerate(zip(outs, gts)):
        assert p[i] == pytest.approx(peak_signal_noise_ratio(g, o, data_range=255), abs=1e-10)
        ref = structural_similarity(
            g,
            o,
            channel_axis=2,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert s[i] == pytest.approx(ref, abs=1e-9)
    assert p.dtype == np.float64 and p.shape == (len(outs),)
    # the degradations grow with i, so quality must fall
    assert np.all(np.diff(p) < 0)


def test_tid2013_official_values():
    names, dist, ref = _tid_pairs()
    b = _batch(dist, ref)
    psnr = _metric("psnr").compute(b)
    ssim_gray = _metric("ssim-gray").compute(b)
    off_psnr, off_ssim = _official("psnr"), _official("ssim")
    for i, n in enumerate(names):
        # official rows carry 2 (psnr) and 4 (ssim) decimals
        assert round(psnr[i], 2) == pytest.approx(off_psnr[n], abs=1e-9), n
        assert abs(ssim_gray[i] - off_ssim[n]) <= 0.5e-4 + 1e-12, (n, ssim_gray[i], off_ssim[n])
        assert psnr[i] == pytest.approx(
            peak_signal_noise_ratio(ref[i], dist[i], data_range=255), abs=1e-10
        )
    # the RGB-mean Gaussian SSIM is a different protocol: it must not reproduce the gray values
    rgb = _metric("ssim").compute(b)
    assert np.max(np.abs(rgb - np.array([off_ssim[n] for n in names]))) > 1e-3


def _basicsr_y(img_rgb_u8: np.ndarray) -> np.ndarray:
    """BasicSR to_y_channel written out: BGR float in [0,1], dot with [24.966,128.553,65.481]+16, x255."""
    bgr = img_rgb_u8[..., ::-1].astype(np.float64) / 255.0
    y = bgr @ np.array([24.966, 128.553, 65.481]) + 16.0
    return y / 255.0 * 255.0


def test_y_variants_match_basicsr_formula():
    faces = _face_pairs(n=4, seed=3)
    _, dist, ref = _tid_pairs()
    for outs, gts in (faces, (dist[:2], ref[:2])):
        _check_y(outs, gts)


def _check_y(outs, gts):
    b = _batch(outs, gts)
    py = _metric("psnr-y").compute(b)
    sy = _metric("ssim-y").compute(b)
    for i, (o, g) in enumerate(zip(outs, gts)):
        yo, yg = _basicsr_y(o), _basicsr_y(g)
        mse = np.mean((yo - yg) ** 2)
        assert py[i] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-9)
        ref_ssim = structural_similarity(
            yg, yo, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert sy[i] == pytest.approx(ref_ssim, abs=1e-9)
    # Y is a different protocol from RGB: values must differ
    assert not np.allclose(py, _metric("psnr").compute(b), atol=1e-3)


def _matlab_volume_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB ssim on HxWx3 written with scipy: 3-D Gaussian sigma 1.5, radius 5, replicate ('nearest')."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def f(t):
        return gaussian_filter(t, 1.5, mode="nearest", truncate=5 / 1.5)

    ua, ub = f(a), f(b)
    va, vb, vab = f(a * a) - ua * ua, f(b * b) - ub * ub, f(a * b) - ua * ub
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
    return float(m.mean())


def test_ssim_matlab_rgb_volume_matches_independent_3d_filter():
    outs, gts = _face_pairs(n=3, seed=5)
    b = _batch(outs, gts)
    v = _metric("ssim-matlab-rgb").compute(b)
    for i, (o, g) in enumerate(zip(outs, gts)):
        assert v[i] == pytest.approx(_matlab_volume_ssim(o, g), abs=1e-10)
    # mixing colour channels makes it a different number from the per-channel mean
    assert np.max(np.abs(v - _metric("ssim").compute(b))) > 1e-3
    same = _metric("ssim-matlab-rgb").compute(_batch(gts, gts))
    assert np.allclose(same, 1.0, atol=1e-12)


def test_identical_images_give_inf_psnr_and_unit_ssim():
    outs, gts = _face_pairs(n=2)
    b = _batch(gts, gts)
    assert np.all(np.isinf(_metric("psnr").compute(b)))
    assert np.all(np.isinf(_metric("psnr-y").compute(b)))
    for name in ("ssim", "ssim-y", "ssim-gray"):
        assert np.allclose(_metric(name).compute(b), 1.0, atol=1e-12), name


def test_bad_input_is_named():
    outs, gts = _face_pairs(n=1)
    small = [gts[0][:64, :64]]
    with pytest.raises(ValueError, match="differ in shape"):
        _metric("psnr-y").compute(_batch(outs, small))
    from faceblur_bench.errors import UsageError

    with pytest.raises(UsageError, match="needs ground-truth"):
        _metric("ssim-gray").compute(_batch(outs, None))


def test_registered_with_protocols():
    for name in ("psnr", "ssim", "psnr-y", "ssim-y", "ssim-gray", "ssim-matlab-rgb"):
        cls = metrics.get(name)
        assert cls.protocol and cls.kind == "paired" and cls.higher_is_better
    assert metrics.get("ssim-matlab-rgb").family == "paper"


def test_matrix_filter_path_equals_cpu_filter_path():
    """The banded-matrix filtering used on GPUs gives the CPU (scipy) results, valid and replicate."""
    from faceblur_bench.metrics.pixel import _correlate_cpu, _filter_valid, filter_matrix, gaussian_window

    w = gaussian_window()
    x = torch.rand(3, 2, 23, 31, dtype=torch.float64)
    via_matrix = filter_matrix(23, w).T @ (x @ filter_matrix(31, w))
    assert via_matrix.shape == (3, 2, 13, 21)
    torch.testing.assert_close(via_matrix, _filter_valid(x, w), rtol=0, atol=1e-12)
    rep = torch.einsum("bchw,cd->bdhw", filter_matrix(23, w, "replicate").T @ (x @ filter_matrix(31, w, "replicate")),
                       filter_matrix(2, w, "replicate"))
    torch.testing.assert_close(rep, _correlate_cpu(x, w, (-1, -2, -3)), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        filter_matrix(5, w, "wrap")


def test_protocol_wording_names_what_the_metrics_are():
    """ssim-gray is Wang/MATLAB SSIM (not IQA-PyTorch's ssim); fid-clean is not clean-fid's value
    (other network and input scaling), and says so."""
    from faceblur_bench.registry import metrics

    gray = metrics.get("ssim-gray").protocol
    assert "ssim_index.m" in gray and "not IQA-PyTorch" in gray and "IQA-PyTorch SSIM reference" not in gray
    clean = metrics.get("fid-clean").protocol
    assert "(x-128)/128" in clean and "2x/255-1" in clean and "not clean-fid's value" in clean
