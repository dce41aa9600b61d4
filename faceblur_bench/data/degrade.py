"""Degradations: uniform blur, noise, quantisation, frame averaging, x8 downsampling, rotation/crop.

Blur model (MSPL test sets, ``sujyQ/SAPPGAN:test/blur_gen.py``; PROTOCOLS.md §1): the sharp
image in [0, 1] is reflect-padded by ``(K-1)/2`` (numpy ``'reflect'``: the edge pixel is not
repeated) and convolved per channel with the K x K kernel (a true convolution, i.e. the kernel
is flipped) keeping the ``'valid'`` part, so the output has the input's size. Noise presets
(σ on the [0, 1] scale) are in :data:`NOISE_PRESETS`. Files are written as
``round(255 x).clip(0, 255)`` uint8.

Three implementations of the same blur:

* :func:`blur_image` -- the reference, per image and channel with ``scipy.signal.convolve``
  exactly as the authors' script does (float32 image, float64 kernel);
* :func:`blur_batch` / :func:`blur_all_pairs` -- batched FFT convolution on any torch device
  (``torch.fft``; on CPU, for plain float tensors without autograd, scipy's multi-threaded
  pocketfft in cache-sized chunks, which is ~2.5x faster than torch's CPU FFT on this
  machine), for synthesis at scale and for on-the-fly blurring in trainers. They agree with the
  reference to ~1e-6 in float32 and ~1e-12 in float64 (tested);
* :class:`~faceblur_bench.data.direct.DirectBlur` / :func:`~faceblur_bench.data.direct.blur_all_pairs_u8`
  -- sparse direct convolution compiled with numba, straight to uint8: the CPU engine of
  ``make-split`` and of ``benchmarks/bench_synthesis.py`` (motion-blur kernels have few non-zero
  taps, so this beats one inverse FFT per blurred image).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError


# --------------------------------------------------------------------------------------------
# reference (CPU, per image) path
# --------------------------------------------------------------------------------------------
def reflect_pad(img: np.ndarray, pad: int) -> np.ndarray:
    """numpy ``'reflect'`` padding of the two spatial axes of an ``(H, W)`` or ``(H, W, C)`` array."""
    widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, widths, mode="reflect")


def blur_float(img01: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Reference blur of a float ``(H, W, 3)`` image in [0, 1]: reflect pad + ``signal.convolve``
    'valid' per channel. Returns float64 ``(H, W, 3)`` (unclipped, unquantised)."""
    k = np.asarray(kernel)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise UsageError(f"kernel shape {k.shape} is not odd square", "pass a K x K kernel with K odd")
    from scipy import signal  # here, not at import: scipy.signal costs seconds to import

    pad = (k.shape[0] - 1) // 2
    padded = reflect_pad(img01, pad)
    out = np.empty(img01.shape, dtype=np.float64)
    for c in range(img01.shape[2]):
        out[:, :, c] = signal.convolve(padded[:, :, c], k, mode="valid")
    return out


def quantize_uint8(img01: np.ndarray) -> np.ndarray:
    """``round(255 x).clip(0, 255)`` as uint8 (numpy rounds half to even, as the authors' script)."""
    return np.clip(np.round(np.asarray(img01) * 255.0), 0, 255).astype(np.uint8)


