"""Pixel fidelity metrics: PSNR and SSIM under stated protocols.

``psnr``: uint8 RGB, peak 255, MSE over all pixels and channels of one image (float64)
= ``skimage.metrics.peak_signal_noise_ratio`` on uint8 = MATLAB ``psnr`` on uint8 RGB.
Identical images give +inf (as both references do).

``ssim``: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma),
C1=(0.01*255)^2, C2=(0.03*255)^2, population covariances, mean over the valid region (a 5-pixel
border excluded) and over R, G, B = ``skimage.metrics.structural_similarity(channel_axis=2,
data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
Both are computed batched on the run device in float64.

Variants (each its own named metric, never a hidden flag):

``psnr-y`` / ``ssim-y`` (BasicSR ``test_y_channel``): luma of MATLAB ``rgb2ycbcr`` (BT.601
limited range) ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in 0..255, kept as
float (BasicSR does not round; MATLAB's uint8 ``rgb2ycbcr`` would), then PSNR with peak 255 and
the Gaussian SSIM above with L=255 on that single channel. The luma of each batch is converted
once for both (:func:`batch_luma`).

``ssim-gray`` (Wang et al.'s MATLAB ``ssim_index.m`` on ``rgb2gray``; matches a rewrite of
``ssim_index.m`` to 3e-14, and the values IQA-PyTorch publishes for its TID2013 calibration pairs
in ``tests/data/tid2013`` to 4 decimals): MATLAB ``rgb2gray`` on uint8 (``0.298936021293775 R +
0.587043074451121 G + 0.114020904255103 B`` rounded to uint8), then the Gaussian 11x11 (sigma 1.5)
SSIM with L=255 over the *valid* region (``ssim_index.m`` filtering, no >256 px downsampling).
It is not IQA-PyTorch's ``ssim`` metric, which clips the contrast-structure term at 0 and
rounds the luma differently; the two differ by up to 1 % on some images.

Aggregates: the split's value is the mean over images with a finite value; images identical to
their reference (PSNR +inf) are counted apart (``extra.infinite`` in the summary).

``ssim-matlab-rgb`` (MSPL's MATLAB ``ssim(gt, out)`` on an H x W x 3 uint8 array): MATLAB treats
the array as a 3-D volume, so local statistics use a cubic 11x11x11 Gaussian (sigma 1.5, filter
size ``2*ceil(3*sigma)+1``, the ``imgaussfilt3`` path) with *replicate* padding on all three axes
(the colour axis too: R, G, B are mixed), same-size output, C1=(0.01*255)^2, C2=(0.03*255)^2,
value = mean of the whole H x W x 3 SSIM map. Computed in float64 (MATLAB uses single precision
for integer inputs in recent releases; differences are < 1e-5).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..registry import metrics
from .base import Batch, Metric, require_reference


def psnr_u8(restored: torch.Tensor, reference: torch.Tensor, peak: float = 255.0) -> torch.Tensor:
    """Per-image PSNR of uint8 ``(N, C, H, W)`` tensors (float64 ``(N,)``)."""
    d = restored.double() - reference.double()
    mse = d.pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10((peak * peak) / mse)  # mse == 0 -> +inf


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, dtype=torch.float64,
                    device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian taps as scipy.ndimage.gaussian_filter uses them."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def filter_matrix(n: int, w: torch.Tensor, mode: str = "valid") -> torch.Tensor:
    """``(n, m)`` matrix ``M`` with ``x @ M`` = 1-D correlation of the last axis of ``x`` with ``w``.

    ``mode="valid"``: ``m = n - len(w) + 1`` outputs; ``mode="replicate"``: ``m = n`` outputs with
    edge samples repeated beyond the borders (MATLAB ``imfilter(..., 'replicate')``).
    Filtering as a matrix product runs on BLAS in float64, far faster on a CPU than a float64
    convolution.
    """
    k = w.numel()
    r = k // 2
    if mode == "valid":
        m = n - k + 1
        mat = torch.zeros(n, m, dtype=w.dtype, device=w.device)
        j = torch.arange(m, device=w.device)
        for i in range(k):
            mat[j + i, j] = w[i]
        return mat
    if mode == "replicate":
        mat = torch.zeros(n, n, dtype=w.dtype, device=w.device)
        j = torch.arange(n, device=w.device)
        for i in range(k):
            src = (j + i - r).clamp(0, n - 1)
            mat.index_put_((src, j), w[i].expand(n), accumulate=True)
        return mat
    raise ValueError(f"unknown filter mode {mode!r}")


def _correlate_cpu(x: torch.Tensor, w: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Separable correlation with edge replication along ``axes`` (scipy's C loops, float64)."""
    from scipy.ndimage import correlate1d

    a = x.numpy()
    taps = w.cpu().numpy()
    for ax in axes:
        a = correlate1d(a, taps, axis=ax, mode="nearest")
    return torch.from_numpy(a)


