"""Image decoding with one stated conversion rule.

Every image enters the harness as uint8 RGB, ``(H, W, 3)``:
- 8-bit RGB: as is;
- grayscale (L) and grayscale+alpha: the gray value is replicated to R, G, B;
- RGBA / LA: alpha is dropped (no compositing: faces in these datasets are opaque);
- palette (P): expanded through the palette;
- 16-bit (I;16, 48-bit RGB): scaled to 8 bits with round(v / 257);
- anything else (CMYK, float TIFF, ...): converted by Pillow to RGB.
Zero-byte, truncated and corrupt files raise :class:`ImageError` naming the file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def decode(data: bytes, name: str | Path = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to uint8 RGB ``(H, W, 3)``."""
    if len(data) == 0:
        raise ImageError(f"{name}: zero-byte file", "re-export or re-download this image")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return to_rgb8(im, name)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"{name}: cannot decode image ({exc})",
            "the file is corrupt or truncated; re-export or re-download it",
        ) from None


def to_rgb8(im: Image.Image, name: str | Path = "<image>") -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        if mode == "I" and a.max() <= 255:
            g = a
        else:
            g = a / 257.0
        g = np.clip(np.round(g), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "RGB":
        arr = np.asarray(im)
        if arr.dtype != np.uint8:  # 48-bit RGB reaches Pillow as RGB in some versions
            arr = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(arr)
    if mode in ("L", "LA", "1"):
        g = np.asarray(im.convert("L"))
        return np.repeat(g[..., None], 3, axis=2)
    # RGBA (alpha dropped), P (palette), CMYK, YCbCr, F, ...
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 if a.max() <= 1.0 else 1.0
        g = np.clip(np.round(a * scale), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def read_image(path: str | Path) -> np.ndarray:
    """Read and decode a file to uint8 RGB ``(H, W, 3)``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found", "check the data root and the split layout") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc})") from None
    return decode(data, path)


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write uint8 RGB as PNG atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")
    tmp.replace(path)


def to_tensor01(images: list[np.ndarray]):
    """Stack uint8 ``(H, W, 3)`` arrays into a float32 ``(N, 3, H, W)`` tensor in [0, 1]."""
    import torch

    arr = np.stack(images).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)


def quantize(t) -> "np.ndarray":
    """float [0,1] ``(N,3,H,W)`` tensor -> uint8 tensor, round-half-to-even like saving a PNG."""
    import torch

    return torch.clamp(torch.round(t * 255.0), 0, 255).to(torch.uint8)
