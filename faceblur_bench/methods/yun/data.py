"""Training data of Yun et al.: the release's triple layout, or triples synthesised from sharp faces.

**Release layout** (``FaceSRnDeblur_train.ipynb``'s loader; METHODS.md §B.2), under ``--data-root``::

    trainx8/{name}.png   blurred LR input I_LR, 32x32
    wblur/{name}.png     blurred HR image I_HRB, 256x256 (target of the upper decoder)
    GT/{name}.jpg        sharp HR ground truth I_HR, 256x256 (.png accepted)
    fmask/{name}.png     face mask M_face, 256x256, read as grey levels / 255 in [0, 1]

**Sharp faces only** (no ``trainx8/``): the MSPL-family layout ``train_img/{name}.png|jpg``
(CelebA-HQ faces, resized to 256x256 bicubic when another size) with optional
``train_label/{name}.png`` (19-class CelebAMask-HQ label maps). The triple is synthesised per
batch on the training device (:func:`synthesise`); Gong et al.'s motion-flow generator is not
released, so what is used instead is the project's choice:

- face mask M_face: label values 1–12 (skin, nose, glasses, eyes, brows, ears, mouth, lips;
  hair, hat, neck, cloth and background excluded) when ``train_label/`` is present; else a fixed
  ellipse centred at (0.55 H, 0.5 W) with radii (0.38 H, 0.3 W), which covers the face of an
  aligned CelebA-HQ image;
- blur: one uniform motion kernel per image from the project's generators
  (:mod:`faceblur_bench.data.kernels`, ``data.kernel_kind`` "random-walk" camera-shake kernels
  by default, sizes ``data.kernel_sizes``, ``data.kernel_bank_size`` kernels per size, seed
  ``data.kernel_seed``), applied by reflect-padded convolution
  (:func:`faceblur_bench.data.degrade.blur_batch`) and composited inside the mask:
  ``I_HRB = M ⊙ (k ∗ I_HR) + (1 − M) ⊙ I_HR``, then Gaussian noise ``data.noise_sigma``;
- ×8 downsampling: bicubic with antialiasing (``F.interpolate(..., antialias=True)``, PIL's
  filter) of the float I_HRB to 32x32, clamped to [0, 1].

Every random choice comes from seeds (:class:`~faceblur_bench.methods.training.StepContext`
``seed_for`` per batch; ``(seed, epoch, index)`` per sample for the flip), so resume replays it.

Items are dicts of float tensors in [0, 1]: ``sharp`` (3, 256, 256), ``mask`` (1, 256, 256) and,
in the release layout, ``lr`` (3, 32, 32) and ``blurred_hr`` (3, 256, 256).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...errors import DataLayoutError, DataNotFoundError
from ...imageio import IMAGE_SUFFIXES
from .networks import INPUT_SIZE, SCALE

HR_SIZE: int = INPUT_SIZE * SCALE
#: CelebAMask-HQ label values inside the face mask (1 skin … 12 lower lip)
FACE_LABELS: tuple[int, ...] = tuple(range(1, 13))
RELEASE_DIRS = ("trainx8", "wblur", "GT", "fmask")

LAYOUT = """\
<data-root>/trainx8/{name}.png  (32x32 blurred LR)      <data-root>/wblur/{name}.png (256x256 blurred HR)
<data-root>/GT/{name}.jpg       (256x256 sharp)         <data-root>/fmask/{name}.png (256x256 face mask)
or sharp faces only: <data-root>/train_img/{name}.png|jpg [+ train_label/{name}.png, 19-class maps]"""


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _find(folder: Path, stem: str, exts: tuple[str, ...]) -> Path | None:
    return next((folder / f"{stem}{e}" for e in exts if (folder / f"{stem}{e}").is_file()), None)


def layout_kind(root: Path) -> str:
    """``"release"`` (trainx8/ present), ``"sharp"`` (train_img/ present), else DataNotFoundError."""
    if (root / "trainx8").is_dir():
        return "release"
    if (root / "train_img").is_dir():
        return "sharp"
    raise DataNotFoundError(f"{root} holds neither trainx8/ (the release's layout) nor train_img/ (sharp faces)",
                            f"expected layout:\n{LAYOUT}")


def read_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)``; resized (bicubic) to ``size`` x ``size`` when given and different."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        return np.asarray(im).copy()


def read_mask(path: Path, size: int = HR_SIZE) -> np.ndarray:
    """Face mask as float32 ``(H, W)`` in [0, 1] (grey level / 255; nearest resize when needed)."""
    with Image.open(path) as im:
        im = im.convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.NEAREST)
        return np.asarray(im, dtype=np.float32) / 255.0


def ellipse_mask(size: int = HR_SIZE) -> np.ndarray:
    """The fixed face ellipse used without label maps (see the module docstring)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    return ((((yy - 0.55) / 0.38) ** 2 + ((xx - 0.5) / 0.3) ** 2) < 1.0).astype(np.float32)


