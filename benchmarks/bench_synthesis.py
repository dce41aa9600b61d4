"""Synthesis speed: an MSPL-style test split (n_sharp x 80 kernels, 128x128) made with the project's
batched engine vs the authors' per-image, per-channel ``scipy.signal.convolve`` loop
(``sujyQ/SAPPGAN:test/blur_gen.py``: float32 image, float64 kernel, reflect pad, 'valid',
``round().clip()`` to uint8), timed in the same run.

Both sides produce the uint8 pixels of every blurred file in memory; PNG encoding is excluded
from both (it is the same cost for either; its rate is printed for context). The project side is
:class:`faceblur_bench.data.direct.DirectBlur` (sparse direct convolution, numba) fed chunks of
faces into one reused output buffer, as ``make-split`` does; the batched FFT engine
(``blur_all_pairs`` + quantisation) is timed too. numba compilation is excluded (it happens once
per machine, then comes from numba's disk cache; its time is printed). Sharp images are
deterministic synthetic textures (convolution cost does not depend on content); kernels are
``kernel_bank(10, seed)`` spline kernels, 8 sizes x 10 ids = 80 per face.

    python benchmarks/bench_synthesis.py                 # 240 sharp x 80 = 19,200 images
    python benchmarks/bench_synthesis.py --n-sharp 24    # smaller
    python benchmarks/bench_synthesis.py --json benchmarks/results/synthesis_cpu.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import signal

from faceblur_bench.data.degrade import blur_all_pairs, quantize_tensor, reflect_pad
from faceblur_bench.data.direct import DirectBlur
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


def run_direct(imgs: np.ndarray, blur: DirectBlur, buf: np.ndarray, keep: int) -> tuple[float, np.ndarray]:
    """All faces through ``blur`` in chunks into the reused buffer ``buf`` (chunk, B, H, W, C);
    returns (seconds, first ``keep`` faces' output)."""
    chunk = len(buf)
    kept = []
    t0 = time.perf_counter()
    for s in range(0, len(imgs), chunk):
        part = imgs[s:s + chunk]
        out = blur(part, out=buf[:len(part)])
        if s < keep:
            kept.append(out[:keep - s].copy())
    return time.perf_counter() - t0, np.concatenate(kept)[:keep]


def run_fft(imgs: np.ndarray, kernels: list[np.ndarray], chunk: int) -> float:
    """The batched FFT engine (float32), quantised, in chunks of faces."""
    t0 = time.perf_counter()
    for s in range(0, len(imgs), chunk):
        x = torch.from_numpy((imgs[s:s + chunk] / 255.0).astype(np.float32)).permute(0, 3, 1, 2)
        quantize_tensor(blur_all_pairs(x, kernels))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-sharp", type=int, default=240, help="sharp faces (x 80 kernels each); default 240 = 19,200 images")
    ap.add_argument("--n-ref", type=int, default=6, help="sharp faces for the scipy reference subset (x 80)")
    ap.add_argument("--chunk", type=int, default=8, help="faces per batched call")
    ap.add_argument("--no-fft", action="store_true", help="skip timing the FFT engine")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    args = ap.parse_args()

    bank = kernel_bank(10, KERNEL_SIZES, seed=args.seed)
    kernels = [bank[k][i] for k in KERNEL_SIZES for i in range(10)]
    imgs = textures(args.n_sharp, args.seed)
    n_img = args.n_sharp * len(kernels)
    n_ref = min(args.n_ref, args.n_sharp)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"{args.n_sharp} sharp x {len(kernels)} kernels = {n_img} images of 128x128")

    t0 = time.perf_counter()
    ref = np.stack([reference(imgs[i], kernels) for i in range(n_ref)])
    t_ref = time.perf_counter() - t0
    ips_ref = ref.shape[0] * ref.shape[1] / t_ref

    rows: dict[str, dict] = {}
    for precision in ("float32", "float64"):
        blur = DirectBlur(kernels, 128, 128, 3, precision=precision)
        buf = np.empty((args.chunk, len(kernels), 128, 128, 3), np.uint8)
        t0 = time.perf_counter()
        blur(imgs[:args.chunk], out=buf[:len(imgs[:args.chunk])])  # compile (or load numba's cache), touch the buffer
        t_compile = time.perf_counter() - t0
        t, first = run_direct(imgs, blur, buf, n_ref)
        diff = np.abs(first.astype(int) - ref)
        rows[f"direct {precision}"] = {"seconds": t, "images_per_s": n_img / t, "speedup": n_img / t / ips_ref,
                                       "first_call_s": t_compile, "max_abs_diff": int(diff.max()),
                                       "identical_pixels": float(np.mean(diff == 0))}
    if not args.no_fft:
        k32 = [k.astype(np.float32) for k in kernels]
        run_fft(imgs[:1], k32, 1)
        t = run_fft(imgs, k32, args.chunk)
        rows["fft float32"] = {"seconds": t, "images_per_s": n_img / t, "speedup": n_img / t / ips_ref}

    t0 = time.perf_counter()
    for i in range(min(200, ref.shape[1])):
        Image.fromarray(ref[0, i]).save(io.BytesIO(), format="PNG")
    png_ips = min(200, ref.shape[1]) / (time.perf_counter() - t0)

    print(f"{'engine':<22}{'images':>8}{'seconds':>10}{'images/s':>11}{'ratio':>8}  agreement with the authors' loop")
    print(f"{'scipy loop (authors)':<22}{ref.shape[0] * ref.shape[1]:>8}{t_ref:>10.2f}{ips_ref:>11.1f}{1:>7.1f}x")
    for name, r in rows.items():
        agree = (f"max |diff| {r['max_abs_diff']}, identical {r['identical_pixels'] * 100:.4f} %"
                 if "max_abs_diff" in r else "")
        print(f"{name:<22}{n_img:>8}{r['seconds']:>10.2f}{r['images_per_s']:>11.1f}{r['speedup']:>7.1f}x  {agree}")
    print(f"(PNG encoding alone, in neither figure: {png_ips:.0f} images/s; "
          f"warm-up call (numba compile or cache load + buffer) {rows['direct float32']['first_call_s']:.2f} s, excluded)")
    print(f"speed-up of the project's engine (direct float32) over the authors' loop: "
          f"{rows['direct float32']['speedup']:.1f}x")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "n_sharp": args.n_sharp, "n_kernels": len(kernels), "n_images": n_img, "cpus": os.cpu_count(),
            "torch": torch.__version__, "reference": {"images": int(ref.shape[0] * ref.shape[1]), "seconds": t_ref,
                                                      "images_per_s": ips_ref},
            "engines": rows, "png_encode_images_per_s": png_ips,
            "note": "pixels in memory, PNG encoding excluded from both sides",
        }, indent=2))


if __name__ == "__main__":
    main()
