"""numba kernels of :mod:`faceblur_bench.data.direct` (imported lazily: compiling costs seconds
the first time, then numba's on-disk cache makes it ~0.1 s).

Accumulation order is fixed and multiply and add stay separate (numba does not contract them
into FMA without ``fastmath``), which keeps the output identical across SIMD widths.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _accumulate(src, base, offs, ws, t0, t1, acc, width):  # pragma: no cover - compiled
    if t1 == t0:
        for j in range(width):
            acc[j] = 0.0
        return
    # first group of 4 taps initialises acc (0 + x == x), the rest accumulate in order
    for t in range(t0, t1, 4):
        w0 = ws[t]
        w1 = ws[t + 1]
        w2 = ws[t + 2]
        w3 = ws[t + 3]
        # slices (not src[base + off + j]) so numba can drop negative-index wrap-around and vectorise
        s0 = src[base + offs[t]:base + offs[t] + width]
        s1 = src[base + offs[t + 1]:base + offs[t + 1] + width]
        s2 = src[base + offs[t + 2]:base + offs[t + 2] + width]
        s3 = src[base + offs[t + 3]:base + offs[t + 3] + width]
        if t == t0:
            for j in range(width):
                acc[j] = ((w0 * s0[j] + w1 * s1[j]) + w2 * s2[j]) + w3 * s3[j]
        else:
            for j in range(width):
                acc[j] = (((acc[j] + w0 * s0[j]) + w1 * s1[j]) + w2 * s2[j]) + w3 * s3[j]


@njit(parallel=True, cache=True)
def direct_blur(pad, row_stride, height, width, starts, offs, ws, lims, out_u8, out_f):  # pragma: no cover - compiled
    """Kernel b over face n -> ``out_u8[n, b]`` when ``out_u8`` is not empty, else ``out_f[n, b]``.

    uint8: ``rint(clip(acc, 0, 255))`` with the weights carrying the 255; ``lims`` =
    (0, 255, 1.5 * 2**mantissa_bits) in the pad's dtype -- adding and subtracting the last rounds to
    the nearest integer, ties to even (IEEE default), like ``np.rint``, in a form that vectorises.
    float: the sum itself, in the pad's precision.
    """
    quantize = out_u8.shape[0] > 0
    lo = lims[0]
    hi = lims[1]
    magic = lims[2]
    n_img = pad.shape[0]
    n_k = starts.shape[0] - 1
    for job in prange(n_img * n_k):
        n = job // n_k
        b = job - n * n_k
        src = pad[n]
        acc = np.empty(width, pad.dtype)
        for r in range(height):
            _accumulate(src, r * row_stride, offs, ws, starts[b], starts[b + 1], acc, width)
            if quantize:
                d = out_u8[n, b, r * width:(r + 1) * width]
                for j in range(width):
                    v = min(max(acc[j], lo), hi)
                    d[j] = np.uint8((v + magic) - magic)
            else:
                f = out_f[n, b, r * width:(r + 1) * width]
                for j in range(width):
                    f[j] = acc[j]