def label_mask(path: Path, size: int = HR_SIZE) -> np.ndarray:
    """Face mask from a 19-class CelebAMask-HQ label map (values in :data:`FACE_LABELS`)."""
    with Image.open(path) as im:
        if im.mode not in ("L", "P"):
            im = im.convert("RGB").getchannel(0)  # RGB-saved maps carry the class in every channel
        if im.size != (size, size):
            im = im.resize((size, size), Image.NEAREST)
        lab = np.asarray(im)
    return np.isin(lab, FACE_LABELS).astype(np.float32)


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0


class YunTrainSet(torch.utils.data.Dataset):
    """Training items of either layout (see the module docstring); ``names`` selects the images."""

    def __init__(self, root: str | Path, names: list[str], *, hflip: bool = False, seed: int = 0):
        self.root = Path(root)
        self.kind = layout_kind(self.root)
        self.names = list(names)
        self.hflip = bool(hflip)
        self.seed = int(seed)
        self.epoch = 0
        self.label_dir = self.root / "train_label"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = load_item(self.root, self.kind, self.names[index])
        if self.hflip and np.random.default_rng((self.seed, self.epoch, index)).random() < 0.5:
            item = {k: v.flip(-1) for k, v in item.items()}
        return item


def release_names(root: Path) -> list[str]:
    """Stems of ``trainx8/`` with all four files present (a missing partner is an error)."""
    names = []
    for p in _images(root / "trainx8"):
        for d, exts in (("wblur", (".png",)), ("GT", (".jpg", ".png")), ("fmask", (".png",))):
            if _find(root / d, p.stem, exts) is None:
                raise DataLayoutError(f"{p}: no {d}/{p.stem}{exts[0]} beside it",
                                      f"every trainx8/ image needs its wblur/, GT/ and fmask/ files; layout:\n{LAYOUT}")
        names.append(p.stem)
    if not names:
        raise DataLayoutError(f"{root / 'trainx8'} holds no images", f"expected layout:\n{LAYOUT}")
    return names


def sharp_names(root: Path) -> list[str]:
    names = [p.name for p in _images(root / "train_img")]
    if not names:
        raise DataLayoutError(f"{root / 'train_img'} holds no images", f"expected layout:\n{LAYOUT}")
    return names


def load_item(root: Path, kind: str, name: str) -> dict[str, torch.Tensor]:
    """One training item as float tensors in [0, 1] (shapes checked against the layout)."""
    if kind == "release":
        lr = read_rgb(root / "trainx8" / f"{name}.png")
        bhr = read_rgb(root / "wblur" / f"{name}.png")
        gt_path = _find(root / "GT", name, (".jpg", ".png"))
        assert gt_path is not None
        gt = read_rgb(gt_path)
        for what, a, s in (("trainx8", lr, INPUT_SIZE), ("wblur", bhr, HR_SIZE), ("GT", gt, HR_SIZE)):
            if a.shape[:2] != (s, s):
                raise DataLayoutError(f"{root / what}/{name}: {a.shape[1]}x{a.shape[0]}, expected {s}x{s}",
                                      "the release's layout is 32x32 trainx8/ and 256x256 wblur/, GT/, fmask/")
        mask = read_mask(root / "fmask" / f"{name}.png")
        return {"lr": _chw(lr), "blurred_hr": _chw(bhr), "sharp": _chw(gt),
                "mask": torch.from_numpy(mask)[None]}
    sharp = read_rgb(root / "train_img" / name, HR_SIZE)
    stem = Path(name).stem
    lab = _find(root / "train_label", stem, (".png",)) if (root / "train_label").is_dir() else None
    mask = label_mask(lab) if lab is not None else ellipse_mask()
    return {"sharp": _chw(sharp), "mask": torch.from_numpy(mask)[None]}


