"""Motion-blur kernel generators: unit-sum, mass-centred ``K x K`` float64 kernels.

Two families (facts in PROTOCOLS.md §2; both implemented here from the published descriptions):

* :func:`spline_kernel` -- Chakrabarti-style (ECCV 2016) kernels: ``nc`` control points drawn
  uniformly on a ``psz x psz`` grid, a cubic not-a-knot spline through them (parameterised
  uniformly on [0, 1]), every distinct pixel the curve visits gets weight ``max(0, 0.5 n + 1)``
  with ``n ~ N(0, 1)``, normalised to sum 1, then shifted by whole pixels so that its rounded
  centroid sits on the centre pixel. The MSPL / Shen test kernels are credited to this generator.
* :func:`random_walk_kernel` -- Boracchi & Foi (2012) 2-D camera-shake trajectories: a random
  walk with inertia, a centripetal pull, Gaussian perturbations and rare abrupt shakes; the
  trajectory is scaled to fit the canvas, a random exposure fraction of it is splatted with
  bilinear weights onto the ``K x K`` grid, normalised to sum 1 and centred like the spline kernels.

Every kernel is a pure function of ``(seed, K, index)``: kernel ``i`` of size ``K`` is the same
whether a bank holds 10 or 2,250 kernels. "Mass centred" means the centroid lies within half a
pixel (per axis) of ``((K-1)/2, (K-1)/2)``; no mass falls outside the canvas (draws that would
need it are rejected and redrawn).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataLayoutError, UsageError

#: kernel sizes of the MSPL / Shen protocols
KERNEL_SIZES: tuple[int, ...] = (13, 15, 17, 19, 21, 23, 25, 27)
GENERATORS: tuple[str, ...] = ("spline", "random-walk")
_KIND_CODE = {"spline": 1, "random-walk": 2}


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise UsageError(f"kernel size {size!r} is not an odd integer >= 3",
                         "use odd sizes such as 13, 15, ..., 27")


def _rng(kind: str, seed: int, size: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), _KIND_CODE[kind], int(size), int(index)]))


def centroid(kernel: np.ndarray) -> tuple[float, float]:
    """(row, col) centre of mass of a non-negative 2-D kernel."""
    k = np.asarray(kernel, dtype=np.float64)
    total = k.sum()
    rows, cols = np.indices(k.shape)
    return float((k * rows).sum() / total), float((k * cols).sum() / total)


def center_kernel(patch: np.ndarray, size: int) -> np.ndarray | None:
    """Place ``patch`` (non-negative, any shape) on a ``size x size`` canvas so that its rounded
    centroid lands on the centre pixel; normalise to unit sum. ``None`` if it does not fit."""
    patch = np.asarray(patch, dtype=np.float64)
    total = patch.sum()
    if not np.isfinite(total) or total <= 0:
        return None
    cy, cx = centroid(patch)
    c = (size - 1) // 2
    oy, ox = c - int(np.floor(cy + 0.5)), c - int(np.floor(cx + 0.5))
    nz_r, nz_c = np.nonzero(patch)
    if nz_r.min() + oy < 0 or nz_r.max() + oy >= size or nz_c.min() + ox < 0 or nz_c.max() + ox >= size:
        return None
    out = np.zeros((size, size), dtype=np.float64)
    out[nz_r + oy, nz_c + ox] = patch[nz_r, nz_c]
    return out / out.sum()


def spline_kernel(size: int, seed: int = 0, index: int = 0, n_control: int = 6,
                  grid: int | None = None) -> np.ndarray:
    """One Chakrabarti-style spline motion kernel, ``(size, size)`` float64, unit sum, centred.

    ``grid`` is the control-point grid side ``psz``; by default it is drawn per attempt from
    ``[(size+1)//2, size]`` so that kernels of size K span most of the K x K canvas.
    """
    _check_size(size)
    from scipy.interpolate import CubicSpline  # here, not at import: slow to import

    rng = _rng("spline", seed, size, index)
    t_ctrl = np.linspace(0.0, 1.0, n_control)
    t_fine = np.linspace(0.0, 1.0, n_control * 1000)
    for _ in range(10_000):
        psz = int(grid) if grid else int(rng.integers((size + 1) // 2, size + 1))
        xs = rng.integers(1, psz + 1, n_control).astype(np.float64)
        ys = rng.integers(1, psz + 1, n_control).astype(np.float64)
        x = np.rint(np.clip(CubicSpline(t_ctrl, xs, bc_type="not-a-knot")(t_fine), 1, psz)).astype(np.int64)
        y = np.rint(np.clip(CubicSpline(t_ctrl, ys, bc_type="not-a-knot")(t_fine), 1, psz)).astype(np.int64)
        idx = np.unique((y - 1) * psz + (x - 1))
        w = np.maximum(0.0, rng.standard_normal(idx.size) * 0.5 + 1.0)
        if w.sum() <= 0:
            continue
        patch = np.zeros(psz * psz)
        patch[idx] = w
        k = center_kernel(patch.reshape(psz, psz), size)
        if k is not None:
            return k
    raise RuntimeError(f"could not draw a spline kernel of size {size} (seed {seed}, index {index})")


def _trajectory(rng: np.random.Generator, n_steps: int = 2000, length: float = 60.0) -> np.ndarray:
    """Boracchi-Foi style 2-D random-walk trajectory as complex positions, ``(n_steps,)``."""
    anxiety = 0.1 * rng.random()
    centripetal = 0.7 * rng.random()
    p_big_shake = 0.2 * rng.random()
    gaussian = 10.0 * rng.random()
    step = length / (n_steps - 1)
    v = np.exp(1j * 2 * np.pi * rng.random()) * step
    x = np.zeros(n_steps, dtype=np.complex128)
    u_shake = rng.random(n_steps)
    u_dir = rng.random(n_steps)
    g = rng.standard_normal((n_steps, 2))
    for t in range(n_steps - 1):
        shake = 2 * v * np.exp(1j * (np.pi + (u_dir[t] - 0.5))) if u_shake[t] < p_big_shake * anxiety else 0.0
        dv = shake + anxiety * (gaussian * (g[t, 0] + 1j * g[t, 1]) - centripetal * x[t]) * step
        v = v + dv
        v = v / (abs(v) + 1e-12) * step
        x[t + 1] = x[t] + v
    return x


def random_walk_kernel(size: int, seed: int = 0, index: int = 0, n_steps: int = 2000) -> np.ndarray:
    """One Boracchi-Foi random-walk motion kernel, ``(size, size)`` float64, unit sum, centred.

    The trajectory is scaled so its larger extent is a random fraction in [0.4, 1) of
    ``size - 1`` pixels; a random exposure fraction in [0.5, 1] of it (from the start) is splatted
    with bilinear weights.
    """
    _check_size(size)
    rng = _rng("random-walk", seed, size, index)
    for _ in range(1000):
        x = _trajectory(rng, n_steps)
        exposure = 0.5 + 0.5 * rng.random()
        x = x[: max(2, int(round(exposure * n_steps)))]
        extent = max(np.ptp(x.real), np.ptp(x.imag))
        if extent < 1e-6:
            continue
        span = (size - 1) * (0.4 + 0.6 * rng.random())
        x = (x - complex(x.real.min(), x.imag.min())) * (span / extent)
        # splat onto a canvas one pixel larger than the span, then centre
        side = int(np.ceil(span)) + 2
        canvas = np.zeros((side, side))
        c0, r0 = np.floor(x.real).astype(np.int64), np.floor(x.imag).astype(np.int64)
        fc, fr = x.real - c0, x.imag - r0
        for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            np.add.at(canvas, (r0 + dr, c0 + dc), w)
        canvas[canvas < 1e-6 * canvas.max()] = 0.0
        k = center_kernel(canvas, size)
        if k is not None:
            return k
    raise RuntimeError(f"could not draw a random-walk kernel of size {size} (seed {seed}, index {index})")


def make_kernel(kind: str, size: int, seed: int = 0, index: int = 0) -> np.ndarray:
    """Dispatch on ``kind`` ("spline" or "random-walk")."""
    if kind == "spline":
        return spline_kernel(size, seed, index)
    check_generator(kind)
    return random_walk_kernel(size, seed, index)


def check_generator(kind: str) -> None:
    """:class:`UsageError` (exit 2) unless ``kind`` is one of :data:`GENERATORS`."""
    if kind not in GENERATORS:
        raise UsageError(f"unknown kernel generator {kind!r}", f"use one of {', '.join(GENERATORS)}")


def kernel_bank(n_per_size: int, sizes: tuple[int, ...] = KERNEL_SIZES, seed: int = 0,
                kind: str = "spline") -> dict[int, np.ndarray]:
    """``{K: (n_per_size, K, K) float64}`` -- kernel ``i`` of size ``K`` is ``make_kernel(kind, K, seed, i)``."""
    return {int(k): np.stack([make_kernel(kind, int(k), seed, i) for i in range(n_per_size)]) for k in sizes}


def check_kernel(kernel: np.ndarray, name: str = "kernel", atol: float = 1e-3) -> np.ndarray:
    """Validate a blur kernel (2-D, odd square, finite, non-negative within ``atol``, unit sum
    within ``atol``); return it as float64. Raises :class:`DataLayoutError` naming ``name``."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise DataLayoutError(f"{name}: kernel has shape {k.shape}, expected an odd square K x K array",
                              "kernels must be K x K with K odd (13, 15, ..., 27)")
    if not np.all(np.isfinite(k)):
        raise DataLayoutError(f"{name}: kernel has non-finite values", "regenerate the kernel file")
    if k.min() < -atol:
        raise DataLayoutError(f"{name}: kernel has negative values (min {k.min():.4g})", "blur kernels are non-negative")
    s = float(k.sum())
    if abs(s - 1.0) > atol:
        raise DataLayoutError(f"{name}: kernel sums to {s:.6g}, expected 1 (within {atol})",
                              "normalise the kernel (k / k.sum()) or use the released kernel file")
    return k
