"""Sparse direct convolution: the CPU engine for synthesising blurred test splits.

Motion-blur kernels are sparse: a 27 x 27 spline or random-walk kernel has ~35-65 non-zero taps
out of 729 (:func:`kernel_taps` reports it). A true convolution that visits only those taps costs
``nnz`` multiply-adds per output value, far less than one inverse FFT per blurred image (which is
what bounds any FFT path: each of the 80 blurred versions of a face needs its own inverse
transform). This module compiles that loop with numba:

* the sharp image is reflect-padded once per face by the largest half-size ``P`` (numpy
  ``'reflect'``; a smaller kernel's padding is the centre crop of it), kept as interleaved
  ``H x W x C`` rows so that one row of all channels is one contiguous vector;
* each kernel becomes a list of ``(offset, weight)`` taps, flipped (true convolution, as
  ``scipy.signal.convolve``), zero taps dropped, padded to a multiple of 4 with zero-weight taps;
* for every (face, kernel) pair and output row, taps are accumulated **in a fixed order** with
  separate multiply and add (no fused multiply-add, no reassociation), so the bytes written are
  the same on every x86-64 CPU whatever SIMD width numba picks (tested: SSE2, AVX2, AVX-512
  builds give identical output);
* the uint8 variant folds the 255 scale into the weights and writes
  ``rint(clip(255 y, 0, 255))`` (half to even, as numpy's ``round``) straight into the output.

``precision="float64"`` accumulates in double (error ~1e-16); ``"float32"`` is ~2x faster (error
~3e-7). The authors' ``scipy.signal.convolve`` of a float32 image with a float64 ``.mat`` kernel
itself carries ~4e-8 of error (scipy transforms the float32 image in single precision), so
against their uint8 files either precision is identical except on ~1e-5 of the pixels, those
lying that close to a rounding tie, which come out one grey level apart (the same holds for the
FFT path); only the same scipy call (:func:`~faceblur_bench.data.degrade.blur_image`) gives their
exact bits.

Kernels with many taps (dense Gaussian kernels, say) are faster through the FFT path;
:func:`blur_all_pairs_u8` picks the engine by tap count (:data:`DIRECT_MAX_TAPS`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UsageError

#: above this many non-zero taps in a kernel the batched FFT path is used (measured crossover on the
#: 2-core development CPU, 27x27 kernels: ~500 taps -- 50 taps 11,300 vs 890 images/s, 729 taps
#: 1,270 vs 2,040)
DIRECT_MAX_TAPS = 400
PRECISIONS = ("float32", "float64")

_KERNEL: list = []


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _kernel():
    """The numba kernel (compiled on first use, then cached on disk by numba)."""
    if not _KERNEL:
        try:
            from ._direct_kernels import direct_blur
        except ImportError as e:  # pragma: no cover - numba is a declared dependency
            raise UsageError(f"the direct blur engine needs numba ({e})", "pip install numba, or use engine='fft'") from e
        _KERNEL.append(direct_blur)
    return _KERNEL[0]


def _check_kernel(i: int, k: np.ndarray) -> np.ndarray:
    k = np.asarray(k)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise UsageError(f"kernel {i} has shape {k.shape}", "kernels must be K x K with K odd")
    if not np.all(np.isfinite(k)):
        raise UsageError(f"kernel {i} holds NaN or inf values", "regenerate or re-read the kernel file")
    return k.astype(np.float64, copy=False)


def count_taps(kernels: Sequence[np.ndarray]) -> list[int]:
    """Non-zero taps of each kernel."""
    return [int(np.count_nonzero(_check_kernel(i, k))) for i, k in enumerate(kernels)]


def kernel_taps(kernels: Sequence[np.ndarray], pad: int, row_stride: int, channels: int, scale: float,
                dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(starts, offsets, weights)`` of the flipped, non-zero taps of each kernel, as offsets into
    an image reflect-padded by ``pad`` and flattened with ``row_stride`` values per row. Kernel
    ``b``'s taps are ``starts[b]:starts[b+1]`` (a multiple of 4, filled with zero-weight taps)."""
    starts, offs, ws = [0], [], []
    for i, k in enumerate(kernels):
        k = _check_kernel(i, k)
        ksz = k.shape[0]
        o = pad - (ksz - 1) // 2
        if o < 0:
            raise UsageError(f"kernel {i} ({ksz}x{ksz}) needs more padding than {pad}", "internal: pad too small")
        ii, jj = np.nonzero(k)
        # true convolution: out[r, c] = sum k[i, j] * padded[r + K-1-i, c + K-1-j]
        offs.extend(((o + ksz - 1 - ii) * row_stride + channels * (o + ksz - 1 - jj)).tolist())
        ws.extend((k[ii, jj] * scale).tolist())
        while len(offs) % 4:
            offs.append(0)
            ws.append(0.0)
        starts.append(len(offs))
    return np.asarray(starts, np.int64), np.asarray(offs, np.int64), np.asarray(ws, dtype)


