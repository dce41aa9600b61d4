"""Image decoding with one stated conversion rule.

Every image enters the harness as uint8 RGB, ``(H, W, 3)``:
- EXIF orientation (tag 274, values 2-8) is applied on decode, as image viewers do, to every
  image on both sides (blurred/restored input and reference), so a JPEG shot in portrait and the
  same face saved "as displayed" in a PNG compare pixel for pixel; the tag is then dropped;
- 8-bit RGB: as is;
- grayscale (L) and grayscale+alpha: the gray value is replicated to R, G, B;
- RGBA / LA: alpha is dropped (no compositing: faces in these datasets are opaque);
- palette (P): expanded through the palette;
- 16-bit (I;16, 48-bit RGB): scaled to 8 bits with round(v / 257);
- anything else (CMYK, float TIFF, ...): converted by Pillow to RGB;
- animated / multi-page files (APNG, GIF, WebP, TIFF with several frames) and videos are
  *sequences*: :func:`frame_count` counts their frames and ``frame=i`` (:func:`decode`,
  :func:`read_image`) reads frame ``i`` (Pillow's ``seek``; a frame of a GIF is converted exactly
  as Pillow's ``convert("RGB")`` does). Read without ``frame``, a sequence gives its first frame
  with a note (the ``notes`` list) that the engine stores in the row's ``warnings``;
- GIF files carry at most 256 colours per frame: a note (:data:`GIF_NOTE`) says so, because the
  palette alone costs PSNR, more the closer the output is to the ground truth (docs/inputs.md);
- videos (:data:`VIDEO_SUFFIXES`) are decoded with OpenCV's FFmpeg backend (``cv2``, the
  ``opencv-python`` wheel that insightface already installs: FFmpeg ships inside the wheel, no
  system package or download), BGR converted to RGB, every frame under the pixel limit.
Zero-byte, truncated and corrupt files raise :class:`ImageError` naming the file.

Pixel limit (decompression bombs): an image with more than :func:`max_image_pixels` pixels
(width x height, read from the header before anything is decompressed) is refused with an
:class:`ImageError` -- a per-image failure, never a crash. The limit is Pillow's default
``PIL.Image.MAX_IMAGE_PIXELS`` (89,478,485 pixels, about 9459 x 9459) unless the environment
variable ``FACEBLUR_MAX_IMAGE_PIXELS`` sets another one (an integer; ``0`` or ``none`` turns the
check off). The same limit applies wherever this module reads a header (:func:`image_size`).
"""

from __future__ import annotations

import functools
import io
import os
import re
import struct
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DiskFullError, ImageError, UsageError, is_disk_full
from .files import NotRegularFileError, open_regular, read_regular

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".apng")
#: video containers read frame by frame (OpenCV's FFmpeg backend; see the module doc)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm")
#: every file a folder of restored outputs or references may hold
SEQUENCE_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
#: the note a GIF gets when it is scored (its palette limits PSNR)
GIF_NOTE = ("is a GIF: its palette (at most 256 colours per frame) lowers PSNR by itself, the more "
            "the better the output (measured ~0.1 dB at 23 dB, ~0.8 dB at 36 dB, ~3.5 dB at 42 dB); "
            "score PNG outputs for paper numbers")

#: environment variable overriding the pixel limit (see module doc)
MAX_PIXELS_ENV = "FACEBLUR_MAX_IMAGE_PIXELS"
#: Pillow's default ``MAX_IMAGE_PIXELS`` (the limit used when the variable is not set)
DEFAULT_MAX_PIXELS = 89_478_485
#: EXIF tag of the orientation and the values that swap width and height (90/270 degrees)
EXIF_ORIENTATION = 274
_SWAPS_AXES = (5, 6, 7, 8)