def gaussian_noise(shape: tuple[int, ...], sigma: float, seed: int) -> np.ndarray:
    """Reproducible N(0, σ²) noise, float64, from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(int(seed)).standard_normal(shape) * float(sigma)


def blur_image(sharp: np.ndarray, kernel: np.ndarray, sigma: float = 0.0,
               noise_seed: int | None = None) -> np.ndarray:
    """Blur a uint8 ``(H, W, 3)`` image the way the MSPL test files were made, optionally adding
    ``gaussian_noise(shape, sigma, noise_seed)`` before quantisation. Returns uint8 ``(H, W, 3)``."""
    x = (np.asarray(sharp) / 255.0).astype(np.float32)
    y = blur_float(x, kernel)
    if sigma > 0:
        if noise_seed is None:
            raise UsageError("noise requested without a noise seed", "pass noise_seed so the image can be reproduced")
        y = y + gaussian_noise(y.shape, sigma, noise_seed)
    return quantize_uint8(y)


# --------------------------------------------------------------------------------------------
# batched torch path (any device)
# --------------------------------------------------------------------------------------------
def _fast_len(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3, 5 (fast FFT length)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def stack_kernels(kernels: torch.Tensor | Sequence[np.ndarray | torch.Tensor],
                  dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """``(N, K, K)`` tensor from a tensor or a list of odd square kernels of possibly different
    sizes (smaller ones are zero-padded around their centre, which leaves the blur unchanged)."""
    if isinstance(kernels, torch.Tensor):
        if kernels.ndim != 3 or kernels.shape[1] != kernels.shape[2] or kernels.shape[1] % 2 == 0:
            raise UsageError(f"kernels have shape {tuple(kernels.shape)}", "expected (N, K, K) with K odd")
        return kernels.to(dtype=dtype, device=device)
    ks = [torch.as_tensor(np.asarray(k) if not isinstance(k, torch.Tensor) else k) for k in kernels]
    if not ks:
        raise UsageError("no kernels given", "pass at least one kernel")
    kmax = max(int(k.shape[-1]) for k in ks)
    out = torch.zeros((len(ks), kmax, kmax), dtype=dtype)
    for i, k in enumerate(ks):
        if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
            raise UsageError(f"kernel {i} has shape {tuple(k.shape)}", "kernels must be K x K with K odd")
        o = (kmax - k.shape[0]) // 2
        out[i, o:o + k.shape[0], o:o + k.shape[0]] = k.to(dtype)
    return out.to(device)


#: kernels per inverse-FFT call on CPU (keeps the working set in cache)
CPU_CHUNK = 4


def _blur_fft_cpu(x: torch.Tensor, kernels: torch.Tensor, pairs: bool, lh: int, lw: int, h: int, w: int,
                  ksz: int) -> torch.Tensor:
    """CPU branch: scipy's pocketfft (multi-threaded, faster than torch's CPU FFT here), chunked."""
    import os

    import scipy.fft as sfft

    workers = os.cpu_count() or 1
    xn, kn = x.numpy(), kernels.numpy()
    fx = sfft.rfft2(xn, s=(lh, lw), workers=workers)  # (N, C, lh, lw//2+1)
    fk = sfft.rfft2(kn, s=(lh, lw), workers=workers)  # (B, lh, lw//2+1)
    n, c = xn.shape[:2]
    b = kn.shape[0]
    sl = (Ellipsis, slice(ksz - 1, ksz - 1 + h), slice(ksz - 1, ksz - 1 + w))
    if pairs:
        out = np.empty((n, b, c, h, w), dtype=xn.dtype)
        for i in range(n):
            for j in range(0, b, CPU_CHUNK):
                prod = fx[i][None] * fk[j:j + CPU_CHUNK, None]
                out[i, j:j + CPU_CHUNK] = sfft.irfft2(prod, s=(lh, lw), workers=workers)[sl]
    else:
        out = np.empty((n, c, h, w), dtype=xn.dtype)
        for j in range(0, n, CPU_CHUNK):
            prod = fx[j:j + CPU_CHUNK] * fk[j:j + CPU_CHUNK, None]
            out[j:j + CPU_CHUNK] = sfft.irfft2(prod, s=(lh, lw), workers=workers)[sl]
    return torch.from_numpy(out)


def _blur_fft(images: torch.Tensor, kernels: torch.Tensor, pairs: bool) -> torch.Tensor:
    n, c, h, w = images.shape
    ksz = kernels.shape[-1]
    pad = (ksz - 1) // 2
    if pad >= min(h, w):
        raise UsageError(f"kernel size {ksz} too large for a {h}x{w} image", "reflect padding needs K <= 2*min(H, W) - 1")
    x = F.pad(images, (pad, pad, pad, pad), mode="reflect") if pad else images
    lh, lw = _fast_len(h + ksz - 1), _fast_len(w + ksz - 1)
    if x.device.type == "cpu" and not x.requires_grad and x.dtype in (torch.float32, torch.float64):
        return _blur_fft_cpu(x.contiguous(), kernels.contiguous(), pairs, lh, lw, h, w, ksz)
    fx = torch.fft.rfft2(x, s=(lh, lw))  # (N, C, lh, lw//2+1)
    fk = torch.fft.rfft2(kernels, s=(lh, lw))  # (B, lh, lw//2+1)
    if pairs:  # every image with every kernel -> (N, B, C, ...)
        prod = fx[:, None] * fk[None, :, None]
    else:
        prod = fx * fk[:, None]
    full = torch.fft.irfft2(prod, s=(lh, lw))
    return full[..., ksz - 1:ksz - 1 + h, ksz - 1:ksz - 1 + w]


def blur_batch(images: torch.Tensor, kernels: torch.Tensor | Sequence[np.ndarray | torch.Tensor],
               noise_sigma: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Blur image ``i`` with kernel ``i`` on the images' device (batched FFT convolution).

    images:  ``(N, C, H, W)`` float tensor (any range; [0, 1] or [-1, 1] both fine -- the blur is linear)
    kernels: ``(N, K, K)`` tensor or a list of N odd square kernels (sizes may differ)
    noise_sigma: std of added Gaussian noise, in the images' units (0 = none)
    generator: torch generator on the images' device for the noise (reproducibility)
    Returns ``(N, C, H, W)`` in the images' dtype, unclipped and unquantised. Equals
    :func:`blur_float` per image (reflect pad, true convolution, 'valid').
    """
    if images.ndim != 4:
        raise UsageError(f"images have shape {tuple(images.shape)}", "expected (N, C, H, W)")
    if not images.is_floating_point():
        raise UsageError(f"images have dtype {images.dtype}", "convert to float first (e.g. x.float() / 255)")
    k = stack_kernels(kernels, dtype=images.dtype, device=images.device)
    if k.shape[0] != images.shape[0]:
        raise UsageError(f"{images.shape[0]} images but {k.shape[0]} kernels", "pass one kernel per image")
    out = _blur_fft(images, k, pairs=False)
    if noise_sigma > 0:
        out = out + noise_sigma * torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
    return out.contiguous()