class DirectBlur:
    """Every image with every kernel by sparse direct convolution (see module doc).

    ``DirectBlur(kernels, height, width, channels, precision)(images_u8)`` returns
    ``(N, B, H, W, C)``: uint8 ``clip(rint(255 y))`` by default, or the float blur in [0, 1]
    (unclipped, in ``precision``) with ``quantize=False`` (for adding noise before quantising).
    The taps are built once, so one instance serves every chunk of a split; pass ``out=`` to
    reuse a buffer (fresh memory costs page faults that are a large share of the time here).
    """

    def __init__(self, kernels: Sequence[np.ndarray], height: int, width: int, channels: int = 3,
                 precision: str = "float32") -> None:
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
        if not len(kernels):
            raise UsageError("no kernels given", "pass at least one kernel")
        ks = [_check_kernel(i, k) for i, k in enumerate(kernels)]
        self.pad = max((k.shape[0] - 1) // 2 for k in ks)
        if self.pad >= min(height, width):
            raise UsageError(f"kernel size {2 * self.pad + 1} too large for a {width}x{height} image",
                             "reflect padding needs K <= 2*min(H, W) - 1")
        self.shape = (int(height), int(width), int(channels))
        self.dtype = np.dtype(precision)
        self.n_kernels = len(ks)
        self.row_stride = (width + 2 * self.pad) * channels
        self._taps = {q: kernel_taps(ks, self.pad, self.row_stride, channels, s, self.dtype)
                      for q, s in (("u8", 255.0), ("float", 1.0))}
        self.taps = [int(n) for n in count_taps(ks)]
        self._lims = np.array([0.0, 255.0, 1.5 * 2.0 ** (np.finfo(self.dtype).nmant)], self.dtype)

    def padded(self, images_u8: np.ndarray) -> np.ndarray:
        """``(N, rows * row_stride)``: float32(u / 255) as the authors' script, reflect-padded, in ``precision``."""
        x = (images_u8 / 255.0).astype(np.float32)
        p = self.pad
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        return np.ascontiguousarray(x, dtype=self.dtype).reshape(len(x), -1)

    def __call__(self, images_u8: np.ndarray, quantize: bool = True, out: np.ndarray | None = None) -> np.ndarray:
        imgs = np.asarray(images_u8)
        if imgs.ndim == 3:
            imgs = imgs[None]
        if imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[1:] != self.shape:
            raise UsageError(f"images have shape {imgs.shape} / dtype {imgs.dtype}",
                             f"expected uint8 (N, {self.shape[0]}, {self.shape[1]}, {self.shape[2]})")
        h, w, c = self.shape
        n = len(imgs)
        want = np.dtype(np.uint8) if quantize else self.dtype
        shape = (n, self.n_kernels, h, w, c)
        if out is None:
            out = np.empty(shape, want)
        elif out.shape != shape or out.dtype != want or not out.flags.c_contiguous:
            raise UsageError(f"out buffer is {out.shape} {out.dtype}", f"expected a C-contiguous {shape} {want} array")
        starts, offs, ws = self._taps["u8" if quantize else "float"]
        flat = out.reshape(n, self.n_kernels, h * w * c)
        empty_u8, empty_f = np.empty((0, 0, 0), np.uint8), np.empty((0, 0, 0), self.dtype)
        _kernel()(self.padded(imgs), self.row_stride, h, w * c, starts, offs, ws, self._lims,
                  flat if quantize else empty_u8, empty_f if quantize else flat)
        return out


def direct_ok(kernels: Sequence[np.ndarray]) -> bool:
    """Whether the direct engine is available and faster than FFT for these kernels."""
    return numba_available() and max(count_taps(kernels)) <= DIRECT_MAX_TAPS


def blur_all_pairs_u8(images_u8: np.ndarray, kernels: Sequence[np.ndarray], precision: str = "float32",
                      engine: str = "auto") -> np.ndarray:
    """uint8 ``(N, H, W, C)`` faces x B kernels -> uint8 ``(N, B, H, W, C)`` blurred files' pixels.

    ``engine``: ``"direct"`` (this module), ``"fft"`` (:func:`~faceblur_bench.data.degrade.blur_all_pairs`
    then ``quantize_tensor``), or ``"auto"``: direct when numba is installed and no kernel has
    more than :data:`DIRECT_MAX_TAPS` non-zero taps.
    """
    imgs = np.asarray(images_u8)
    if imgs.ndim != 4 or imgs.dtype != np.uint8:
        raise UsageError(f"images have shape {imgs.shape} / dtype {imgs.dtype}", "expected uint8 (N, H, W, C)")
    if engine not in ("auto", "direct", "fft"):
        raise UsageError(f"unknown blur engine {engine!r}", "use auto, direct or fft")
    if engine == "auto":
        engine = "direct" if direct_ok(kernels) else "fft"
    if engine == "direct":
        return DirectBlur(kernels, *imgs.shape[1:], precision=precision)(imgs)
    import torch

    from .degrade import blur_all_pairs, quantize_tensor

    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    x = torch.from_numpy((imgs / 255.0).astype(np.float32)).permute(0, 3, 1, 2).to(getattr(torch, precision))
    y = blur_all_pairs(x, [np.asarray(k) for k in kernels])
    return quantize_tensor(y).permute(0, 1, 3, 4, 2).contiguous().numpy()