def _filter_valid(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of the last two axes of ``(..., H, W)`` by the 1-D window ``w``.

    CPU: scipy ``correlate1d`` then the valid crop (the crop does not depend on the edge mode);
    other devices: products with banded filter matrices (BLAS/cuBLAS in float64).
    """
    if x.device.type == "cpu":
        r = w.numel() // 2
        return _correlate_cpu(x, w, (-1, -2))[..., r:x.shape[-2] - r, r:x.shape[-1] - r]
    h, wd = x.shape[-2:]
    return filter_matrix(h, w).transpose(0, 1) @ (x @ filter_matrix(wd, w))


def ssim_gaussian(restored: torch.Tensor, reference: torch.Tensor, data_range: float = 255.0,
                  sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM, mean over channels, of ``(N, C, H, W)`` tensors (float64 ``(N,)``).

    With a 5-pixel radius the valid convolution covers exactly the region skimage keeps after
    cropping its border, so no padding rule is involved.
    """
    n, c, h, wd = restored.shape
    x = restored.double().reshape(n * c, 1, h, wd)
    y = reference.double().reshape(n * c, 1, h, wd)
    w = gaussian_window(sigma, device=x.device)
    if min(h, wd) < w.numel():
        raise ValueError(f"SSIM needs images of at least {w.numel()}x{w.numel()} pixels, got {h}x{wd}")
    stack = torch.cat([x, y, x * x, y * y, x * y], 0)
    f = _filter_valid(stack, w)
    ux, uy, uxx, uyy, uxy = f.chunk(5, 0)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).view(n, c).mean(1)


@metrics.register("psnr")
class PSNR(Metric):
    label = "PSNR"
    protocol = "uint8 RGB, peak 255, MSE over all pixels and channels per image, mean over images (= skimage / MATLAB psnr on uint8)"
    higher_is_better = True

    def compute(self, batch: Batch) -> np.ndarray:
        ref = _check_pair(batch.restored, batch.reference, self.name)
        return psnr_u8(batch.restored, ref).cpu().numpy()


@metrics.register("ssim")
class SSIM(Metric):
    label = "SSIM"
    protocol = "uint8 RGB, Gaussian 11x11 window sigma 1.5, K=(0.01,0.03), L=255, mean of per-channel SSIM (= skimage structural_similarity, gaussian_weights=True)"
    higher_is_better = True

    def compute(self, batch: Batch) -> np.ndarray:
        ref = _check_pair(batch.restored, batch.reference, self.name)
        return ssim_gaussian(batch.restored, ref).cpu().numpy()


# -- colour conversions ---------------------------------------------------------------------------
#: MATLAB rgb2gray weights (first row of inv of the NTSC YIQ matrix)
RGB2GRAY_MATLAB = (0.298936021293775, 0.587043074451121, 0.114020904255103)
#: BT.601 limited-range luma weights of MATLAB rgb2ycbcr for 0..255 input (then +16)
RGB2Y_BT601 = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def _check_pair(restored: torch.Tensor, reference: torch.Tensor | None, what: str) -> torch.Tensor:
    reference = require_reference(reference, what)
    if restored.shape != reference.shape:
        raise ValueError(
            f"{what}: restored {tuple(restored.shape)} and reference {tuple(reference.shape)} "
            "differ in shape; the method's output size must equal the ground-truth size"
        )
    if restored.dim() != 4 or restored.shape[1] != 3:
        raise ValueError(f"{what}: expected (N, 3, H, W) RGB tensors, got {tuple(restored.shape)}")
    return reference


def rgb_to_y_bt601(rgb_u8: torch.Tensor) -> torch.Tensor:
    """Limited-range BT.601 luma of uint8 RGB ``(N, 3, H, W)`` -> float64 ``(N, 1, H, W)`` in [16, 235].

    Same as BasicSR ``to_y_channel`` (``bgr2ycbcr(y_only=True) * 255``), not rounded.
    """
    x = rgb_u8.double()
    w = torch.tensor(RGB2Y_BT601, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True) + 16.0


