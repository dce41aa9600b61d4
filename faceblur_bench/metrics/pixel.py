"""Pixel fidelity metrics: PSNR and SSIM under stated protocols.

``psnr``: uint8 RGB, peak 255, MSE over all pixels and channels of one image (float64)
= ``skimage.metrics.peak_signal_noise_ratio`` on uint8 = MATLAB ``psnr`` on uint8 RGB.
Identical images give +inf (as both references do).

``ssim``: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma),
C1=(0.01*255)^2, C2=(0.03*255)^2, population covariances, mean over the valid region (a 5-pixel
border excluded) and over R, G, B = ``skimage.metrics.structural_similarity(channel_axis=2,
data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
Both are computed batched on the run device in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import metrics
from .base import Batch, Metric


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


def _filter_valid(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of ``(B, 1, H, W)`` by the 1-D window ``w``."""
    k = w.numel()
    x = F.conv2d(x, w.view(1, 1, 1, k))
    return F.conv2d(x, w.view(1, 1, k, 1))


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
        return psnr_u8(batch.restored, batch.reference).cpu().numpy()


@metrics.register("ssim")
class SSIM(Metric):
    label = "SSIM"
    protocol = "uint8 RGB, Gaussian 11x11 window sigma 1.5, K=(0.01,0.03), L=255, mean of per-channel SSIM (= skimage structural_similarity, gaussian_weights=True)"
    higher_is_better = True

    def compute(self, batch: Batch) -> np.ndarray:
        return ssim_gaussian(batch.restored, batch.reference).cpu().numpy()


__all__ = ["psnr_u8", "ssim_gaussian", "gaussian_window", "PSNR", "SSIM", "math"]
