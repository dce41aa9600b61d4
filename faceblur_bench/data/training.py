"""Training data of the MSPL family (MSPL-GAN, SAPPGAN, DFPGnet): the MSPL training layout, label
maps, on-the-fly blur, and a tiny synthetic layout for smoke runs and tests.

Layout under ``--data-root`` (MSPL-GAN README downloads, SAPPGAN loader names)::

    train_img/{name}.{png,jpg}          sharp faces (CelebAMask-HQ)
    train_label/{name}.png              19-class CelebAMask-HQ label maps (value = class), or
    train_label_cls4/{name}.png         MSPL's 4-class maps (palette PNG, index = class)
    trainkernels/blur_k{K}.mat          optional: MSPL training kernels, variable blurs_k{K} (K x K x N)
    validationset/gt/{name}.png         optional: validation pairs; blurred files are named
    validationset/blur/{name}_kerNN_blur_kKK.png

Label sets (``data.labels``):

- ``cls19``: CelebAMask-HQ values 0 background, 1 skin, 2 nose, 3 eye_g, 4 l_eye, 5 r_eye,
  6 l_brow, 7 r_brow, 8 l_ear, 9 r_ear, 10 mouth, 11 u_lip, 12 l_lip, 13 hair, 14 hat,
  15 ear_r, 16 neck_l, 17 neck, 18 cloth (from ``train_label/``);
- ``cls4``: MSPL's maps as stored (4 classes; the order 0 background, 1 skin, 2 hair,
  3 inner parts is an inference from the MSPL paper) (from ``train_label_cls4/``);
- ``cls19to4``: 19-class maps merged into the 4 classes by :data:`CLS19_TO_CLS4` — this
  project's mapping: background ← {background, hat, earring, necklace, neck, cloth},
  skin ← {skin, ears}, hair ← {hair}, inner parts ← {nose, glasses, eyes, brows, mouth, lips};
- ``auto``: ``train_label/`` if present, else ``train_label_cls4/``.

Per-sample augmentation (CPU, in the loader): resize the image to its label map's size when
they differ, random square crop ``crop`` (the shorter side when the image is smaller),
resize to ``image_size`` (bicubic image, nearest label), horizontal flip (p = 0.5), rotation
by a uniform angle in ``[-rotate_deg, rotate_deg]`` (bicubic / nearest, zero fill), optional
colour jitter. Every random draw comes from ``numpy.random.default_rng((seed, epoch, index))``,
so a sample's augmentation does not depend on worker count, and ``--resume`` replays it.

Blur (on the training device, per batch, :class:`Degrader`): one of the kernel sizes (plus a
"no blur" option when ``no_blur_option``) is drawn uniformly per batch, a random kernel of that
size per image, reflect-pad + true convolution (``faceblur_bench.data.degrade.blur_batch``)
on [0, 1] images, then Gaussian noise ``noise_sigma`` (no clipping), as MSPL-GAN's trainer.
Kernels come from MSPL's ``.mat`` files or from the project's generators
(``faceblur_bench.data.kernels``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance

from ..errors import DataLayoutError, DataNotFoundError
from ..imageio import IMAGE_SUFFIXES, read_image

CLS19_TO_CLS4: tuple[int, ...] = (
    0,  # background
    1,  # skin
    3,  # nose
    3,  # eye_g
    3, 3,  # l_eye, r_eye
    3, 3,  # l_brow, r_brow
    1, 1,  # l_ear, r_ear
    3,  # mouth
    3, 3,  # u_lip, l_lip
    2,  # hair
    0,  # hat
    0,  # ear_r (earring)
    0,  # neck_l (necklace)
    0,  # neck
    0,  # cloth
)
N_CLASSES = {"cls19": 19, "cls4": 4, "cls19to4": 4}

#: data defaults of the MSPL-family trainers (seed 000 §IV-A-2, seed 002 §4.1, MSPL-GAN's loader)
MSPL_TRAIN_DATA: dict[str, Any] = {
    "image_size": 128,
    "crop": 448,            # random square crop before resizing (MSPL-GAN / SAPPGAN loaders)
    "hflip": True,
    "rotate_deg": 270.0,    # uniform angle in [-270, 270] deg, as the released loaders draw it
    "color_jitter": 0.0,    # MSPL-GAN used 0.5; the SAPPGAN / DFPG papers name only flips and rotations
    "labels": "auto",       # auto | cls19 | cls4 | cls19to4 (see the module docstring)
    "kernels": "auto",      # auto | spline | random-walk | path to a folder of blur_k{K}.mat
    "kernel_sizes": [13, 15, 17, 19, 21, 23, 25, 27],
    "no_blur_option": True,  # draw "k0" (no blur) as a 9th option per batch, as MSPL-GAN does
    "kernel_bank_size": 250,  # kernels per size when generated (spline / random-walk)
    "kernel_seed": 0,
    "noise_sigma": 2.0 / 255.0,  # on [0, 1] (= (1/255) N(0, 4) on [-1, 1], MSPL-GAN)
    # held out from train_img/ when no validationset/ folder exists; "auto": 10 % of the
    # images, at most 100 (the released loaders' 100), none below 10 images
    "val_images": "auto",
}


def holdout_count(n_images: int, val_images: int | str) -> int:
    """Images of ``train_img/`` held out for validation (``data.val_images``; see :data:`MSPL_TRAIN_DATA`)."""
    if val_images == "auto":
        return min(100, n_images // 10)
    n = int(val_images)
    if n < 0:
        raise DataLayoutError(f"data.val_images = {n}", "use a count >= 0 or 'auto'")
    return n

LAYOUT = """\
<data-root>/
  train_img/{name}.png|jpg
  train_label/{name}.png          (19-class CelebAMask-HQ maps)  and/or
  train_label_cls4/{name}.png     (MSPL 4-class maps)
  trainkernels/blur_k{13..27}.mat (optional, MSPL kernels, variable blurs_k{K})
  validationset/gt/, validationset/blur/ (optional)"""


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def resolve_labels(root: Path, mode: str) -> tuple[str, Path | None]:
    """(label set, label folder) for ``mode`` under ``root``; folder None when none is needed."""
    d19, d4 = root / "train_label", root / "train_label_cls4"
    if mode == "auto":
        if d19.is_dir():
            return "cls19", d19
        if d4.is_dir():
            return "cls4", d4
        raise DataNotFoundError(f"no label folder under {root} (train_label/ or train_label_cls4/)",
                                f"the SAPP discriminator needs face label maps; layout:\n{LAYOUT}")
    folder = d4 if mode == "cls4" else d19
    if not folder.is_dir():
        raise DataNotFoundError(f"label folder {folder} not found (data.labels = {mode!r})",
                                f"place the label maps there or choose another data.labels; layout:\n{LAYOUT}")
    return mode, folder


def read_label(path: Path, mode: str) -> np.ndarray:
    """Label map as uint8 ``(H, W)`` class indices in ``[0, N_CLASSES[mode])``."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "L", "I", "I;16"):
                arr = np.asarray(im)
            else:  # RGB-saved maps: all channels carry the class value
                arr = np.asarray(im.convert("RGB"))[..., 0]
    except FileNotFoundError:
        raise DataLayoutError(f"label map {path} is missing", "every train_img/{name} needs a label map of the same name") from None
    except OSError as exc:
        raise DataLayoutError(f"label map {path} cannot be read ({exc})", "re-extract the label archive") from None
    arr = arr.astype(np.int64)
    n_in = 19 if mode in ("cls19", "cls19to4") else 4
    if arr.min() < 0 or arr.max() >= n_in:
        raise DataLayoutError(
            f"label map {path} has values {int(arr.min())}..{int(arr.max())}, expected 0..{n_in - 1} ({mode})",
            "check data.labels (cls19 for CelebAMask-HQ maps, cls4 for train_label_cls4)",
        )
    if mode == "cls19to4":
        arr = np.asarray(CLS19_TO_CLS4, dtype=np.int64)[arr]
    return arr.astype(np.uint8)


