"""Yun et al.'s notebook PSNR / SSIM (``FaceSRnDeblur_test.ipynb``): a named paper protocol.

The test notebook scores each 256×256 output with skimage's ``compare_psnr`` /
``compare_ssim`` on float RGB in [0, 1] with **data_range = max − min of the prediction**
(over all pixels and channels of that image) instead of the range of the data type. Both
metrics here reproduce that definition:

``psnr-yun``: ``10·log10(R² / MSE)`` with ``R = max(pred) − min(pred)``, MSE over all pixels
and channels, float64.

``ssim-yun``: skimage ``structural_similarity(gt, pred, data_range=R, channel_axis=2)`` with
its defaults of that era: 7×7 *uniform* window, sample covariances (×49/48), K = (0.01, 0.03),
C1 = (0.01·R)², C2 = (0.03·R)², mean over the valid region (3-pixel border dropped) and over
R, G, B.

Difference from the notebook: it scored the network's *unclamped* ``(x + 1) / 2`` floats;
the harness scores the output as saved (clamped to [0, 1], quantised to uint8), so images
whose raw output leaves [0, 1] get a smaller R here. An image with a constant prediction
(R = 0) cannot be scored (NaN). Since R ≤ 1 for any saved image, these values are never
above the standard ``psnr`` with peak 255.
"""

from __future__ import annotations

import numpy as np
import torch

from ..registry import metrics
from .base import Batch, Metric
from .pixel import _check_pair, _filter_valid

#: skimage's default window for compare_ssim / structural_similarity without gaussian_weights
WINDOW: int = 7


def prediction_range(pred01: torch.Tensor) -> torch.Tensor:
    """``max − min`` of each ``(C, H, W)`` prediction in ``(N, C, H, W)`` (float64 ``(N,)``)."""
    flat = pred01.double().flatten(1)
    return flat.amax(1) - flat.amin(1)


def psnr_yun(restored01: torch.Tensor, reference01: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR with peak = range of the prediction; float tensors in [0, 1] -> ``(N,)``."""
    r = prediction_range(restored01)
    mse = (restored01.double() - reference01.double()).pow(2).flatten(1).mean(1)
    out = 10.0 * torch.log10(r * r / mse)
    return torch.where(r > 0, out, torch.full_like(out, float("nan")))


def ssim_yun(restored01: torch.Tensor, reference01: torch.Tensor, win_size: int = WINDOW) -> torch.Tensor:
    """Per-image SSIM (uniform window, sample covariance, data range of the prediction)."""
    n, c, h, w = restored01.shape
    if min(h, w) < win_size:
        raise ValueError(f"ssim-yun needs images of at least {win_size}x{win_size}, got {h}x{w}")
    r = prediction_range(restored01)
    x = reference01.double().reshape(n * c, 1, h, w)
    y = restored01.double().reshape(n * c, 1, h, w)
    taps = torch.full((win_size,), 1.0 / win_size, dtype=torch.float64, device=x.device)
    f = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], 0), taps)
    ux, uy, uxx, uyy, uxy = f.chunk(5, 0)
    np_ = win_size * win_size
    cov = np_ / (np_ - 1.0)
    vx, vy, vxy = cov * (uxx - ux * ux), cov * (uyy - uy * uy), cov * (uxy - ux * uy)
    rr = r.repeat_interleave(c).view(n * c, 1, 1, 1)
    c1, c2 = (0.01 * rr) ** 2, (0.03 * rr) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    out = s.flatten(1).mean(1).view(n, c).mean(1)
    return torch.where(r > 0, out, torch.full_like(out, float("nan")))


@metrics.register("psnr-yun")
class PSNRYun(Metric):
    label = "PSNR (Yun notebook)"
    protocol = ("Yun et al. test notebook: skimage compare_psnr on RGB in [0,1] with data_range = "
                "max-min of the prediction, per image, mean over images (harness: saved uint8 output)")
    higher_is_better = True
    family = "paper"

    def compute(self, batch: Batch) -> np.ndarray:
        ref = _check_pair(batch.restored, batch.reference, self.name)
        return psnr_yun(batch.restored.double() / 255.0, ref.double() / 255.0).cpu().numpy()


@metrics.register("ssim-yun")
class SSIMYun(Metric):
    label = "SSIM (Yun notebook)"
    protocol = ("Yun et al. test notebook: skimage compare_ssim(multichannel) on RGB in [0,1], 7x7 uniform "
                "window, sample covariance, data_range = max-min of the prediction, mean over images")
    higher_is_better = True
    family = "paper"

    def compute(self, batch: Batch) -> np.ndarray:
        ref = _check_pair(batch.restored, batch.reference, self.name)
        return ssim_yun(batch.restored.double() / 255.0, ref.double() / 255.0).cpu().numpy()