def rgb_to_gray_matlab(rgb_u8: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of uint8 RGB ``(N, 3, H, W)``: float64 ``(N, 1, H, W)`` holding uint8 values.

    MATLAB rounds half away from zero when producing uint8; values are >= 0 so that is floor(x + 0.5).
    """
    x = rgb_u8.double()
    w = torch.tensor(RGB2GRAY_MATLAB, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return torch.floor((x * w).sum(1, keepdim=True) + 0.5).clamp_(0, 255)


def batch_luma(batch: Batch, which: str) -> torch.Tensor:
    """:func:`rgb_to_y_bt601` of ``batch.<which>`` (``"restored"`` / ``"reference"``), converted
    once per batch for every metric that asks (``psnr-y``, ``ssim-y``): the same tensor, so the
    same bits as a conversion of its own."""
    return batch.memo(("luma", "bt601", which), lambda: rgb_to_y_bt601(getattr(batch, which)))


def psnr_float(restored: torch.Tensor, reference: torch.Tensor, peak: float = 255.0) -> torch.Tensor:
    """Per-image PSNR of real-valued ``(N, C, H, W)`` tensors on a 0..peak scale (float64 ``(N,)``)."""
    d = restored.double() - reference.double()
    mse = d.pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10((peak * peak) / mse)


def ssim_matlab_volume(restored: torch.Tensor, reference: torch.Tensor, data_range: float = 255.0,
                       sigma: float = 1.5) -> torch.Tensor:
    """MATLAB ``ssim`` of each ``(3, H, W)`` image treated as an H x W x 3 volume (float64 ``(N,)``).

    Cubic Gaussian of size ``2*ceil(3*sigma)+1`` (11 for sigma 1.5), separable, replicate padding
    on H, W and the colour axis, same-size map, mean over all H*W*3 entries.
    """
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=restored.device)
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()

    c, h, wd = restored.shape[1:]
    mc, mh, mw = (filter_matrix(n, g, "replicate") for n in (c, h, wd))

    def blur(t: torch.Tensor) -> torch.Tensor:  # t: (B, C, H, W); separable 3-D, replicate edges
        if t.device.type == "cpu":
            return _correlate_cpu(t, g, (-1, -2, -3))
        t = mh.transpose(0, 1) @ (t @ mw)
        return torch.einsum("bchw,cd->bdhw", t, mc)

    a = restored.double()
    b = reference.double()
    f = blur(torch.cat([a, b, a * a, b * b, a * b], 0))
    ux, uy, uxx, uyy, uxy = f.chunk(5, 0)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


@metrics.register("psnr-y")
class PSNRY(Metric):
    label = "PSNR-Y"
    protocol = "BT.601 limited-range luma Y=16+(65.481R+128.553G+24.966B)/255 (float, BasicSR test_y_channel, no border crop), peak 255, per image, mean over images"
    higher_is_better = True

    def compute(self, batch: Batch) -> np.ndarray:
        _check_pair(batch.restored, batch.reference, self.name)
        return psnr_float(batch_luma(batch, "restored"), batch_luma(batch, "reference")).cpu().numpy()


@metrics.register("ssim-y")
class SSIMY(Metric):
    label = "SSIM-Y"
    protocol = "BT.601 limited-range luma (float, BasicSR test_y_channel), Gaussian 11x11 sigma 1.5, L=255, valid region, mean over images"
    higher_is_better = True

    def compute(self, batch: Batch) -> np.ndarray:
        _check_pair(batch.restored, batch.reference, self.name)
        return ssim_gaussian(batch_luma(batch, "restored"), batch_luma(batch, "reference")).cpu().numpy()


@metrics.register("ssim-gray")
class SSIMGray(Metric):
    label = "SSIM-gray"
    protocol = ("Wang/MATLAB ssim_index.m SSIM on MATLAB rgb2gray (uint8): Gaussian 11x11 sigma 1.5, L=255, "
                "valid region, no downsampling (not IQA-PyTorch's ssim, which clips the cs term at 0: "
                "up to 1% apart)")
    higher_is_better = True

    def compute(self, batch: Batch) -> np.ndarray:
        ref = _check_pair(batch.restored, batch.reference, self.name)
        return ssim_gaussian(rgb_to_gray_matlab(batch.restored), rgb_to_gray_matlab(ref)).cpu().numpy()


@metrics.register("ssim-matlab-rgb")
class SSIMMatlabRGB(Metric):
    label = "SSIM (MATLAB RGB volume)"
    protocol = "MSPL paper: MATLAB ssim(gt,out) on uint8 HxWx3 = 3-D volume SSIM, cubic 11x11x11 Gaussian sigma 1.5, replicate padding (colour axis too), L=255, mean over the HxWx3 map"
    higher_is_better = True
    family = "paper"

    def compute(self, batch: Batch) -> np.ndarray:
        ref = _check_pair(batch.restored, batch.reference, self.name)
        return ssim_matlab_volume(batch.restored, ref).cpu().numpy()


__all__ = [
    "PSNR",
    "PSNRY",
    "SSIM",
    "SSIMY",
    "SSIMGray",
    "SSIMMatlabRGB",
    "batch_luma",
    "gaussian_window",
    "psnr_float",
    "psnr_u8",
    "rgb_to_gray_matlab",
    "rgb_to_y_bt601",
    "ssim_gaussian",
    "ssim_matlab_volume",
]