# Every image opened here is checked against max_image_pixels() before it is decoded and refused
# with an ImageError that says how to raise the limit; Pillow's warning for the same images
# would only repeat that on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def max_image_pixels() -> int | None:
    """Largest accepted width x height, in pixels; None when the check is turned off.

    ``$FACEBLUR_MAX_IMAGE_PIXELS`` (an integer, ``0``/``none`` = no limit), else Pillow's
    default of 89,478,485. Raises :class:`UsageError` for a value that is not a pixel count."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    if raw.lower() in ("0", "none", "off"):
        return None
    try:
        n = int(raw.replace("_", ""))
    except ValueError:
        n = -1
    if n < 0:
        raise UsageError(f"{MAX_PIXELS_ENV}={raw!r} is not a pixel count",
                         f"set {MAX_PIXELS_ENV} to an integer number of pixels (e.g. 200000000), "
                         "or 0 to turn the check off")
    return n


def _too_many_pixels(name: str | Path, limit: int, size: tuple[int, int] | None,
                     pillow_message: str = "") -> ImageError:
    if size:
        what = f"image is {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels"
    else:  # refused inside Image.open, which names the pixel count only in its message
        m = re.search(r"\((\d+) pixels\)", pillow_message)
        what = f"image has {int(m[1]):,} pixels" if m else f"image has more than {2 * limit:,} pixels"
    return ImageError(
        f"{name}: {what}, over the pixel limit of {limit:,} (decompression-bomb guard)",
        f"if the image is genuine, raise the limit: {MAX_PIXELS_ENV}=<pixels> "
        f"(0 turns the check off); the default is Pillow's {DEFAULT_MAX_PIXELS:,}")


def _open_checked(fp: IO[bytes], name: str | Path) -> Image.Image:
    """``Image.open`` (header only) with the pixel limit applied before any decompression."""
    limit = max_image_pixels()
    # Pillow applies its own module-wide limit inside open() (an error above twice it): keep it
    # equal to ours so that a raised limit is not refused there, and a lowered one is kept.
    Image.MAX_IMAGE_PIXELS = limit
    try:
        im = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(name, limit or DEFAULT_MAX_PIXELS, None, str(exc)) from None
    if limit is not None and im.size[0] * im.size[1] > limit:
        im.close()
        raise _too_many_pixels(name, limit, im.size)
    return im


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (KeyError, ValueError, TypeError, OSError, SyntaxError, struct.error):
        # a malformed EXIF block: the image is shown unrotated, as viewers do
        return 1


def decode(data: bytes, name: str | Path = "<bytes>", notes: list[str] | None = None,
           frame: int | None = None) -> np.ndarray:
    """Decode encoded image bytes to uint8 RGB ``(H, W, 3)`` under the module's conversion rules.

    ``frame``: the frame of a sequence to read (0-based; an error when the file has fewer).
    ``notes`` (when given) receives one line per thing the caller should know but that is not a
    failure: a sequence read without ``frame`` (only its first frame is used), a GIF."""
    if len(data) == 0:
        raise ImageError(f"{name}: zero-byte file", "re-export or re-download this image")
    try:
        with _open_checked(io.BytesIO(data), name) as im:
            n_frames = int(getattr(im, "n_frames", 1) or 1)
            if frame is not None and not 0 <= frame < n_frames:
                raise ImageError(f"{name}: has {n_frames} frame(s), frame {frame} was asked for",
                                 "pair sequences with the same number of frames")
            im.seek(frame or 0)
            im.load()
            if notes is not None and im.format == "GIF":
                notes.append(f"{Path(str(name)).name} {GIF_NOTE}")
            if n_frames > 1 and frame is None and notes is not None:
                notes.append(f"{Path(str(name)).name} is animated ({n_frames} frames): "
                             "scored on its first frame only")
            if _orientation(im) != 1:
                im = ImageOps.exif_transpose(im)
            return to_rgb8(im, name)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(
            f"{name}: cannot decode image ({stable_reason(exc)})",
            "the file is corrupt or truncated; re-export or re-download it",
        ) from None


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def stable_reason(exc: BaseException) -> str:
    """``str(exc)`` the same on every run: Pillow names the in-memory buffer it read
    (``<_io.BytesIO object at 0x7f…>``), an address that changes between runs; it becomes
    "the data" so a failed row's reason compares equal across runs and machines."""
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image format"
    return _OBJECT_REPR.sub("the data", str(exc)) or type(exc).__name__


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` as displayed (EXIF orientation applied), read from the header only.

    Raises :class:`ImageError` for unreadable files and for images over the pixel limit."""
    path = Path(path)
    try:
        with open_regular(path) as f, _open_checked(f, path) as im:
            w, h = im.size
            return (h, w) if _orientation(im) in _SWAPS_AXES else (w, h)
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found", "check the data root and the split layout") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable image ({stable_reason(exc)})",
                         "re-extract or re-download this file") from None


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


def read_image(path: str | Path, notes: list[str] | None = None, frame: int | None = None) -> np.ndarray:
    """Read and decode a file to uint8 RGB ``(H, W, 3)`` (``notes``, ``frame``: see :func:`decode`;
    a video gives its frame ``frame``, the first with a note when ``frame`` is None)."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        frames = read_video(path)
        if frame is None:
            if len(frames) > 1 and notes is not None:
                notes.append(f"{path.name} is a video ({len(frames)} frames): scored on its first frame only")
            frame = 0
        if not 0 <= frame < len(frames):
            raise ImageError(f"{path}: has {len(frames)} frame(s), frame {frame} was asked for",
                             "pair sequences with the same number of frames")
        return frames[frame]
    try:
        data = read_regular(path)  # a FIFO or device named like an image: an error, never a hang
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found", "check the data root and the split layout") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})" if not isinstance(exc, NotRegularFileError)
                         else str(exc), "replace it with an image file") from None
    return decode(data, path, notes, frame)


def frame_count(path: str | Path) -> int:
    """Number of frames of an image file (1 for a still image) or a video; :class:`ImageError`
    for an unreadable file."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return len(read_video(path))
    try:
        with open_regular(path) as f, _open_checked(f, path) as im:
            return int(getattr(im, "n_frames", 1) or 1)
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found", "check the folder and the pattern") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})", "re-export or re-download this file") from None


def read_video(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video file as uint8 RGB ``(H, W, 3)`` arrays (OpenCV's FFmpeg backend).

    The last decoded video is kept (keyed by path, size and modification time): scoring pairs
    frame ``i`` of two videos one sample at a time, and decoding the file once per frame would be
    quadratic. Raises :class:`ImageError` for a file OpenCV cannot open or a frame over the pixel
    limit."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found", "check the folder and the pattern") from None
    return list(_read_video(str(path), st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=2)
def _read_video(path: str, size: int, mtime_ns: int) -> tuple[np.ndarray, ...]:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise ImageError(f"{path}: cannot open video (OpenCV/FFmpeg)",
                             "re-encode it (e.g. ffmpeg -i in.mov -c:v libx264 out.mp4) or export PNG frames")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        limit = max_image_pixels()
        if limit is not None and w * h > limit:
            raise _too_many_pixels(path, limit, (w, h))
        frames = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(np.ascontiguousarray(bgr[..., ::-1]))
    finally:
        cap.release()
    if not frames:
        raise ImageError(f"{path}: no frame could be decoded", "the video is empty or its codec is not supported")
    for f in frames:
        f.flags.writeable = False  # shared through the cache
    return tuple(frames)


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write uint8 RGB as PNG atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # never leave a partial image behind (disk full, a signal)
        if is_disk_full(exc):
            raise DiskFullError(path, "writing a restored image") from None
        raise


def to_tensor01(images: list[np.ndarray]):
    """Stack uint8 ``(H, W, 3)`` arrays into a float32 ``(N, 3, H, W)`` tensor in [0, 1]."""
    import torch

    arr = np.stack(images).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)


def quantize(t) -> np.ndarray:
    """float [0,1] ``(N,3,H,W)`` tensor -> uint8 tensor, round-half-to-even like saving a PNG."""
    import torch

    return torch.clamp(torch.round(t * 255.0), 0, 255).to(torch.uint8)
