"""Training data of Shen et al.: sharp aligned faces with 11-class Helen parsing labels, blur
synthesised on the fly (seed 004 §3.5–3.6, §4.1).

Layout under ``--data-root`` (documented in ``docs/methods-shen.md``)::

    images/{name}.{png,jpg}                 sharp aligned faces (any size; resized to image_size)
    labels/{name}.png                       11-class map, pixel value = class index, or
    labels/{name}/{name}_lbl00.png … lbl10  Helen's per-class maps (Smith et al. 2013 release;
                                            the class of a pixel is the argmax over the 11)

Classes (:data:`~.losses.HELEN_CLASSES`): 0 background, 1 face, 2/3 left/right eyebrow, 4/5
left/right eye, 6 nose, 7 upper lip, 8 teeth (inner mouth), 9 lower lip, 10 hair.

Augmentation (§3.5), one affine warp per sample applied to image (bicubic) and labels (nearest):
scale uniform in ``[0.9, 1.1]``, shift uniform within ±``shift_px`` (12 px at 128×128, scaled
with ``image_size``), rotation uniform in ±30°, about the image centre, zero fill (background
label). Draws come from ``numpy.random.default_rng((seed, epoch, index))``, so a resumed run
replays them.

Blur (:class:`Blurrer`, on the training device, per image): a kernel size drawn uniformly from
``kernel_sizes`` (8 sizes 13…27), a kernel of that size from a bank of the project's Boracchi–Foi
random-trajectory generator (:func:`faceblur_bench.data.kernels.kernel_bank`, ``random-walk``),
true convolution with reflect padding, then Gaussian noise σ = 0.01 (no clipping). The paper
draws from 20,000 training kernels (2,500 per size); the default bank of 250 per size keeps
start-up short (``data.kernel_bank_size`` sets it).

Validation: the last ``val_images`` images (``"auto"``: 10 %, at most 100) are held out,
blurred once with seeded kernels and no noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ...errors import DataLayoutError, DataNotFoundError
from ...imageio import IMAGE_SUFFIXES, read_image

LAYOUT = """\
<data-root>/
  images/{name}.png|jpg                    sharp aligned faces
  labels/{name}.png                        11-class Helen map (value = class)  or
  labels/{name}/{name}_lbl00..10.png       Helen's per-class maps"""

DATA_DEFAULTS: dict[str, Any] = {
    "image_size": 128,
    "scale": [0.9, 1.1],
    "shift_px": 12.0,        # at 128x128
    "rotate_deg": 30.0,
    "kernel_sizes": [13, 15, 17, 19, 21, 23, 25, 27],
    "kernel_generator": "random-walk",  # Boracchi & Foi 2012 trajectories
    "kernel_bank_size": 250,
    "kernel_seed": 0,
    "noise_sigma": 0.01,
    "val_images": "auto",
    "num_workers": 4,
}
N_CLASSES = 11


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def label_source(root: Path, name: str) -> Path | list[Path] | None:
    """The label file of image ``name``: ``labels/{name}.png`` or Helen's 11 per-class maps."""
    single = root / "labels" / f"{name}.png"
    if single.is_file():
        return single
    per_class = [root / "labels" / name / f"{name}_lbl{k:02d}.png" for k in range(N_CLASSES)]
    if all(p.is_file() for p in per_class):
        return per_class
    return None


def read_labels(src: Path | list[Path]) -> np.ndarray:
    """``(H, W)`` uint8 class map from either label form; values outside [0, 11) refused."""
    if isinstance(src, list):
        maps = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.uint8) for p in src])
        return maps.argmax(0).astype(np.uint8)
    with Image.open(src) as im:
        lab = np.asarray(im if im.mode in ("L", "P") else im.convert("L"), dtype=np.uint8)
    if lab.max() >= N_CLASSES:
        raise DataLayoutError(f"{src}: label value {int(lab.max())} outside the 11 Helen classes",
                              "label maps hold class indices 0..10 (see docs/methods-shen.md)")
    return lab


