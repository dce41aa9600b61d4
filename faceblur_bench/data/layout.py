"""Shared layout machinery: the "gt dir + blur dir" test-set format of MSPL and Shen et al.

Both publish a folder of sharp images ``{img}.png`` and a folder of blurred images
``{img}_ker{NN}_blur_k{K}.png`` (kernel id NN, kernel size K) -- see PROTOCOLS.md §1 and
``sujyQ/SAPPGAN:test/blur_gen.py``, ``likesum/unsupimg:face_deblur/test.py``. This module scans
such a pair of folders, checks names, counts and image sizes, and loads kernels stored either as
the authors' MATLAB files (``blur_k{K}.mat``, variable ``blurs_k{K}``, K x K x N) or as ours
(``blur_k{K}.npy``, N x K x K float64).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import DataLayoutError, ImageError
from .kernels import check_kernel

BLUR_NAME = re.compile(r"^(?P<img>.+)_ker(?P<kid>\d{2})_blur_k(?P<k>\d{1,2})\.png$")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
#: written by ``make-split`` beside the gt/blur folders; its image count replaces the release count
MADE_MANIFEST = "make_split.json"


def made_count(folder: Path) -> int | None:
    """Number of sharp images recorded by ``make-split`` in ``folder/make_split.json`` (None if absent)."""
    import json

    p = folder / MADE_MANIFEST
    if not p.is_file():
        return None
    try:
        return len(json.loads(p.read_text())["images"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataLayoutError(f"{p}: unreadable make-split manifest ({exc})", "re-run make-split into an empty folder") from None


def require_utf8_name(path: Path) -> Path:
    """Refuse, naming it, a path whose name is not valid UTF-8 (Python keeps such bytes as lone
    surrogates, which cannot be hashed into a manifest, written to JSON rows or to a table)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise DataLayoutError(f"{shown}: file name is not valid UTF-8",
                              "rename the file (e.g. `convmv -f latin1 -t utf8`); names must be UTF-8 "
                              "to be stored in manifests and results") from None
    return path


