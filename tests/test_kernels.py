"""Kernel generators: size, unit sum, non-negativity, centred mass, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

from faceblur_bench.data.kernels import (
    KERNEL_SIZES, centroid, check_kernel, kernel_bank, make_kernel, random_walk_kernel, spline_kernel,
)
from faceblur_bench.errors import DataLayoutError, UsageError


@pytest.mark.parametrize("kind", ["spline", "random-walk"])
def test_kernel_properties(kind):
    bank = kernel_bank(3, KERNEL_SIZES, seed=11, kind=kind)
    assert sorted(bank) == list(KERNEL_SIZES)
    for k, arr in bank.items():
        assert arr.shape == (3, k, k) and arr.dtype == np.float64
        for ker in arr:
            assert abs(ker.sum() - 1.0) < 1e-12
            assert ker.min() >= 0
            cy, cx = centroid(ker)
            c = (k - 1) / 2
            assert abs(cy - c) <= 0.5 + 1e-9 and abs(cx - c) <= 0.5 + 1e-9
            # a motion kernel, not a delta: several pixels, spread over a good part of the canvas
            rows, cols = np.nonzero(ker)
            assert len(rows) >= 5
            assert max(np.ptp(rows), np.ptp(cols)) >= (k - 1) * 0.3
        # different indices give different kernels
        assert not np.allclose(arr[0], arr[1])


@pytest.mark.parametrize("fn", [spline_kernel, random_walk_kernel])
def test_determinism_and_index_independence(fn):
    a = fn(21, seed=5, index=3)
    b = fn(21, seed=5, index=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, fn(21, seed=6, index=3))
    bank = kernel_bank(5, (21,), seed=5, kind="spline" if fn is spline_kernel else "random-walk")
    assert np.array_equal(bank[21][3], a)


def test_bad_sizes_and_names():
    with pytest.raises(UsageError, match="odd"):
        spline_kernel(14)
    with pytest.raises(UsageError, match="unknown kernel generator"):
        make_kernel("gaussian", 13)


def test_check_kernel_rejects_bad_kernels():
    good = spline_kernel(13, seed=1)
    assert np.array_equal(check_kernel(good), good)
    with pytest.raises(DataLayoutError, match="sums to 2"):
        check_kernel(good * 2, "blur_k13.mat#1")
    with pytest.raises(DataLayoutError, match="odd square"):
        check_kernel(np.ones((4, 4)) / 16)
    bad = good.copy()
    bad[0, 0] = -0.5
    with pytest.raises(DataLayoutError, match="negative"):
        check_kernel(bad)