class MSPLTrainSet(torch.utils.data.Dataset):
    """Augmented sharp faces (+ label maps) of the MSPL training layout.

    Item: ``{"sharp": float32 (3, S, S) in [0, 1], "labels": int64 (S, S) or absent, "index": int}``.
    Call :meth:`set_epoch` before each epoch (the augmentation stream depends on it).
    """

    def __init__(self, root: str | Path, data_cfg: dict[str, Any], seed: int = 0,
                 need_labels: bool = False, exclude: int = 0):
        self.root = Path(root)
        img_dir = self.root / "train_img"
        if not img_dir.is_dir():
            raise DataNotFoundError(f"training images not found: {img_dir}", f"use the MSPL training layout:\n{LAYOUT}")
        files = list_images(img_dir)
        if exclude:
            files = files[:-exclude] if exclude < len(files) else []
        if not files:
            raise DataNotFoundError(
                f"no training images left in {img_dir}: {len(list_images(img_dir))} found, {exclude} held out "
                "for validation", "add images, or set data.val_images lower (e.g. --set data.val_images=1; "
                "'auto' holds out 10 %), or add a validationset/ folder")
        self.files = files
        self.cfg = data_cfg
        self.seed = int(seed)
        self.epoch = 0
        self.label_mode: str | None = None
        self.label_dir: Path | None = None
        if need_labels:
            self.label_mode, self.label_dir = resolve_labels(self.root, data_cfg["labels"])
            missing = [f.stem for f in files if not (self.label_dir / f"{f.stem}.png").is_file()]
            if missing:
                raise DataLayoutError(
                    f"{len(missing)} training images have no label map in {self.label_dir} (e.g. {missing[0]}.png)",
                    "every train_img/{name} needs label/{name}.png",
                )

    @property
    def n_classes(self) -> int | None:
        return N_CLASSES[self.label_mode] if self.label_mode else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        path = self.files[index]
        img = Image.fromarray(read_image(path))
        lab = None
        if self.label_dir is not None:
            lab = Image.fromarray(read_label(self.label_dir / f"{path.stem}.png", self.label_mode))
            if img.size != lab.size:
                img = img.resize(lab.size, Image.BILINEAR)
        img, lab = augment(img, lab, self.cfg, rng)
        out: dict[str, Any] = {
            "sharp": torch.from_numpy(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0),
            "index": int(index),
        }
        if lab is not None:
            out["labels"] = torch.from_numpy(np.asarray(lab, dtype=np.int64))
        return out


