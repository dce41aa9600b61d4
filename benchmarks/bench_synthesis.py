"""Synthesis speed: MSPL-style test split (n_sharp x 80 kernels, 128x128) with the batched FFT path
vs the authors' per-image, per-channel ``scipy.signal.convolve`` (reflect pad + 'valid').

Both paths produce uint8 images in memory (blur + round/clip); PNG encoding is excluded from both
(it is the same cost for either). Sharp images are deterministic synthetic textures (smooth
random fields + sinusoids, 128x128 RGB) -- convolution cost does not depend on content.
Kernels: ``kernel_bank(10, seed)`` spline kernels, 8 sizes x 10 ids = 80 per face.

    python benchmarks/bench_synthesis.py                 # 240 sharp x 80 = 19,200 images
    python benchmarks/bench_synthesis.py --n-sharp 24    # smaller
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import signal

from faceblur_bench.data.degrade import blur_all_pairs, reflect_pad
from faceblur_bench.data.kernels import KERNEL_SIZES, kernel_bank


def textures(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 128, 128, 3)`` uint8 synthetic textures."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    out = np.empty((n, 128, 128, 3), np.uint8)
    for i in range(n):
        f = rng.uniform(1, 6, (3, 2))
        base = np.stack([0.5 + 0.3 * np.sin(2 * np.pi * (f[c, 0] * xx + f[c, 1] * yy)) for c in range(3)], -1)
        noise = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((128, 128, 3)), axes=(0, 1))
                              / (1 + np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.rfftfreq(128), indexing="ij"))[..., None] * 40),
                              s=(128, 128), axes=(0, 1))
        out[i] = np.clip((base + 0.5 * noise / noise.std() * 0.2) * 255, 0, 255).astype(np.uint8)
    return out


def reference(img_u8: np.ndarray, kernels: list[np.ndarray]) -> np.ndarray:
    """The authors' loop: float32 image, reflect pad, scipy.signal.convolve 'valid' per channel."""
    x = (img_u8 / 255.0).astype(np.float32)
    outs = []
    for k in kernels:
        p = (k.shape[0] - 1) // 2
        padded = reflect_pad(x, p)
        y = np.empty(x.shape, np.float32)
        for c in range(3):
            y[:, :, c] = signal.convolve(padded[:, :, c], k, mode="valid")
        outs.append((y * 255.0).round().clip(0, 255).astype(np.uint8))
    return np.stack(outs)


def batched(imgs_u8: np.ndarray, kernels: list[np.ndarray], dtype: torch.dtype, chunk: int) -> np.ndarray:
    """Project path: blur_all_pairs on chunks of faces, quantised in place -> uint8 (N, B, 3, H, W)."""
    out = np.empty((len(imgs_u8), len(kernels), 3, 128, 128), np.uint8)
    k = torch.stack([torch.nn.functional.pad(torch.from_numpy(q), [(27 - q.shape[0]) // 2] * 4) for q in kernels]).to(dtype)
    for s in range(0, len(imgs_u8), chunk):
        x = torch.from_numpy((imgs_u8[s:s + chunk] / 255.0).astype(np.float32)).permute(0, 3, 1, 2).to(dtype)
        y = blur_all_pairs(x, k).numpy()
        y *= 255.0
        np.rint(y, out=y)
        np.clip(y, 0, 255, out=y)
        out[s:s + chunk] = y
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-sharp", type=int, default=240, help="sharp faces (x 80 kernels each); default 240 = 19,200 images")
    ap.add_argument("--n-ref", type=int, default=2, help="sharp faces for the scipy reference subset (x 80)")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="batched path precision")
    ap.add_argument("--chunk", type=int, default=1, help="faces per batched call")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    bank = kernel_bank(10, KERNEL_SIZES, seed=args.seed)
    kernels = [bank[k][i] for k in KERNEL_SIZES for i in range(10)]
    imgs = textures(args.n_sharp, args.seed)
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.n_sharp} sharp x {len(kernels)} kernels, "
          f"batched dtype {args.dtype}")

    batched(imgs[:1], kernels, dtype, args.chunk)  # warm-up
    t0 = time.perf_counter()
    fast = batched(imgs, kernels, dtype, args.chunk)
    t_fast = time.perf_counter() - t0
    n_fast = fast.shape[0] * fast.shape[1]

    n_ref = min(args.n_ref, args.n_sharp)
    t0 = time.perf_counter()
    ref = np.stack([reference(imgs[i], kernels) for i in range(n_ref)])
    t_ref = time.perf_counter() - t0
    n_refimg = ref.shape[0] * ref.shape[1]

    diff = np.abs(fast[:n_ref].transpose(0, 1, 3, 4, 2).astype(int) - ref)
    ips_fast, ips_ref = n_fast / t_fast, n_refimg / t_ref
    print(f"batched FFT : {n_fast} images in {t_fast:.2f} s = {ips_fast:.1f} images/s")
    print(f"scipy (ref) : {n_refimg} images in {t_ref:.2f} s = {ips_ref:.1f} images/s")
    print(f"speed-up    : {ips_fast / ips_ref:.1f}x")
    print(f"agreement   : max |diff| {diff.max()} (uint8), identical pixels {np.mean(diff == 0) * 100:.4f} %")


if __name__ == "__main__":
    main()
