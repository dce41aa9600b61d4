"""KID: the unbiased polynomial-kernel MMD² against a direct float64 double sum, and the subset
estimate against torch-fidelity's implementation on the same random features."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from faceblur_bench.metrics.fid import (
    KID_SEED,
    kernel_inception_distance,
    polynomial_mmd2_unbiased,
)


def _direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimator written out term by term (Python floats, i != j)."""
    d = x.shape[1]

    def k(a, b):
        return (sum(float(p) * float(q) for p, q in zip(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2.0 * xy


def test_unbiased_mmd2_matches_direct_computation():
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 1.0, size=(7, 5))
    y = rng.normal(0.0, 1.3, size=(6, 5))  # unequal set sizes
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(_direct_mmd2(x, y), rel=1e-12)
    # unbiased: two draws of the same distribution can give a value below 0 (a biased V-statistic
    # never does); identical sets still give exactly 0 only for the biased form
    same = polynomial_mmd2_unbiased(x, x)
    assert same < 0 and same == pytest.approx(_direct_mmd2(x, x), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        polynomial_mmd2_unbiased(x[:1], y)


@pytest.mark.parametrize("n1, n2, size", [(60, 45, 30), (40, 40, 1000)])
def test_kid_agrees_with_torch_fidelity(n1, n2, size):
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    rng = np.random.default_rng(0)
    # pool3-like features: non-negative, 2048-d, two slightly different distributions
    f1 = np.abs(rng.normal(0.3, 0.4, size=(n1, 2048)))
    f2 = np.abs(rng.normal(0.35, 0.4, size=(n2, 2048)))
    mean, std, used = kernel_inception_distance(f1, f2, subsets=20, subset_size=size)
    assert used == min(size, n1, n2)
    ref = metric_kid.kid_features_to_metric(
        torch.from_numpy(f1), torch.from_numpy(f2), kid_subsets=20, kid_subset_size=used,
        kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1, rng_seed=KID_SEED, verbose=False)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-6)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-6, abs=1e-12)
    assert mean > 0  # the two distributions differ
    if used == n1 == n2:  # each subset is the whole set: no spread between subsets
        assert std <= 1e-9 * abs(mean)
    else:
        assert std > 0


def test_kid_is_deterministic_and_near_zero_for_one_distribution():
    rng = np.random.default_rng(1)
    a = np.abs(rng.normal(0.3, 0.4, size=(80, 64)))
    b = np.abs(rng.normal(0.3, 0.4, size=(80, 64)))
    c = np.abs(rng.normal(0.6, 0.4, size=(80, 64)))
    assert kernel_inception_distance(a, b, subsets=10, subset_size=50) == \
        kernel_inception_distance(a, b, subsets=10, subset_size=50)
    same, _, _ = kernel_inception_distance(a, b, subsets=10, subset_size=50)
    far, _, _ = kernel_inception_distance(a, c, subsets=10, subset_size=50)
    assert abs(same) < 0.05 * far