def blur_all_pairs(images: torch.Tensor, kernels: torch.Tensor | Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
    """Blur every image with every kernel: ``(N, C, H, W)`` x ``(B, K, K)`` -> ``(N, B, C, H, W)``.

    Each image and each kernel is transformed once, which is what makes synthesising a test split
    (each face x 80 kernels) fast. Same numbers as :func:`blur_batch`.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise UsageError(f"images have shape {tuple(images.shape)} / dtype {images.dtype}",
                         "expected a float (N, C, H, W) tensor")
    k = stack_kernels(kernels, dtype=images.dtype, device=images.device)
    return _blur_fft(images, k, pairs=True).contiguous()


def quantize_tensor(x01: torch.Tensor) -> torch.Tensor:
    """float [0, 1] tensor -> uint8 tensor, ``round(255 x).clamp(0, 255)`` (half to even)."""
    return torch.clamp(torch.round(x01 * 255.0), 0, 255).to(torch.uint8)


# --------------------------------------------------------------------------------------------
# other degradations
# --------------------------------------------------------------------------------------------
def average_frames(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Frame-averaging blur (300VW / CFMD-GAN, PROTOCOLS.md §1): mean of the uint8 frames,
    truncated (not rounded) to uint8, no camera response curve. frames: list of ``(H, W, 3)`` uint8."""
    if len(frames) == 0:
        raise UsageError("no frames to average", "pass at least one frame")
    shapes = {np.asarray(f).shape for f in frames}
    if len(shapes) != 1:
        raise UsageError(f"frames have different shapes {sorted(shapes)}", "crop all frames of a window to one size")
    acc = np.zeros(next(iter(shapes)), dtype=np.float64)
    for f in frames:
        acc += np.asarray(f, dtype=np.float64)
    return np.floor(acc / len(frames)).clip(0, 255).astype(np.uint8)


def downsample(img: np.ndarray, factor: int = 8) -> np.ndarray:
    """Bicubic (PIL, antialiased) downsampling of a uint8 ``(H, W, 3)`` image by ``factor``
    (x8 for the joint SR + deblur protocol: 256 -> 32). H and W must be multiples of ``factor``."""
    from PIL import Image

    h, w = img.shape[:2]
    if h % factor or w % factor:
        raise UsageError(f"image {w}x{h} is not a multiple of {factor}", f"crop it to a multiple of {factor} first")
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((w // factor, h // factor), Image.BICUBIC))


#: documented parameters of the random rotation/crop variant (the MSPL authors did not publish theirs)
ROTATE_CROP_DEFAULTS = {"max_angle_deg": 10.0, "min_crop_fraction": 0.85, "out_size": 128}


def random_rotate_crop(img: np.ndarray, seed: int, max_angle_deg: float = 10.0,
                       min_crop_fraction: float = 0.85, out_size: int = 128) -> tuple[np.ndarray, dict]:
    """A 'random' face variant: rotate by an angle ~ U(-max_angle, max_angle) degrees about the
    centre (bicubic, reflected borders avoided by cropping inside the rotated image), take a
    square crop of side ~ U(min_crop_fraction, 1) x the largest inscribed square at a uniform
    position inside it, resize to ``out_size`` (bicubic). Returns ``(uint8 (out, out, 3), params)``
    with the drawn ``angle``, ``side``, ``top``, ``left``. Parameters are our choice and recorded."""
    from PIL import Image

    rng = np.random.default_rng(int(seed))
    h, w = img.shape[:2]
    angle = float(rng.uniform(-max_angle_deg, max_angle_deg))
    rot = Image.fromarray(np.ascontiguousarray(img)).rotate(angle, resample=Image.BICUBIC, expand=False)
    a = math.radians(abs(angle))
    # largest axis-aligned square fully inside the rotated square image (side s0 = min(h, w))
    s0 = min(h, w)
    inscribed = s0 / (math.cos(a) + math.sin(a))
    side = int(math.floor(inscribed * rng.uniform(min_crop_fraction, 1.0)))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    lo_y = int(math.ceil(cy - inscribed / 2.0))
    lo_x = int(math.ceil(cx - inscribed / 2.0))
    room = max(0, int(math.floor(inscribed)) - side)
    top = lo_y + int(rng.integers(0, room + 1))
    left = lo_x + int(rng.integers(0, room + 1))
    crop = rot.crop((left, top, left + side, top + side)).resize((out_size, out_size), Image.BICUBIC)
    return np.asarray(crop), {"angle": angle, "side": side, "top": top, "left": left}