def holdout_count(n_images: int, val_images: int | str) -> int:
    if val_images == "auto":
        return min(100, n_images // 10)
    n = int(val_images)
    if n < 0:
        raise DataLayoutError(f"data.val_images = {n}", "use a count >= 0 or 'auto'")
    return n


def training_files(root: Path, val_images: int | str) -> tuple[list[Path], list[Path]]:
    """(training images, held-out validation images) under ``root/images``."""
    img_dir = root / "images"
    if not img_dir.is_dir():
        raise DataNotFoundError(f"training images not found: {img_dir}",
                                f"use the Helen layout of docs/methods-shen.md:\n{LAYOUT}")
    files = list_images(img_dir)
    n = holdout_count(len(files), val_images)
    train, val = (files[:-n], files[-n:]) if n else (files, [])
    if not train:
        raise DataNotFoundError(f"no training images left in {img_dir} ({len(files)} found, {n} "
                                "held out)", "add images or lower data.val_images")
    return train, val


def _load(path: Path, size: int) -> Image.Image:
    im = Image.fromarray(read_image(path))
    return im if im.size == (size, size) else im.resize((size, size), Image.BICUBIC)


def augment(img: Image.Image, lab: Image.Image, cfg: dict[str, Any], rng: np.random.Generator
            ) -> tuple[Image.Image, Image.Image]:
    """One random similarity warp (scale, shift, rotation about the centre) of both images."""
    size = img.size[0]
    lo, hi = (float(v) for v in cfg["scale"])
    s = float(rng.uniform(lo, hi))
    shift = float(cfg["shift_px"]) * size / 128.0
    tx, ty = (float(v) for v in rng.uniform(-shift, shift, 2))
    a = np.deg2rad(float(rng.uniform(-cfg["rotate_deg"], cfg["rotate_deg"])))
    c = (size - 1) / 2.0
    # PIL wants the inverse map: output (x, y) -> input (x', y')
    cos, sin = np.cos(a) / s, np.sin(a) / s
    m = (cos, sin, c - cos * (c + tx) - sin * (c + ty),
         -sin, cos, c + sin * (c + tx) - cos * (c + ty))
    return (img.transform(img.size, Image.AFFINE, m, resample=Image.BICUBIC),
            lab.transform(lab.size, Image.AFFINE, m, resample=Image.NEAREST))


class HelenTrainSet(torch.utils.data.Dataset):
    """Augmented sharp faces and label maps.

    Item: ``{"sharp": float32 (3, S, S) in [0, 1], "labels": int64 (S, S), "index": int}``.
    """

    def __init__(self, root: str | Path, files: list[Path], data_cfg: dict[str, Any],
                 seed: int = 0):
        self.root, self.files, self.cfg, self.seed, self.epoch = Path(root), files, data_cfg, seed, 0
        self.labels = []
        for f in files:
            src = label_source(self.root, f.stem)
            if src is None:
                raise DataLayoutError(f"training image {f.name} has no label map "
                                      f"(labels/{f.stem}.png or labels/{f.stem}/{f.stem}_lbl00..10.png)",
                                      "every images/{name} needs its Helen labels")
            self.labels.append(src)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        size = int(self.cfg["image_size"])
        img = _load(self.files[index], size)
        lab = Image.fromarray(read_labels(self.labels[index]))
        if lab.size != (size, size):
            lab = lab.resize((size, size), Image.NEAREST)
        img, lab = augment(img, lab, self.cfg, rng)
        return {"sharp": torch.from_numpy(np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0),
                "labels": torch.from_numpy(np.asarray(lab, np.int64)), "index": int(index)}


def kernel_bank(data_cfg: dict[str, Any]) -> dict[int, np.ndarray]:
    from ...data.kernels import kernel_bank as make_bank

    return make_bank(int(data_cfg["kernel_bank_size"]),
                     tuple(int(k) for k in data_cfg["kernel_sizes"]),
                     seed=int(data_cfg["kernel_seed"]), kind=str(data_cfg["kernel_generator"]))


class Blurrer:
    """Per-image random kernel size and kernel, convolution, Gaussian noise (deterministic in
    the seed tuple)."""

    def __init__(self, bank: dict[int, np.ndarray], noise_sigma: float,
                 device: torch.device | str = "cpu"):
        self.sizes = sorted(bank)
        self.bank = {k: torch.as_tensor(v, dtype=torch.float32, device=device)
                     for k, v in bank.items()}
        self.noise_sigma = float(noise_sigma)

    def __call__(self, sharp01: torch.Tensor, seed: tuple[int, ...]) -> torch.Tensor:
        from ...data.degrade import blur_batch

        rng = np.random.default_rng(list(seed))
        kernels = []
        for _ in range(sharp01.shape[0]):
            bank = self.bank[self.sizes[int(rng.integers(len(self.sizes)))]]
            kernels.append(bank[int(rng.integers(bank.shape[0]))].to(sharp01.dtype))
        out = blur_batch(sharp01, kernels)
        if self.noise_sigma > 0:
            g = torch.Generator(device=sharp01.device)
            g.manual_seed(int(rng.integers(0, 2**62)))
            out = out + self.noise_sigma * torch.randn(out.shape, generator=g, device=out.device,
                                                       dtype=out.dtype)
        return out


def validation_pairs(files: list[Path], size: int, bank: dict[int, np.ndarray], seed: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(blurred, sharp) uint8 ``(N, 3, S, S)``: each held-out image blurred once, no noise."""
    from ...data.degrade import blur_batch

    sharp = torch.from_numpy(np.stack([np.asarray(_load(f, size)) for f in files])
                             .transpose(0, 3, 1, 2).copy())
    rng = np.random.default_rng([seed, 7919])
    sizes = sorted(bank)
    kernels = []
    for _ in files:
        k = sizes[int(rng.integers(len(sizes)))]
        kernels.append(bank[k][int(rng.integers(len(bank[k])))])
    blurred = blur_batch(sharp.double() / 255.0, kernels)
    return torch.clamp(torch.round(blurred * 255.0), 0, 255).to(torch.uint8), sharp


def make_smoke_layout(root: str | Path, n_images: int = 5, size: int = 64, seed: int = 0,
                      per_class: bool = False) -> Path:
    """A tiny synthetic Helen-layout tree (random colour fields with an elliptical "face" and
    drawn components in the label map). Not face data: never report quality numbers from it."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n_images):
        img = rng.uniform(0, 255, 3) + yy[..., None] * rng.uniform(-80, 80, 3)
        lab = np.zeros((size, size), np.uint8)
        lab[((yy - 0.5) / 0.35) ** 2 + ((xx - 0.5) / 0.28) ** 2 < 1] = 1
        lab[yy < 0.2] = 10
        for k, (cy, cx, r) in {2: (0.35, 0.38, 0.04), 3: (0.35, 0.62, 0.04), 4: (0.42, 0.38, 0.04),
                               5: (0.42, 0.62, 0.04), 6: (0.55, 0.5, 0.06), 7: (0.68, 0.5, 0.04),
                               8: (0.72, 0.5, 0.03), 9: (0.76, 0.5, 0.04)}.items():
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
        img = img + (lab[..., None] * 9.0) + rng.normal(0, 4, (size, size, 3))
        name = f"im{i:03d}"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"{name}.png")
        if per_class:
            (root / "labels" / name).mkdir(exist_ok=True)
            for k in range(N_CLASSES):
                Image.fromarray(((lab == k) * 255).astype(np.uint8)).save(
                    root / "labels" / name / f"{name}_lbl{k:02d}.png")
        else:
            Image.fromarray(lab).save(root / "labels" / f"{name}.png")
    return root
