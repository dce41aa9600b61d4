"""CFMD-GAN training data: (blurred b, sharp moment s_i, u_i) triples from 300VW blur windows.

Layout (written by ``dolphin0104/CFMDGAN:prepareDataset/genBlurDataset.py``; the same tree the
``300vw`` split reads its test videos from)::

    <root>/blur/{vid}/blur{n:03d}/{mid}.png             b = mean of the n frames (uint8)
    <root>/sharp/{vid}/blur{n:03d}/{mid}/{frame}.png    the n sharp frames
    <root>/train_filelist.txt                           "VID blurNNN MID F_1 ... F_n", FMR order

(``<root>/300vw/...`` is accepted too.) Videos: the release's 83 training videos
(:data:`TRAIN_VIDEOS`, ``data.videos = "train"``) or every video except the 9 test videos
(``"all-but-test"``). Frame order: ``data.frame_order = "fmr"`` takes each window's order from
``train_filelist.txt`` (facial-motion reordering, seed 003 §4.1: stable sort by the left-eye
landmark (x, y)); without that list FMR order cannot be known and training is refused;
``"temporal"`` (Table 5's "w/o FMR" row) sorts frames by name. ``u_i = i/(n−1)``.

Each item: ``blurred`` and ``sharp`` ``(3, crop, crop)`` float32 in [0, 1] (the same random
scale in [scale_min, scale_max] — bilinear, antialiased — and the same random crop for both),
``u`` float32 scalar. Randomness is a function of (seed, epoch, index), so a resumed run sees the
same samples. An epoch is ``samples_per_epoch`` triples drawn without replacement per pass over
a seeded permutation (the release: 12,000 per epoch); 0 = every triple once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...data.vw300 import TEST_VIDEOS, read_file_list
from ...errors import DataLayoutError, DataNotFoundError, UsageError
from ...imageio import read_image

TRAIN_LIST = "train_filelist.txt"
#: training videos of the release (genBlurDataset.py TRAIN_DIRS; Ren et al.'s split)
TRAIN_VIDEOS: tuple[str, ...] = (
    "001", "002", "003", "007", "013", "015", "016", "017", "018", "019", "020", "022", "025", "027",
    "028", "029", "031", "033", "034", "035", "041", "043", "044", "046", "047", "048", "049", "057",
    "059", "112", "113", "114", "115", "119", "123", "125", "126", "138", "143", "144", "150", "160",
    "203", "208", "212", "213", "214", "218", "223", "225", "401", "402", "403", "404", "405", "408",
    "412", "505", "506", "507", "508", "510", "511", "514", "517", "519", "520", "521", "524", "525",
    "526", "528", "529", "530", "531", "540", "541", "546", "547", "548", "553", "559", "562")
_NDIR = re.compile(r"^blur(\d{3})$")


@dataclass(frozen=True)
class Window:
    """One blur window: the blurred image and its n sharp frames in training order."""

    video: str
    n: int
    mid: str
    blurred: Path
    frames: tuple[Path, ...]


def find_root(data_root: Path) -> Path:
    """The folder holding ``blur/`` and ``sharp/`` (``data_root`` or ``data_root/300vw``)."""
    for cand in (data_root, data_root / "300vw", data_root / "300VW"):
        if (cand / "blur").is_dir() and (cand / "sharp").is_dir():
            return cand
    raise DataNotFoundError(f"no 300VW blur windows under {data_root} (looked for blur/ and sharp/)",
                            "pass --data-root the output folder of genBlurDataset.py (blur/, sharp/, "
                            f"{TRAIN_LIST})")


def list_windows(root: Path, videos: str = "train", frame_order: str = "fmr") -> list[Window]:
    """Training windows under ``root`` (see the module docstring), sorted by (video, n, mid)."""
    if videos not in ("train", "all-but-test"):
        raise UsageError(f"data.videos = {videos!r}", "use 'train' (the release's 83 videos) or 'all-but-test'")
    if frame_order not in ("fmr", "temporal"):
        raise UsageError(f"data.frame_order = {frame_order!r}", "use 'fmr' or 'temporal'")
    keep = (lambda v: v in TRAIN_VIDEOS) if videos == "train" else (lambda v: v not in TEST_VIDEOS)
    lst = root / TRAIN_LIST
    out: list[Window] = []
    if frame_order == "fmr":
        if not lst.is_file():
            raise DataNotFoundError(
                f"{lst} not found: the FMR frame order of the training windows is unknown",
                "write it with genBlurDataset.py (lines 'VID blurNNN MID F_1 ... F_n', left-eye order), or "
                "train without FMR (--preset no-fmr, Table 5 row 3)")
        for (vid, n, mid), frames in sorted(read_file_list(lst).items()):
            if not keep(vid):
                continue
            bp = root / "blur" / vid / f"blur{n:03d}" / f"{mid}.png"
            paths = tuple(root / "sharp" / vid / f"blur{n:03d}" / mid / f"{f}.png" for f in frames)
            missing = [p for p in (bp, *paths) if not p.is_file()]
            if missing:
                raise DataLayoutError(f"{missing[0]}: listed in {lst} but missing",
                                      "regenerate the window with genBlurDataset.py or remove its line")
            out.append(Window(vid, n, mid, bp, paths))
    else:
        for vdir in sorted(p for p in (root / "blur").iterdir() if p.is_dir() and keep(p.name)):
            for ndir in sorted(p for p in vdir.iterdir() if _NDIR.match(p.name)):
                n = int(ndir.name[4:])
                for bp in sorted(ndir.glob("*.png")):
                    sdir = root / "sharp" / vdir.name / ndir.name / bp.stem
                    frames = tuple(sorted(sdir.glob("*.png")))
                    if len(frames) != n:
                        raise DataLayoutError(f"{sdir}: {len(frames)} sharp frames for {bp}, expected {n}",
                                              "regenerate this window with genBlurDataset.py")
                    out.append(Window(vdir.name, n, bp.stem, bp, frames))
    if not out:
        raise DataNotFoundError(f"no training windows of the {'release training' if videos == 'train' else 'non-test'} "
                                f"videos under {root}", "check --data-root and data.videos")
    return out


def triples(windows: list[Window]) -> list[tuple[int, int, float]]:
    """``(window index, frame index i, u_i = i/(n−1))`` for every frame of every window."""
    return [(w, i, i / (win.n - 1)) for w, win in enumerate(windows) for i in range(win.n)]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) % 2**32 for k in key])


def scale_and_crop(imgs: list[torch.Tensor], crop: int, smin: float, smax: float,
                   rng: np.random.Generator) -> list[torch.Tensor]:
    """The same random scale in [smin, smax] and the same random ``crop``² window for every
    ``(3, H, W)`` image of ``imgs`` (a crop larger than the scaled image is refused)."""
    s = float(rng.uniform(smin, smax)) if smax > smin else float(smin)
    h, w = imgs[0].shape[-2:]
    nh, nw = max(crop, round(h * s)), max(crop, round(w * s))
    if (nh, nw) != (h, w):
        imgs = [F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=True)[0].clamp_(0, 1) for x in imgs]
    y, x = int(rng.integers(0, nh - crop + 1)), int(rng.integers(0, nw - crop + 1))
    return [im[:, y:y + crop, x:x + crop].contiguous() for im in imgs]


def _load(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_image(path).copy()).permute(2, 0, 1).float().div_(255.0)


class MomentTrainSet(torch.utils.data.Dataset):
    """(blurred, sharp moment, u) triples with the paper's augmentation (module docstring)."""

    def __init__(self, windows: list[Window], data_cfg: dict[str, Any], seed: int = 0):
        self.windows = windows
        self.triples = triples(windows)
        self.cfg = data_cfg
        self.seed = int(seed)
        self.epoch = 0
        n = int(data_cfg.get("samples_per_epoch") or 0)
        self.length = n if n > 0 else len(self.triples)
        crop = int(data_cfg["crop"])
        h, w = read_image(windows[0].blurred).shape[:2]
        if crop > round(min(h, w) * float(data_cfg["scale_max"])):
            raise UsageError(f"data.crop = {crop} exceeds the {h}x{w} training images even at scale "
                             f"{data_cfg['scale_max']}", "lower data.crop (the paper: 256 on 256x256 windows)")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def index(self, i: int) -> tuple[int, int, float]:
        """The triple behind item ``i`` of the current epoch (a seeded pass over a permutation)."""
        n = len(self.triples)
        global_i = self.epoch * self.length + i
        perm = _rng(self.seed, 7, global_i // n).permutation(n)
        return self.triples[int(perm[global_i % n])]

    def __getitem__(self, i: int) -> dict[str, Any]:
        w, k, u = self.index(i)
        win = self.windows[w]
        b, s = scale_and_crop([_load(win.blurred), _load(win.frames[k])], int(self.cfg["crop"]),
                              float(self.cfg["scale_min"]), float(self.cfg["scale_max"]),
                              _rng(self.seed, 11, self.epoch, i))
        return {"blurred": b, "sharp": s, "u": torch.tensor(u, dtype=torch.float32)}


# -- a synthetic tree for tests and ``train cfmd --tiny`` (never for results) -------------------------
def write_synthetic_tree(root: Path, windows: dict[str, list[tuple[int, int]]], size: int = 32,
                         seed: int = 0, list_name: str | None = TRAIN_LIST) -> Path:
    """Write blur windows of a moving bright spot (the "left eye") on a smooth face-like
    background: ``windows[vid] = [(n, start frame), ...]``. Frames are named ``{frame:06d}``;
    blur = mean of the uint8 frames, floored as genBlurDataset.py does; the list (when
    ``list_name``) gives each window in FMR order, i.e. the frames sorted by spot (x, y).
    Returns ``root``."""
    from ...imageio import write_png

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    lines = []
    for vid, wins in sorted(windows.items()):
        base = rng.uniform(40, 200, 3).astype(np.float32)
        grad = rng.uniform(-2, 2, 3).astype(np.float32)
        for n, start in wins:
            names = [f"{start + i:06d}" for i in range(n)]
            mid = names[(n - 1) // 2]
            # the spot moves right-to-left then left-to-right: time order != FMR order
            xs = size * (0.3 + 0.4 * np.abs(np.linspace(-1, 1, n)) + 0.02 * rng.standard_normal(n))
            ys = size * (0.4 + 0.2 * np.linspace(0, 1, n))
            frames = []
            for i in range(n):
                img = base + grad * (xx[..., None] - size / 2) / size * 40
                spot = np.exp(-((xx - xs[i]) ** 2 + (yy - ys[i]) ** 2) / (2 * (size / 10) ** 2))
                img = img + 120 * spot[..., None]
                u8 = np.clip(np.round(img), 0, 255).astype(np.uint8)
                frames.append(u8)
                write_png(root / "sharp" / vid / f"blur{n:03d}" / mid / f"{names[i]}.png", u8)
            blur = (np.mean(np.stack(frames).astype(np.float32), 0)).clip(0, 255).astype(np.uint8)
            write_png(root / "blur" / vid / f"blur{n:03d}" / f"{mid}.png", blur)
            eye = [(int(xs[i]), int(ys[i])) for i in range(n)]
            order = sorted(range(n), key=lambda i: eye[i])  # stable: ties keep temporal order
            lines.append(f"{vid} blur{n:03d} {mid} " + " ".join(names[i] for i in order))
    if list_name:
        root.mkdir(parents=True, exist_ok=True)
        (root / list_name).write_text("\n".join(lines) + "\n")
    return root