def safe_join(root: Path, rel: str | Path) -> Path:
    """``root / rel`` refusing absolute paths and ``..`` escapes (manifests and file lists)."""
    relp = Path(rel)
    if relp.is_absolute() or ".." in relp.parts:
        raise DataLayoutError(f"path entry {str(rel)!r} escapes the data root {root}",
                              "manifest and list entries must be relative paths inside the split directory")
    out = root / relp
    try:
        out.resolve().relative_to(root.resolve())
    except ValueError:
        raise DataLayoutError(f"path entry {str(rel)!r} resolves outside {root} (symlink?)",
                              "keep the split's files inside its directory") from None
    return out


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` as displayed, read from the file header (no decoding); unreadable
    files and images over the pixel limit (:func:`faceblur_bench.imageio.max_image_pixels`) raise
    :class:`DataLayoutError`."""
    from ..imageio import image_size as header_size

    try:
        return header_size(path)
    except ImageError as exc:
        raise DataLayoutError(exc.message, exc.hint) from None


def check_size(path: Path, expected: tuple[int, int] | None) -> None:
    """Raise :class:`DataLayoutError` unless the image at ``path`` is ``expected`` = (width, height)."""
    if expected is None:
        return
    size = image_size(path)
    if size != expected:
        raise DataLayoutError(
            f"{path}: image is {size[0]}x{size[1]}, expected {expected[0]}x{expected[1]}",
            "use the released files unchanged (faces are square crops of the published size)")


@dataclass(frozen=True)
class PairedItem:
    """One blurred file of a gt/blur folder pair."""

    image: str
    kernel_id: int
    kernel_size: int
    blurred: Path
    sharp: Path | None


def scan_paired(gt_dir: Path, blur_dir: Path, kernel_ids: Iterable[int], sizes: Iterable[int],
                image_px: int | None = 128, allow_partial: bool = False,
                expected_images: int | None = None) -> tuple[list[PairedItem], list[str]]:
    """Scan ``gt_dir/{img}.png`` and ``blur_dir/{img}_ker{NN}_blur_k{K}.png``.

    Every sharp image must have one blurred file per (kernel id, size) in the given sets, every
    blurred file must parse and have its sharp image, sizes must be ``image_px`` square.
    Problems raise :class:`DataLayoutError` naming the file, unless ``allow_partial`` -- then
    missing files are skipped and returned as messages (second element), while files that are
    actually wrong (bad names, bad sizes) still raise. Returns items sorted by (img, size, id).
    """
    kernel_ids, sizes = sorted(set(kernel_ids)), sorted(set(sizes))
    for d in (gt_dir, blur_dir):
        if not d.is_dir():
            raise DataLayoutError(f"folder {d} is missing", f"expected a sibling pair {gt_dir.name}/ and {blur_dir.name}/")
    issues: list[str] = []
    expect_px = (image_px, image_px) if image_px else None
    gts: dict[str, Path] = {}
    for p in sorted(gt_dir.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_EXTS:
            raise DataLayoutError(f"{p}: unexpected file in the ground-truth folder", "expected {name}.png images only")
        if p.stem in gts:
            raise DataLayoutError(f"{p}: two ground-truth files named {p.stem!r}", "keep one file per image name")
        check_size(p, expect_px)
        gts[p.stem] = p
    if not gts:
        raise DataLayoutError(f"{gt_dir}: no ground-truth images", "expected {name}.png files")
    items: list[PairedItem] = []
    seen: set[tuple[str, int, int]] = set()
    for p in sorted(blur_dir.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        m = BLUR_NAME.match(p.name)
        if not m:
            raise DataLayoutError(f"{p}: unexpected file name",
                                  "blurred files are named {img}_ker{NN}_blur_k{K}.png (NN two digits, K the kernel size)")
        img, kid, k = m["img"], int(m["kid"]), int(m["k"])
        if kid not in kernel_ids or k not in sizes:
            raise DataLayoutError(f"{p}: kernel id {kid:02d} / size {k} not in this release",
                                  f"expected ids {kernel_ids[0]:02d}..{kernel_ids[-1]:02d} and sizes {sizes}")
        sharp = gts.get(img)
        if sharp is None:
            msg = f"{p}: no ground truth {gt_dir / (img + '.png')}"
            if not allow_partial:
                raise DataLayoutError(msg, "restore the missing ground truth, or pass allow_partial=True (--allow-partial)")
            issues.append(msg)
            continue
        check_size(p, expect_px)
        items.append(PairedItem(img, kid, k, p, sharp))
        seen.add((img, kid, k))
    for img in gts:
        missing = [(kid, k) for k in sizes for kid in kernel_ids if (img, kid, k) not in seen]
        if missing:
            kid, k = missing[0]
            msg = (f"{blur_dir / f'{img}_ker{kid:02d}_blur_k{k}.png'} is missing "
                   f"({len(missing)} of {len(kernel_ids) * len(sizes)} blurred files of {img!r} missing)")
            if not allow_partial:
                raise DataLayoutError(msg, "re-extract the release, or pass allow_partial=True (--allow-partial)")
            issues.append(msg)
    if expected_images is not None and len(gts) != expected_images:
        msg = f"{gt_dir}: {len(gts)} ground-truth images, the release has {expected_images}"
        if not allow_partial:
            raise DataLayoutError(msg, "re-extract the release, or pass allow_partial=True (--allow-partial)")
        issues.append(msg)
    items.sort(key=lambda it: (it.image, it.kernel_size, it.kernel_id))
    return items, issues


def load_kernel_npy(path: Path, size: int) -> np.ndarray:
    """An ``(N, size, size)`` float64 kernel array from ``path`` (``np.load``, no pickle).

    Raises :class:`DataLayoutError` naming the file for anything else: an object array (which
    would need pickle, so is never loaded), a non-numeric dtype, a wrong shape, a damaged file."""
    hint = "regenerate the kernel file (`faceblur-bench data kernels`, or make-split)"
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused, no code runs
        what = "holds an object array (it would need pickle)" if "pickle" in str(exc) else f"is not an .npy array ({exc})"
        raise DataLayoutError(f"{path}: kernel file {what}", hint) from None
    except (OSError, EOFError) as exc:
        raise DataLayoutError(f"{path}: cannot read kernel file ({exc})", hint) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        kind = type(arr).__name__ if not isinstance(arr, np.ndarray) else f"dtype {arr.dtype}"
        raise DataLayoutError(f"{path}: kernel file holds {kind}, expected float64 numbers", hint)
    if arr.ndim != 3 or arr.shape[1:] != (size, size):
        raise DataLayoutError(f"{path}: kernel array has shape {arr.shape}, expected (N, {size}, {size})", hint)
    return arr.astype(np.float64, copy=False)


class KernelStore:
    """Kernels of a test set, loaded lazily per size from ``blur_k{K}.mat`` or ``blur_k{K}.npy``
    in ``directory``; ``get(K, kernel_id)`` (1-based id) returns a checked K x K float64 kernel."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        self._cache: dict[int, np.ndarray | None] = {}

    def available(self) -> bool:
        return self.directory is not None and self.directory.is_dir() and any(
            p.name.startswith("blur_k") for p in self.directory.iterdir())

    def _load(self, size: int) -> np.ndarray | None:
        if size in self._cache:
            return self._cache[size]
        arr = None
        if self.directory is not None:
            npy = self.directory / f"blur_k{size}.npy"
            mat = self.directory / f"blur_k{size}.mat"
            if npy.is_file():
                arr = load_kernel_npy(npy, size)
            elif mat.is_file():
                import scipy.io

                try:
                    data = scipy.io.loadmat(mat)
                except Exception as exc:
                    raise DataLayoutError(f"{mat}: cannot read MATLAB file ({exc})", "re-download test250kernels") from None
                var = f"blurs_k{size}"
                if var not in data:
                    raise DataLayoutError(f"{mat}: variable {var!r} missing (has {sorted(k for k in data if not k.startswith('__'))})",
                                          "use the released test250kernels files")
                raw = np.asarray(data[var], dtype=np.float64)
                if raw.ndim != 3 or raw.shape[:2] != (size, size):
                    raise DataLayoutError(f"{mat}: {var} has shape {raw.shape}, expected ({size}, {size}, N)",
                                          "use the released test250kernels files")
                arr = np.moveaxis(raw, 2, 0)
        self._cache[size] = arr
        return arr

    def get(self, size: int, kernel_id: int) -> np.ndarray | None:
        arr = self._load(int(size))
        if arr is None:
            return None
        if not 1 <= kernel_id <= arr.shape[0]:
            raise DataLayoutError(f"{self.directory}/blur_k{size}: kernel id {kernel_id} out of range 1..{arr.shape[0]}",
                                  "the kernel file does not match the blurred file names")
        return check_kernel(arr[kernel_id - 1], f"{self.directory}/blur_k{size} #{kernel_id}")


def first_dir(candidates: Iterable[Path]) -> Path | None:
    """The first existing directory among ``candidates``."""
    for c in candidates:
        if c.is_dir():
            return c
    return None
