"""A tiny synthetic MSPL-layout training folder for smoke runs, tests and speed benchmarks.

Images are smooth random colour fields with an elliptical "face" and label maps that mark it
(it is not face data: never report quality numbers from it). Kernel files are format-faithful
MSPL ``blur_k{K}.mat`` files (variable ``blurs_k{K}``, ``K x K x N``) holding random
unit-sum line kernels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _line_kernel(k: int, rng: np.random.Generator) -> np.ndarray:
    ker = np.zeros((k, k))
    c = (k - 1) / 2
    theta = rng.uniform(0, np.pi)
    length = rng.uniform(1, c)
    for t in np.linspace(-length, length, 4 * k):
        y, x = int(round(c + t * np.sin(theta))), int(round(c + t * np.cos(theta)))
        ker[y, x] += 1.0
    return ker / ker.sum()


def write_kernel_mat(path: str | Path, size: int, n: int, seed: int = 0) -> Path:
    """Write ``blur_k{size}.mat`` with ``n`` random unit-sum kernels as ``blurs_k{size}`` (K x K x n)."""
    from scipy.io import savemat

    rng = np.random.default_rng([seed, size])
    arr = np.stack([_line_kernel(size, rng) for _ in range(n)], axis=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {f"blurs_k{size}": arr})
    return path


def make_layout(root: str | Path, n_images: int = 8, size: int = 64, labels: str = "cls19",
                kernel_sizes: tuple[int, ...] = (13, 15), kernels_per_size: int = 4, seed: int = 0) -> Path:
    """Create ``train_img/``, ``train_label/`` (cls19) or ``train_label_cls4/`` (cls4) and
    ``trainkernels/`` under ``root``; returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    img_dir = root / "train_img"
    lab_dir = root / ("train_label" if labels == "cls19" else "train_label_cls4")
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n_images):
        base = rng.uniform(0, 255, 3)
        grad = rng.uniform(-80, 80, (2, 3))
        img = base + yy[..., None] * grad[0] + xx[..., None] * grad[1]
        cy, cx, ry, rx = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.35), rng.uniform(0.15, 0.3)
        face = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        eyes = face & (np.abs(yy - (cy - ry / 3)) < 0.04) & (np.abs(np.abs(xx - cx) - rx / 2) < 0.05)
        img[face] = rng.uniform(120, 230, 3)
        img[eyes] = rng.uniform(0, 60, 3)
        img += rng.normal(0, 6, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(img_dir / f"{i:05d}.png")
        lab = np.zeros((size, size), np.uint8)
        lab[face] = 1
        lab[eyes] = 4 if labels == "cls19" else 3
        lab[(yy < cy - ry) & ~face] = 13 if labels == "cls19" else 2
        Image.fromarray(lab, mode="L").save(lab_dir / f"{i:05d}.png")
    for k in kernel_sizes:
        write_kernel_mat(root / "trainkernels" / f"blur_k{k}.mat", k, kernels_per_size, seed)
    return root