def synthesise(sharp01: torch.Tensor, mask: torch.Tensor, kernels: torch.Tensor,
               noise_sigma: float = 0.0, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(blurred_hr, lr)`` from sharp ``(N, 3, 256, 256)`` [0, 1] faces, masks ``(N, 1, 256, 256)``
    and one ``(K, K)`` kernel per image ``(N, K, K)``: blur composited inside the mask, noise,
    then ×8 antialiased bicubic downsampling; both clamped to [0, 1]."""
    from ...data.degrade import blur_batch

    blurred = blur_batch(sharp01, kernels.to(sharp01.dtype))
    bhr = mask * blurred + (1.0 - mask) * sharp01
    if noise_sigma > 0:
        bhr = bhr + noise_sigma * torch.randn(bhr.shape, generator=generator, device=bhr.device, dtype=bhr.dtype)
    bhr = bhr.clamp(0.0, 1.0)
    lr = F.interpolate(bhr, scale_factor=1.0 / SCALE, mode="bicubic", align_corners=False, antialias=True)
    return bhr, lr.clamp(0.0, 1.0)


class KernelSampler:
    """Draws one kernel per image from a bank ``{K: (n, K, K)}``; deterministic in a seed tuple."""

    def __init__(self, bank: dict[int, np.ndarray], device: torch.device | str = "cpu"):
        self.sizes = sorted(bank)
        self.max_size = max(self.sizes)
        # every kernel zero-padded to the largest size: one (N, K, K) stack per batch
        pad = {k: (self.max_size - k) // 2 for k in self.sizes}
        self.bank = torch.cat([F.pad(torch.as_tensor(bank[k], dtype=torch.float32), (pad[k],) * 4)
                               for k in self.sizes]).to(device)

    def __call__(self, n: int, seed: tuple[int, ...]) -> torch.Tensor:
        rng = np.random.default_rng(list(seed))
        idx = torch.as_tensor(rng.integers(0, self.bank.shape[0], size=n), device=self.bank.device)
        return self.bank[idx]


def write_release_tree(root: str | Path, n_images: int = 4, seed: int = 0, kernel_size: int = 9) -> Path:
    """A tiny tree in the release's layout with synthetic face-like images (tests, ``--tiny``):
    an ellipse "face" with two dark "eyes" on a gradient, blurred inside the mask by a line
    kernel, ×8 downsampled. Never report quality numbers from it."""
    root = Path(root)
    for d in RELEASE_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = HR_SIZE
    yy, xx = np.mgrid[0:s, 0:s] / s
    mask = ellipse_mask(s)
    k = np.zeros((kernel_size, kernel_size), np.float32)
    k[kernel_size // 2] = 1.0 / kernel_size
    for i in range(n_images):
        img = rng.uniform(40, 200, 3) + yy[..., None] * rng.uniform(-60, 60, 3)
        img = img + xx[..., None] * rng.uniform(-60, 60, 3)
        face = mask > 0
        img[face] = rng.uniform(120, 230, 3)
        eyes = face & (np.abs(yy - 0.45) < 0.03) & (np.abs(np.abs(xx - 0.5) - 0.12) < 0.04)
        img[eyes] = rng.uniform(0, 60, 3)
        gt = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
        sharp = _chw(gt)[None]
        bhr, lr = synthesise(sharp, torch.from_numpy(mask)[None, None], torch.from_numpy(k)[None])
        name = f"{i:05d}"
        to8 = (lambda t: (t[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8))
        Image.fromarray(to8(lr)).save(root / "trainx8" / f"{name}.png")
        Image.fromarray(to8(bhr)).save(root / "wblur" / f"{name}.png")
        Image.fromarray(gt).save(root / "GT" / f"{name}.jpg", quality=95)
        Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(root / "fmask" / f"{name}.png")
    return root
