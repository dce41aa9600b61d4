"""``make-split``: synthesise an MSPL- or Shen-protocol test split from the user's own sharp faces.

The output is exactly the layout the ``mspl-*`` / ``shen-*`` loaders read, so
``--out`` can be used as (or inside) a ``--data-root``:

* ``protocol="mspl"``: ``<out>/Test_data_{variant}/Test_data_{Sub}/{Sub}_gt/{img}.png`` and
  ``{Sub}_blur/{img}_ker{NN}_blur_k{K}.png`` for the subset's 10 kernel ids x 8 sizes; kernels in
  ``<out>/test250kernels/blur_k{K}.npy`` (30 x K x K; ids 01-10 CelebA, 11-20 CelebA-HQ,
  21-30 FFHQ); no noise by default (as the released MSPL files). ``variant="random"`` first
  applies :func:`~faceblur_bench.data.degrade.random_rotate_crop` to each sharp face (documented
  parameters; the authors did not publish theirs) and stores the result as the ground truth.
* ``protocol="shen"``: ``<out>/Test_data_{Helen|CelebA}/final_{X}_gt/{img}.png`` and
  ``final_{X}_blur/{img}_ker{01..10}_blur_k{K}.png``; kernels in ``Test_data_X/kernels/``;
  noise σ = 0.01 by default (Shen preset).

Kernels come from :func:`~faceblur_bench.data.kernels.kernel_bank` with the given seed; noise of
blurred image (face f, size K, id NN) is drawn from ``numpy.random.default_rng(noise_seed)`` with
the seed recorded in ``make_split.json`` next to the gt/blur folders (also: protocol, seed, generator, σ, sha256 of
every written file; no timestamps or absolute paths, so the same inputs + seed give
byte-identical output, on any x86-64 CPU). Blurring uses the sparse direct engine
(:mod:`~faceblur_bench.data.direct`) in float64 on the float32-rounded image (the batched FFT
path for dense kernels or ``device != "cpu"``). Its values differ from the authors' per-image
``scipy.signal.convolve`` by ~4e-8 -- the error of *their* call, which transforms the float32
image in single precision -- so ~1e-5 of the pixels, those that close to a rounding tie, come
out one grey level apart; :func:`~faceblur_bench.data.degrade.blur_image` reproduces their bits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import SEED_MAX, DataLayoutError, ImageError, UsageError, check_range
from ..files import check_inside, describe_skipped, folder_entries
from ..imageio import IMAGE_SUFFIXES, read_image, write_png
from .degrade import (
    ROTATE_CROP_DEFAULTS,
    blur_all_pairs,
    gaussian_noise,
    quantize_uint8,
    random_rotate_crop,
)
from .direct import DirectBlur, direct_ok
from .kernels import KERNEL_SIZES, kernel_bank
from .layout import MADE_MANIFEST, require_utf8_name
from ..results import check_write_inside
from .make_split_args import NOISE_PRESETS, PROTOCOLS, SHEN_SUBSETS, check_protocol, resolve_args
from .mspl import MSPL_SUBSETS

__all__ = ["PROTOCOLS", "check_protocol", "make_split", "read_sharp_dir"]


def read_sharp_dir(sharp_dir: str | Path, size: int = 128,
                   skipped: list[dict[str, str]] | None = None,
                   not_files: list[dict[str, str]] | None = None) -> list[tuple[str, np.ndarray]]:
    """Sorted ``[(stem, uint8 (size, size, 3))]`` of the images in ``sharp_dir``; every image must
    be ``size x size`` (:class:`DataLayoutError` naming the file otherwise).

    A file that cannot be decoded (corrupt, truncated, over the pixel limit of
    :func:`~faceblur_bench.imageio.max_image_pixels`) raises :class:`ImageError`, unless
    ``skipped`` is a list: then it is left out and ``{"file": name, "reason": ...}`` is appended
    (a per-image failure). A file name that is not valid UTF-8 is refused by name.

    Entries that are not regular files (FIFOs, sockets, symlinked folders, links leading out of
    the folder to anything but a file: :func:`~faceblur_bench.files.folder_entries`) are never
    read; they are appended to ``not_files`` when it is a list, else named in a warning."""
    d = Path(sharp_dir)
    if not d.is_dir():
        raise UsageError(f"--sharp {d} is not a directory", "pass a folder of 128x128 face images")
    out: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    files, odd = folder_entries(d, IMAGE_SUFFIXES)
    if not_files is not None:
        not_files.extend(odd)
    elif odd:
        warnings.warn(describe_skipped(d, odd), stacklevel=2)
    for p in files:
        require_utf8_name(p)
        check_inside(d, p, "--sharp image")  # a link out of the folder is never read
        if p.stem in seen:
            raise DataLayoutError(f"{p}: two images named {p.stem!r}", "image names (without extension) must be unique")
        if "_ker" in p.stem:
            raise DataLayoutError(f"{p}: name contains '_ker'", "rename it; '_ker' separates image and kernel in blurred names")
        try:
            img = read_image(p)
        except ImageError as exc:
            if skipped is None:
                raise
            # the reason without the folder: make_split.json holds no absolute paths
            skipped.append({"file": p.name, "reason": exc.message.replace(str(p), p.name)})
            continue
        if img.shape[:2] != (size, size):
            raise DataLayoutError(f"{p}: image is {img.shape[1]}x{img.shape[0]}, expected {size}x{size}",
                                  f"crop the faces square and resize them to {size}x{size} first")
        seen.add(p.stem)
        out.append((p.stem, img))
    if not out:
        raise UsageError(f"--sharp {d} holds no usable images"
                         + (f" ({len(skipped)} unreadable, e.g. {skipped[0]['reason']})" if skipped else ""),
                         f"expected {', '.join(IMAGE_SUFFIXES)} files")
    return out


def _noise_seed(seed: int, face: int, size: int, kid: int) -> int:
    return int(np.random.SeedSequence([int(seed), 11, face, size, kid]).generate_state(1)[0])


def blur_face_all(img_u8: np.ndarray, kernels: list[np.ndarray], device: str | torch.device = "cpu",
                  quantize: bool = True, blur: DirectBlur | None = None) -> np.ndarray:
    """Blur one uint8 ``(H, W, 3)`` face with every kernel: ``(B, H, W, 3)`` uint8 (``quantize``)
    or float64 in [0, 1] (unclipped, for adding noise first).

    On CPU the sparse direct engine (:mod:`~faceblur_bench.data.direct`, float64; pass a prepared
    ``blur`` to reuse its taps) when the kernels are sparse; otherwise, and on other devices, the
    batched FFT path in float64.
    """
    if str(device) == "cpu" and (blur is not None or direct_ok(kernels)):
        blur = blur or DirectBlur(kernels, *img_u8.shape, precision="float64")
        return blur(img_u8[None], quantize=quantize)[0]
    x = torch.from_numpy((img_u8 / 255.0).astype(np.float32).astype(np.float64)).permute(2, 0, 1)[None]
    y = blur_all_pairs(x.to(device), kernels)[0].permute(0, 2, 3, 1).cpu().numpy()
    return quantize_uint8(y) if quantize else y


def _write_blurred(path: Path, y: np.ndarray, sigma: float, noise_seed: int | None) -> None:
    """One blurred file: uint8 as is, or float + reproducible noise, quantised."""
    if sigma > 0:
        y = quantize_uint8(y + gaussian_noise(y.shape, sigma, noise_seed))
    write_png(path, y)


STAGE_PREFIX = ".make-split-"
#: inside a staging folder: "<host> <pid>" of the make-split writing it
STAGE_OWNER = ".owner"


def _remove_dead_stages(out: Path) -> None:
    """Delete staging folders that a killed make-split (SIGKILL, power loss) left in ``out``:
    those whose owner process, on this host, no longer exists. A folder of a live run, of
    another host, or without an owner record (older versions) is left alone."""
    for stage in out.glob(STAGE_PREFIX + "*"):
        try:
            host, pid = (stage / STAGE_OWNER).read_text().split()
            if host != socket.gethostname():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(stage, ignore_errors=True)
        except (OSError, ValueError):  # no owner file, not ours to judge, or a live process
            continue


def make_split(sharp_dir: str | Path, protocol: str, out: str | Path, seed: int = 0, subset: str | None = None,
               variant: str = "center", noise: str | float | None = None, kernel_kind: str = "spline",
               device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write a split (see module doc); returns the manifest written to ``make_split.json`` beside the gt/blur folders.

    All-or-nothing: files are written to a hidden staging folder inside ``out`` and moved into
    place only when every file is written; on any error (bad input, interrupt) ``out`` is left
    as it was. Names (protocol, subset, variant) and ``device`` are checked before any work.
    """
    subset, sigma = resolve_args(protocol, subset, variant, noise, kernel_kind)
    check_range("--seed", seed, 0, SEED_MAX, integer=True)
    device = str(resolve_device(device))
    out = Path(out)
    real_out, real_sharp = out.resolve(), Path(sharp_dir).resolve()
    if real_out == real_sharp or real_sharp in real_out.parents:
        raise UsageError(f"--out {out} is {'--sharp itself' if real_out == real_sharp else 'inside --sharp'} "
                         f"({sharp_dir}): the split would be written into its input",
                         "pass an --out folder outside the folder of sharp faces")
    skipped: list[dict[str, str]] = []
    not_files: list[dict[str, str]] = []
    faces = read_sharp_dir(sharp_dir, skipped=skipped, not_files=not_files)
    final_out = out
    if final_out.exists() and not final_out.is_dir():
        raise UsageError(f"--out {final_out} is a file", "choose a directory")
    existed = final_out.exists()
    final_out.mkdir(parents=True, exist_ok=True)
    _remove_dead_stages(final_out)
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=final_out))
    (stage / STAGE_OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    try:
        manifest = _make_split_into(faces, protocol, final_out, stage, seed, subset, variant, sigma,
                                    kernel_kind, device, progress, skipped, not_files)
        for q in sorted(stage.rglob("*")):  # same file system: each move is a rename
            if q.is_file() and q.name != STAGE_OWNER:
                dest = final_out / q.relative_to(stage)
                check_write_inside(final_out, dest)  # a link planted in --out is not followed
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(q, dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if not existed:
            shutil.rmtree(final_out, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return manifest


def _make_split_into(faces: list[tuple[str, np.ndarray]], protocol: str, final_out: Path, out: Path,
                     seed: int, subset: str, variant: str, sigma: float,
                     kernel_kind: str, device: str,
                     progress: Callable[[int, int], None] | None,
                     skipped: list[dict[str, str]],
                     not_files: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The work of :func:`make_split`, writing under the staging folder ``out`` (checks against
    the final folder ``final_out``; names and σ resolved by :func:`resolve_args`)."""
    if protocol == "mspl":
        folder, ids = MSPL_SUBSETS[subset]
        top = out / f"Test_data_{variant}" / f"Test_data_{folder}"
        gt_dir, blur_dir, kdir = top / f"{folder}_gt", top / f"{folder}_blur", out / "test250kernels"
        n_bank = 30
    else:
        folder, ids = SHEN_SUBSETS[subset], range(1, 11)
        top = out / f"Test_data_{folder}"
        gt_dir, blur_dir, kdir = top / f"final_{folder}_gt", top / f"final_{folder}_blur", top / "kernels"
        n_bank = 10
    final_gt = final_out / gt_dir.relative_to(out)
    if final_gt.exists() and any(final_gt.iterdir()):
        raise UsageError(f"{final_gt} already holds images", "choose an empty --out directory")
    bank = kernel_bank(n_bank, KERNEL_SIZES, seed=seed, kind=kernel_kind)
    kdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for k, arr in bank.items():
        p = kdir / f"blur_k{k}.npy"
        np.save(p, arr)
        written.append(p)
    pairs = [(k, kid) for k in KERNEL_SIZES for kid in ids]
    kernels = [bank[k][kid - 1] for k, kid in pairs]
    records: list[dict[str, Any]] = []
    use_direct = str(device) == "cpu" and direct_ok(kernels)
    direct = DirectBlur(kernels, *faces[0][1].shape, precision="float64") if use_direct else None
    # PNG encoding (zlib, GIL released) dominates once blurring is fast: encode on every core
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for fi, (name, img) in enumerate(faces):
            rec: dict[str, Any] = {"image": name}
            if protocol == "mspl" and variant == "random":
                img, params = random_rotate_crop(img, seed=int(np.random.SeedSequence([seed, 13, fi]).generate_state(1)[0]),
                                                 **ROTATE_CROP_DEFAULTS)
                rec["rotate_crop"] = params
            p = gt_dir / f"{name}.png"
            write_png(p, img)
            written.append(p)
            blurred = blur_face_all(img, kernels, device, quantize=sigma == 0, blur=direct)
            seeds = {}
            jobs = []
            for j, (k, kid) in enumerate(pairs):
                ns = None
                if sigma > 0:
                    ns = _noise_seed(seed, fi, k, kid)
                    seeds[f"ker{kid:02d}_blur_k{k}"] = ns
                p = blur_dir / f"{name}_ker{kid:02d}_blur_k{k}.png"
                jobs.append(pool.submit(_write_blurred, p, blurred[j], sigma, ns))
                written.append(p)
            for job in jobs:
                job.result()
            if seeds:
                rec["noise_seeds"] = seeds
            records.append(rec)
            if progress:
                progress(fi + 1, len(faces))
    files = {q.relative_to(out).as_posix(): hashlib.sha256(q.read_bytes()).hexdigest() for q in sorted(written)}
    manifest = {
        # never the official release: tables and the leaderboard show runs on it apart
        "synthesised": True, "origin": "faceblur-bench make-split (the user's sharp faces)",
        "protocol": protocol, "subset": subset, "variant": variant if protocol == "mspl" else None,
        "seed": int(seed), "kernel_generator": kernel_kind, "kernel_ids": [int(i) for i in ids],
        "kernel_sizes": list(KERNEL_SIZES), "noise_sigma": sigma,
        "noise_preset": next((n for n, v in NOISE_PRESETS.items() if v == sigma), None),
        "rotate_crop": ROTATE_CROP_DEFAULTS if protocol == "mspl" and variant == "random" else None,
        "blur": "reflect pad (K-1)/2 + 'valid' convolution per channel ("
                + ("sparse direct" if use_direct else "batched FFT") + ", float64), round/clip uint8",
        "images": records, "files": files,
    }
    if skipped:
        manifest["skipped"] = skipped
    if not_files:  # entries of --sharp that are not regular files: never read
        manifest["skipped_not_files"] = not_files
    (top / MADE_MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest
