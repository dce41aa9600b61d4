"""MATLAB's ``imresize`` with its default bicubic kernel, as the Shen et al. release calls it.

The released ``main_deblur18.m`` / ``DL_deblur_net18.m`` resize every input to 128×128 and make
the half-scale input with ``imresize(x, 0.5)`` (METHODS.md §C.3). MATLAB's algorithm
(``imresize.m``, ``contributions``), per dimension of input length ``n`` and output length ``m``
at scale ``s = m / n`` (or the given scale, with ``m = ceil(s · n)``):

- kernel: Keys' cubic convolution with ``a = -0.5``:
  ``(1.5|x|³ − 2.5|x|² + 1)`` for ``|x| ≤ 1``, ``(−0.5|x|³ + 2.5|x|² − 4|x| + 2)`` for
  ``1 < |x| ≤ 2``, else 0 (width 4);
- antialiasing (default on) when ``s < 1``: the kernel is stretched, ``h(x) = s · cubic(s · x)``,
  and its width becomes ``4 / s``;
- output pixel ``i`` (1-based) maps to ``u = i / s + 0.5 · (1 − 1/s)`` in input coordinates; the
  taps are ``j = floor(u − width/2) + 0 … ceil(width) + 1``, weighted ``h(u − j)``;
- weights are **normalised** to sum to 1 for every output pixel;
- taps outside ``1…n`` are **mirrored** (symmetric padding that repeats the edge pixel:
  ``0 → 1``, ``−1 → 2``, ``n + 1 → n``), not dropped;
- dimensions are resized one after the other, the one with the smaller scale first (rows first
  on a tie).

PyTorch's ``F.interpolate(..., mode="bicubic", antialias=True)`` uses the same kernel and width
but drops the taps outside the image and renormalises, so the outer 3 pixels differ (at
``s = 0.5`` up to 0.049 on the demo faces in [0, 1]); without antialiasing it uses ``a = -0.75``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

#: MATLAB's bicubic kernel parameter (Keys, a = -0.5) and support width
CUBIC_A: float = -0.5
KERNEL_WIDTH: float = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``cubic`` kernel (Keys, a = -0.5) at ``x`` (float64)."""
    ax = np.abs(np.asarray(x, np.float64))
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The ``(out_len, in_len)`` float64 matrix of one resized dimension (MATLAB's
    ``contributions`` with its mirrored indices folded in): ``out = M @ in``. Read-only."""
    if antialias and scale < 1:
        width = KERNEL_WIDTH / scale

        def h(x: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * x)
    else:
        width, h = KERNEL_WIDTH, cubic
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    w = h(u[:, None] - taps)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # 0-based [1:n, n:-1:1]
    idx = mirror[np.mod(taps.astype(np.int64) - 1, 2 * in_len)]
    m = np.zeros((out_len, in_len), np.float64)
    np.add.at(m, (np.repeat(np.arange(out_len), taps.shape[1]), idx.reshape(-1)), w.reshape(-1))
    m.setflags(write=False)
    return m


def imresize(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, scale)`` / ``imresize(x, [h w])`` (bicubic) of ``x`` ``(..., H, W)``.

    Exactly one of ``scale`` (output ``ceil(scale · H) × ceil(scale · W)``) or ``size``
    (``(h, w)``; per-dimension scale ``h / H``, ``w / W``) is given. Floating inputs only; the
    result is computed in float64 for float64 inputs, else in float32, and returned in ``x``'s
    dtype (unclamped, like MATLAB on ``double`` images).
    """
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale or size")
    if not x.is_floating_point() or x.dim() < 2:
        raise ValueError(f"imresize expects a floating (..., H, W) tensor, got {x.dtype} {tuple(x.shape)}")
    in_hw = tuple(x.shape[-2:])
    if size is not None:
        out_hw = (int(size[0]), int(size[1]))
        scales = (out_hw[0] / in_hw[0], out_hw[1] / in_hw[1])
    else:
        if scale <= 0:
            raise ValueError(f"imresize: scale must be positive, got {scale}")
        out_hw = (math.ceil(scale * in_hw[0]), math.ceil(scale * in_hw[1]))
        scales = (float(scale), float(scale))
    if min(out_hw) < 1:
        raise ValueError(f"imresize: output size {out_hw} is empty")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = x.to(work)
    # MATLAB's order: the dimension with the smaller scale first (a stable sort: rows on a tie)
    for dim in sorted((0, 1), key=lambda d: scales[d]):
        m = torch.from_numpy(np.array(resize_matrix(in_hw[dim], out_hw[dim], scales[dim], antialias)))
        m = m.to(device=y.device, dtype=work)
        y = torch.matmul(m, y) if dim == 0 else torch.matmul(y, m.T)
    return y.to(x.dtype)