def augment(img: Image.Image, lab: Image.Image | None, cfg: dict[str, Any],
            rng: np.random.Generator) -> tuple[Image.Image, Image.Image | None]:
    """Crop / resize / flip / rotate / jitter a PIL image and its label map with one RNG."""
    size = int(cfg["image_size"])
    crop = cfg.get("crop")
    w, h = img.size
    if crop:
        c = min(int(crop), w, h)
        x0 = int(rng.integers(0, w - c + 1))
        y0 = int(rng.integers(0, h - c + 1))
        box = (x0, y0, x0 + c, y0 + c)
        img = img.crop(box)
        lab = lab.crop(box) if lab is not None else None
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
        lab = lab.resize((size, size), Image.NEAREST) if lab is not None else None
    if cfg.get("hflip", True) and rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
        lab = lab.transpose(Image.FLIP_LEFT_RIGHT) if lab is not None else None
    deg = float(cfg.get("rotate_deg") or 0.0)
    if deg > 0:
        angle = float(rng.uniform(-deg, deg))
        img = img.rotate(angle, Image.BICUBIC)
        lab = lab.rotate(angle, Image.NEAREST) if lab is not None else None
    cj = float(cfg.get("color_jitter") or 0.0)
    if cj > 0:
        lo = max(1.0 - cj, 0.0)
        img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(lo, 1 + cj)))
        img = ImageEnhance.Contrast(img).enhance(float(rng.uniform(lo, 1 + cj)))
        img = ImageEnhance.Color(img).enhance(float(rng.uniform(lo, 1 + cj)))
    return img, lab


