"""MATLAB ``imresize`` (bicubic) as the Shen et al. release calls it, against a float64 reference
written here from the definition, one output pixel at a time (no shared code, no matrices):

    u = i/s + 0.5·(1 − 1/s)            (output pixel i, 1-based, in input coordinates; s the given
                                        scale, or out/in when a size is given)
    k(x) = s·cubic(s·x), width 4/s      (s < 1, antialiasing; else cubic(x), width 4)
    out(i) = Σ_j k(u − j)·in(mirror(j)) / Σ_j k(u − j)   over every integer j with k ≠ 0
    mirror: j < 1 → 1 − j, j > n → 2n + 1 − j           (symmetric padding repeating the edge)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceblur_bench.methods.shen.imresize import imresize
from faceblur_bench.methods.shen.networks import half


def keys_cubic(x: float) -> float:
    """Keys' cubic convolution kernel with a = -0.5."""
    a, t = -0.5, abs(x)
    if t <= 1:
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    if t < 2:
        return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
    return 0.0


def reference_1d(signal: list[float], out_len: int, s: float) -> list[float]:
    n = len(signal)
    aa = s < 1
    half_width = 2.0 / s if aa else 2.0
    out = []
    for i in range(1, out_len + 1):
        u = i / s + 0.5 * (1 - 1 / s)
        num = den = 0.0
        for j in range(math.floor(u - half_width) - 1, math.ceil(u + half_width) + 2):
            w = s * keys_cubic(s * (u - j)) if aa else keys_cubic(u - j)
            if w == 0.0:
                continue
            m = j
            while m < 1 or m > n:  # mirror until inside (wide kernels on tiny inputs)
                m = 1 - m if m < 1 else 2 * n + 1 - m
            num += w * signal[m - 1]
            den += w
        out.append(num / den)
    return out


def reference(img: np.ndarray, out_hw: tuple[int, int], scale: float | None) -> np.ndarray:
    """Rows first, then columns (MATLAB's order for equal scales), per channel. A given scale
    maps the pixels (output ``ceil(scale·n)``); a given size maps with ``out / in``."""
    c, h, w = img.shape
    sh, sw = (scale, scale) if scale else (out_hw[0] / h, out_hw[1] / w)
    rows = np.array([[reference_1d(list(img[k, :, x]), out_hw[0], sh) for x in range(w)]
                     for k in range(c)]).transpose(0, 2, 1)
    return np.array([[reference_1d(list(rows[k, y, :]), out_hw[1], sw) for y in range(out_hw[0])]
                     for k in range(c)])


@pytest.mark.parametrize(("in_hw", "kwargs", "out_hw"), [
    ((32, 32), {"scale": 0.5}, (16, 16)),          # the release's half-scale input
    ((13, 10), {"scale": 0.5}, (7, 5)),            # odd sizes: ceil(s·n)
    ((20, 24), {"size": (12, 30)}, (12, 30)),      # down in rows, up in columns
    ((9, 7), {"scale": 2}, (18, 14)),              # up: plain cubic, no antialiasing
    ((5, 6), {"scale": 0.25}, (2, 2)),             # kernel wider than the image: mirrored twice
])
def test_imresize_equals_the_definition(in_hw, kwargs, out_hw):
    g = torch.Generator().manual_seed(sum(in_hw))
    x = torch.rand(2, 3, *in_hw, dtype=torch.float64, generator=g)
    got = imresize(x, **kwargs)
    assert tuple(got.shape) == (2, 3, *out_hw) and got.dtype == torch.float64
    for b in range(2):
        want = reference(x[b].numpy(), out_hw, kwargs.get("scale"))
        np.testing.assert_allclose(got[b].numpy(), want, rtol=0, atol=1e-12)


def test_half_is_matlab_not_torch_at_the_border():
    """Inside, MATLAB's and PyTorch's antialiased bicubic agree (same kernel, same width); the
    outer 3 pixels differ because MATLAB mirrors where PyTorch renormalises. A constant image
    stays constant, borders included (weights sum to 1)."""
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    ours = half(x)
    torch_aa = F.interpolate(x, scale_factor=0.5, mode="bicubic", align_corners=False, antialias=True)
    d = (ours - torch_aa).abs()
    assert float(d[..., 3:-3, 3:-3].max()) < 1e-5
    assert float(d.max()) > 1e-3
    assert float(d[..., 3:-3, 3:-3].max()) < float(d[..., :3, :].max())
    flat = torch.full((1, 3, 128, 128), 0.37)
    torch.testing.assert_close(half(flat), torch.full((1, 3, 64, 64), 0.37), rtol=0, atol=1e-6)
    assert half(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_bad_arguments_are_refused():
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x, scale=0.5, size=(4, 4))
    with pytest.raises(ValueError, match="floating"):
        imresize(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), scale=0.5)