# -- kernels ---------------------------------------------------------------------------------------
def load_kernel_mat(path: str | Path, size: int | None = None) -> np.ndarray:
    """Kernels of an MSPL ``blur_k{K}.mat`` (variable ``blurs_k{K}``, ``K x K x N``) -> ``(N, K, K)``.

    Each kernel is checked (finite, non-negative) and renormalised to unit sum.
    """
    from scipy.io import loadmat

    path = Path(path)
    if size is None:
        m = re.search(r"blur_k(\d+)\.mat$", path.name)
        if not m:
            raise DataLayoutError(f"{path}: cannot tell the kernel size from the name", "name files blur_k{K}.mat")
        size = int(m.group(1))
    var = f"blurs_k{size}"
    try:
        mat = loadmat(str(path))
    except NotImplementedError:
        raise DataLayoutError(f"{path} is a MATLAB v7.3 (HDF5) file", "re-save it with -v7 or convert it to v7") from None
    except Exception as exc:
        raise DataLayoutError(f"{path} cannot be read as a .mat file ({exc})", "re-extract trainkernels.zip") from None
    if var not in mat:
        raise DataLayoutError(f"{path} has no variable {var!r} (found {sorted(k for k in mat if not k.startswith('__'))})",
                              f"MSPL kernel files store K x K x N arrays as {var}")
    arr = np.asarray(mat[var], dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[0] != size or arr.shape[1] != size:
        raise DataLayoutError(f"{path}: {var} has shape {arr.shape}, expected ({size}, {size}, N)",
                              "use the MSPL training kernels")
    k = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if not np.all(np.isfinite(k)) or k.min() < -1e-6:
        raise DataLayoutError(f"{path}: kernels with negative or non-finite values", "use the MSPL training kernels")
    s = k.sum(axis=(1, 2), keepdims=True)
    if np.any(s <= 0):
        raise DataLayoutError(f"{path}: a kernel sums to 0", "use the MSPL training kernels")
    return k / s


def find_kernel_files(root: Path) -> dict[int, Path]:
    for d in (root / "trainkernels", root / "kernels", root):
        if d.is_dir():
            found = {}
            for p in d.glob("blur_k*.mat"):
                m = re.fullmatch(r"blur_k(\d+)\.mat", p.name)
                if m:
                    found[int(m.group(1))] = p
            if found:
                return found
    return {}


def kernel_source(root: Path, data_cfg: dict[str, Any]) -> tuple[str, dict[int, np.ndarray]]:
    """(description, ``{K: (N, K, K) float64}``) as ``data.kernels`` says."""
    spec = str(data_cfg.get("kernels", "auto"))
    sizes = [int(k) for k in data_cfg["kernel_sizes"]]
    files: dict[int, Path] = {}
    if spec == "auto":
        files = find_kernel_files(root)
        spec = "files" if files else "spline"
    elif spec not in ("spline", "random-walk"):
        d = Path(spec).expanduser()
        if not d.is_dir():
            raise DataNotFoundError(f"kernel folder {d} not found (data.kernels)",
                                    "pass a folder with blur_k{K}.mat, or 'spline' / 'random-walk' / 'auto'")
        files = find_kernel_files(d)
        if not files:
            raise DataNotFoundError(f"no blur_k*.mat files in {d}", "MSPL training kernels are blur_k13.mat ... blur_k27.mat")
        spec = "files"
    if spec == "files":
        use = [k for k in sizes if k in files]
        if not use:
            raise DataNotFoundError(f"no kernel file for sizes {sizes} (found {sorted(files)})",
                                    "add blur_k{K}.mat files or change data.kernel_sizes")
        bank = {k: load_kernel_mat(files[k], k) for k in use}
        where = files[use[0]].parent
        return f"MSPL kernel files in {where} ({', '.join(f'{k}:{len(v)}' for k, v in bank.items())})", bank
    from .kernels import kernel_bank

    n = int(data_cfg["kernel_bank_size"])
    bank = kernel_bank(n, tuple(sizes), seed=int(data_cfg["kernel_seed"]), kind=spec)
    return f"{spec} generator, {n} kernels per size, seed {data_cfg['kernel_seed']}", bank


class Degrader:
    """Blur + noise a batch on its device (see the module docstring)."""

    def __init__(self, bank: dict[int, np.ndarray], noise_sigma: float, no_blur_option: bool = True,
                 device: torch.device | str = "cpu"):
        self.sizes = sorted(bank)
        self.bank = {k: torch.as_tensor(v, dtype=torch.float32, device=device) for k, v in bank.items()}
        self.noise_sigma = float(noise_sigma)
        self.options: list[int] = self.sizes + ([0] if no_blur_option else [])

    def __call__(self, sharp01: torch.Tensor, seed: tuple[int, ...]) -> tuple[torch.Tensor, int]:
        """Blur ``(N, 3, H, W)`` [0, 1] images; deterministic in ``seed``. Returns (blurred, K)."""
        from .degrade import blur_batch

        rng = np.random.default_rng(list(seed))
        k = int(self.options[int(rng.integers(len(self.options)))])
        n = sharp01.shape[0]
        if k == 0:
            out = sharp01.clone()
        else:
            bank = self.bank[k]
            idx = torch.as_tensor(rng.integers(0, bank.shape[0], size=n), device=bank.device)
            out = blur_batch(sharp01, bank[idx].to(sharp01.dtype))
        if self.noise_sigma > 0:
            g = torch.Generator(device=sharp01.device)
            g.manual_seed(int(rng.integers(0, 2**62)))
            out = out + self.noise_sigma * torch.randn(out.shape, generator=g, device=out.device, dtype=out.dtype)
        return out, k


# -- validation ------------------------------------------------------------------------------------
@dataclass
class ValidationSet:
    """Fixed validation pairs as uint8 ``(N, 3, S, S)`` tensors (CPU)."""

    blurred: torch.Tensor
    sharp: torch.Tensor
    source: str

    def __len__(self) -> int:
        return int(self.sharp.shape[0])


def build_validation(root: Path, data_cfg: dict[str, Any], bank: dict[int, np.ndarray],
                     seed: int = 0) -> ValidationSet | None:
    """``validationset/{gt,blur}`` when present, else the last ``val_images`` training images
    (held out from training) blurred once with seeded kernels and no noise."""
    from .degrade import blur_batch

    size = int(data_cfg["image_size"])
    vdir = root / "validationset"

    def load(p: Path) -> np.ndarray:
        im = Image.fromarray(read_image(p))
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        return np.asarray(im)

    if (vdir / "gt").is_dir() and (vdir / "blur").is_dir():
        gts = {p.stem: p for p in list_images(vdir / "gt")}
        pairs = []
        for b in list_images(vdir / "blur"):
            m = re.fullmatch(r"(.+)_ker\d+_blur_k\d+", b.stem)
            name = m.group(1) if m else None
            if name not in gts:
                raise DataLayoutError(f"validation image {b} has no ground truth in {vdir / 'gt'}",
                                      "blurred files are named {gt-name}_kerNN_blur_kKK.png")
            pairs.append((b, gts[name]))
        limit = len(pairs) if data_cfg["val_images"] == "auto" else (int(data_cfg["val_images"]) or len(pairs))
        pairs = pairs[:limit]
        if not pairs:
            return None
        bl = np.stack([load(b) for b, _ in pairs]).transpose(0, 3, 1, 2)
        gt = np.stack([load(g) for _, g in pairs]).transpose(0, 3, 1, 2)
        return ValidationSet(torch.from_numpy(bl), torch.from_numpy(gt), f"{vdir} ({len(pairs)} pairs)")
    files = list_images(root / "train_img")
    n = holdout_count(len(files), data_cfg["val_images"])
    if n <= 0:
        return None
    files = files[-n:]
    sharp = np.stack([load(p) for p in files]).transpose(0, 3, 1, 2)
    sharp_t = torch.from_numpy(sharp)
    rng = np.random.default_rng([seed, 7919])
    sizes = sorted(bank)
    kernels = []
    for _ in files:
        k = sizes[int(rng.integers(len(sizes)))]
        kernels.append(bank[k][int(rng.integers(len(bank[k])))])
    blurred = blur_batch(sharp_t.double() / 255.0, kernels)
    blurred_u8 = torch.clamp(torch.round(blurred * 255.0), 0, 255).to(torch.uint8)
    return ValidationSet(blurred_u8, sharp_t, f"{len(files)} held-out training images, seeded blur, no noise")


# -- a tiny synthetic layout (smoke runs, tests, speed benchmarks) ------------------------------
# A tiny synthetic MSPL-layout training folder for smoke runs, tests and speed benchmarks.
# 
# Images are smooth random colour fields with an elliptical "face" and label maps that mark it
# (it is not face data: never report quality numbers from it). Kernel files are format-faithful
# MSPL ``blur_k{K}.mat`` files (variable ``blurs_k{K}``, ``K x K x N``) holding random
# unit-sum line kernels.


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
