"""The ``demo`` split: a small synthetic face-deblurring set built from photos that ship inside
installed dependencies, so the benchmark runs end to end with no downloads.

Recipe (all of it recorded in ``manifest.json``):

1. Sources: insightface package data ``insightface/data/images/{t1.jpg, Tom_Hanks_54745.png,
   mask_*.jpg}`` (subset ``insightface``) and scikit-image ``astronaut()`` and ``camera()``
   (subset ``skimage``), located through the installed packages. ``skimage.data.lfw_subset()``
   is not used: its faces are 25x25 gray crops, too small for 128x128 ground truth. A missing
   source is skipped with a warning and listed under ``missing`` in the manifest.
2. Faces: facenet-pytorch MTCNN (weights inside the wheel, CPU) with ``keep_all=True``; a box is
   kept when its probability is >= :data:`MIN_PROB` (0.95) and its shorter side is >=
   :data:`MIN_BOX` (48 px). (The ``mask_*.jpg`` images are mask textures with no detectable face.)
3. Crop: a square of side ``round(MARGIN x max(box w, box h))`` (MARGIN = 1.3, i.e. 15 % of the
   box on each side) centred on the box centre, shrunk to the image's shorter side if larger and
   shifted to lie inside the image; resized to 128x128 with PIL bicubic. Gray photos are
   replicated to RGB. Faces are named ``{subset}_{photo}_{j:02d}`` (j in reading order).
4. Blur: a bank of :data:`N_KERNELS` Chakrabarti-style spline kernels per size K in 13, 15, ..., 27
   (``kernel_bank(N_KERNELS, seed=seed)``); face number ``f`` uses kernel id ``f mod N_KERNELS + 1``
   at every size (8 blurred images per face). Reflect padding + valid convolution
   (:func:`~faceblur_bench.data.degrade.blur_image`), Gaussian noise σ = 2/255 (MSPL training
   recipe) drawn from ``numpy.random.default_rng(noise_seed)`` (``noise_seed`` stored per sample),
   rounded and clipped to uint8.

Layout under ``<data_root>/demo/`` (MSPL test-set style)::

    sharp/{face}.png                        128x128 RGB
    blur/{face}_ker{NN}_blur_k{K}.png       128x128 RGB
    kernels/blur_k{K}.npy                   (N_KERNELS, K, K) float64, unit sum
    manifest.json                           sha256 per file, seed, sources used / missing, samples

The split is built on first use (``find()``/``samples()``) under a file lock; a build with the
same seed and the same package versions reproduces every file byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataLayoutError, DataNotFoundError
from ..files import sha256_file
from ..imageio import read_image, write_png
from ..registry import splits
from ..results import atomic_write_text
from .base import Sample, Split
from .kernels import KERNEL_SIZES, check_kernel, kernel_bank
from .layout import load_kernel_npy

DEMO_VERSION = 1
DEFAULT_SEED = 0
MIN_PROB = 0.95
MIN_BOX = 48
MARGIN = 1.3
SIZE = 128
N_KERNELS = 10
#: σ of the demo's Gaussian noise: MSPL's training noise, ``make_split_args.NOISE_PRESETS["mspl-train"]``
#: (tests/test_cli_listings.py asserts they agree). A number here, not an import: listing splits
#: imports this module, and ``degrade`` imports torch
NOISE_SIGMA = 2.0 / 255.0
INSIGHTFACE_PHOTOS = ("t1.jpg", "Tom_Hanks_54745.png", "mask_black.jpg", "mask_blue.jpg",
                      "mask_green.jpg", "mask_white.jpg")
SKIMAGE_PHOTOS = ("astronaut", "camera")


_sha256 = sha256_file


def find_sources() -> tuple[list[tuple[str, str, np.ndarray]], list[str]]:
    """Load the source photos: ``([(subset, photo_name, uint8 (H, W, 3))], [missing names])``."""
    found: list[tuple[str, str, np.ndarray]] = []
    missing: list[str] = []
    try:
        import insightface

        img_dir = Path(insightface.__file__).resolve().parent / "data" / "images"
    except Exception:  # package absent or broken
        img_dir = None
    for fname in INSIGHTFACE_PHOTOS:
        path = img_dir / fname if img_dir is not None else None
        if path is None or not path.is_file():
            missing.append(f"insightface:{fname}")
            continue
        found.append(("insightface", Path(fname).stem, read_image(path)))
    try:
        import skimage.data as skdata
    except Exception:
        skdata = None
    for name in SKIMAGE_PHOTOS:
        try:
            arr = np.asarray(getattr(skdata, name)())
        except Exception:
            missing.append(f"skimage:{name}")
            continue
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        found.append(("skimage", name, np.ascontiguousarray(arr[..., :3].astype(np.uint8))))
    return found, missing


def square_crop_box(box: np.ndarray, height: int, width: int, margin: float = MARGIN) -> tuple[int, int, int]:
    """``(top, left, side)`` of the square crop around a ``(x1, y1, x2, y2)`` box (see module doc)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = int(round(margin * max(x2 - x1, y2 - y1)))
    side = max(1, min(side, height, width))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    left = min(max(left, 0), width - side)
    top = min(max(top, 0), height - side)
    return top, left, side


def crop_face(img: np.ndarray, crop: tuple[int, int, int] | list[int], size: int = SIZE) -> np.ndarray:
    """The face crop of a photo: ``img[top:top+side, left:left+side]`` (``crop`` = ``(top, left,
    side)``, :func:`square_crop_box`) resized to ``size`` x ``size`` with PIL bicubic, uint8 RGB.
    The one crop rule of the demo split, ``folder:DIR`` splits and the ``folder`` method's
    full-photo outputs."""
    from PIL import Image

    top, left, side = (int(v) for v in crop)
    patch = np.ascontiguousarray(img[top:top + side, left:left + side])
    return np.asarray(Image.fromarray(patch).resize((size, size), Image.BICUBIC), dtype=np.uint8)


def detect_faces(photos: list[tuple[str, str, np.ndarray]]) -> list[dict[str, Any]]:
    """Run MTCNN on each photo; return kept faces as dicts with ``name``, ``subset``, ``photo``,
    ``box`` (x1, y1, x2, y2 rounded to 0.01 px), ``prob``, ``crop`` (top, left, side) and ``image``
    (uint8 128x128x3), sorted by photo then reading order (top-to-bottom rows, left to right)."""
    import torch
    from facenet_pytorch import MTCNN
    from PIL import Image

    mtcnn = MTCNN(keep_all=True, device=torch.device("cpu"))
    faces: list[dict[str, Any]] = []
    for subset, photo, img in photos:
        with torch.no_grad():
            boxes, probs = mtcnn.detect(Image.fromarray(img))
        if boxes is None:
            continue
        # numpy 2: detect may hand back object arrays -> convert explicitly
        boxes = np.asarray([np.asarray(b, dtype=np.float64) for b in boxes], dtype=np.float64).reshape(-1, 4)
        probs = np.asarray([float(p) if p is not None else 0.0 for p in probs], dtype=np.float64)
        keep = [i for i in range(len(boxes))
                if probs[i] >= MIN_PROB and min(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]) >= MIN_BOX]
        # reading order: rows of ~one box height, then x
        keep.sort(key=lambda i: (round(boxes[i, 1] / 100.0), boxes[i, 0]))
        for j, i in enumerate(keep):
            h, w = img.shape[:2]
            top, left, side = square_crop_box(boxes[i], h, w)
            faces.append({
                "name": f"{subset}_{photo.replace('.', '_')}_{j:02d}",
                "subset": subset, "photo": photo,
                "box": [round(float(v), 2) for v in boxes[i]], "prob": round(float(probs[i]), 6),
                "crop": [top, left, side], "image": crop_face(img, (top, left, side)),
            })
    return faces


def noise_seed_for(seed: int, face_index: int, kernel_size: int) -> int:
    """Per-sample noise seed (a 32-bit integer derived from the split seed)."""
    return int(np.random.SeedSequence([int(seed), 7, face_index, kernel_size]).generate_state(1)[0])


def build_demo(out_dir: str | Path, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Build the demo split into ``out_dir`` (must not exist or be empty); return the manifest."""
    import importlib.metadata as md

    out = Path(out_dir)
    photos, missing = find_sources()
    for m in missing:
        warnings.warn(f"demo split: source photo {m} not found in the installed packages; building from the rest",
                      stacklevel=2)
    if not photos:
        raise DataNotFoundError(
            "demo split: none of its source photos were found (insightface/data/images/*, skimage.data)",
            "install the project's dependencies (`pip install insightface scikit-image`)")
    faces = detect_faces(photos)
    used = sorted({f"{f['subset']}:{f['photo']}" for f in faces})
    no_face = sorted({f"{s}:{p}" for s, p, _ in photos} - set(used))
    if not faces:
        raise DataNotFoundError("demo split: MTCNN found no usable face in the source photos",
                                "check that facenet-pytorch and its bundled MTCNN weights are installed")
    from .degrade import blur_image  # torch: only when the demo is built

    bank = kernel_bank(N_KERNELS, KERNEL_SIZES, seed=seed, kind="spline")
    (out / "kernels").mkdir(parents=True, exist_ok=True)
    for k, arr in bank.items():
        np.save(out / "kernels" / f"blur_k{k}.npy", arr)
    samples = []
    for fi, face in enumerate(faces):
        write_png(out / "sharp" / f"{face['name']}.png", face["image"])
        kid = fi % N_KERNELS + 1
        for k in KERNEL_SIZES:
            ns = noise_seed_for(seed, fi, k)
            blurred = blur_image(face["image"], bank[k][kid - 1], NOISE_SIGMA, ns)
            stem = f"{face['name']}_ker{kid:02d}_blur_k{k}"
            write_png(out / "blur" / f"{stem}.png", blurred)
            samples.append({"id": stem, "blurred": f"blur/{stem}.png", "sharp": f"sharp/{face['name']}.png",
                            "subset": face["subset"], "face": face["name"], "kernel_id": kid,
                            "kernel_size": k, "noise_seed": ns})
    files = sorted(p for p in out.rglob("*") if p.is_file())

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    manifest = {
        "split": "demo", "demo_version": DEMO_VERSION, "seed": int(seed),
        "recipe": {"detector": "facenet-pytorch MTCNN keep_all, cpu", "min_prob": MIN_PROB, "min_box_px": MIN_BOX,
                   "crop_side": f"{MARGIN} x max(box w, h), clamped inside the photo", "resize": "PIL bicubic to 128x128",
                   "kernels": f"spline (Chakrabarti-style), {N_KERNELS} per size, kernel_bank(seed)",
                   "blur": "reflect pad (K-1)/2 + scipy.signal.convolve valid, float32 image",
                   "noise_sigma": NOISE_SIGMA, "noise": "numpy default_rng(noise_seed).standard_normal",
                   "quantisation": "round(255x).clip(0,255) uint8"},
        "sources_used": used, "sources_without_face": no_face, "missing": missing,
        "faces": [{k: v for k, v in f.items() if k != "image"} for f in faces],
        "packages": {p: version(p) for p in ("insightface", "scikit-image", "facenet-pytorch", "torch",
                                             "numpy", "scipy", "pillow")},
        "samples": samples,
        "files": {str(p.relative_to(out)).replace(os.sep, "/"): _sha256(p) for p in files},
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def ensure_demo(data_root: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Return ``<data_root>/demo``, building it first (under a file lock) if it is absent."""
    from filelock import FileLock

    root = Path(data_root)
    target = root / "demo"
    if (target / "manifest.json").is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataNotFoundError(f"demo split: cannot create the data root {root} ({exc})",
                                "pass a writable --data-root or set $FACEBLUR_DATA") from None
    with FileLock(str(root / ".demo.lock"), timeout=600):
        if (target / "manifest.json").is_file():  # another process built it meanwhile
            return target
        tmp = root / f".demo.build-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            build_demo(tmp, seed=seed)
            if target.exists():  # leftover of an interrupted build without manifest
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


@splits.register("demo")
class DemoSplit(Split):
    """Synthetic demo split built from face photos bundled with insightface and scikit-image."""

    name = "demo"
    description = ("~9 faces from photos bundled with insightface/scikit-image, 128x128, each blurred with one "
                   "spline kernel per size 13..27 plus noise σ=2/255; built on first use, no download")
    layout = ("demo/\n  sharp/{face}.png\n  blur/{face}_ker{NN}_blur_k{K}.png\n  kernels/blur_k{K}.npy\n"
              "  manifest.json\n(built automatically on first use)")
    subsets = ("insightface", "skimage")

    def __init__(self, data_root: str | Path | None = None, subset: str | None = None,
                 allow_partial: bool = False, seed: int = DEFAULT_SEED):
        super().__init__(data_root, subset, allow_partial)
        self.seed = seed
        self._kernels: dict[int, np.ndarray] = {}

    def find(self) -> Path:
        return ensure_demo(self.data_root, self.seed)

    def manifest(self) -> dict[str, Any]:
        path = self.find() / "manifest.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataLayoutError(f"{path}: unreadable demo manifest ({exc})",
                                  f"delete {path.parent} and it will be rebuilt") from None

    def candidates(self) -> list[Path]:
        return [self.data_root / "demo"]

    def kernel_dir(self) -> Path:
        return self.find() / "kernels"

    def expected_counts(self) -> dict[str, int]:
        recs = [r for r in self.manifest()["samples"] if not self.subset or r["subset"] == self.subset]
        return {"sharp": len({r["sharp"] for r in recs}), "blurred": len(recs)}

    def samples(self) -> list[Sample]:
        root = self.find()
        man = self.manifest()
        if man.get("seed") != self.seed:
            raise DataLayoutError(f"{root}: demo split was built with seed {man.get('seed')}, not {self.seed}",
                                  f"delete {root} to rebuild, or use another --data-root")
        out: list[Sample] = []
        for rec in man["samples"]:
            if self.subset and rec["subset"] != self.subset:
                continue
            blurred, sharp = root / rec["blurred"], root / rec["sharp"]
            for p in (blurred, sharp):
                if not p.resolve().is_relative_to(root.resolve()):
                    raise DataLayoutError(f"{root / 'manifest.json'}: entry {p} escapes the split directory",
                                          "the manifest is corrupt; delete the demo directory to rebuild")
                if not p.is_file():
                    raise DataLayoutError(f"demo split: {p} is missing", f"delete {root} and it will be rebuilt")
            meta = {k: rec[k] for k in ("subset", "face", "kernel_id", "kernel_size", "noise_seed")}
            out.append(Sample(id=rec["id"], blurred=blurred, sharp=sharp, meta=meta))
        return out

    def kernel(self, sample: Sample) -> np.ndarray:
        """The true K x K unit-sum kernel used for ``sample`` (float64)."""
        k = int(sample.meta["kernel_size"])
        if k not in self._kernels:
            path = self.find() / "kernels" / f"blur_k{k}.npy"
            if not path.is_file():
                raise DataLayoutError(f"demo split: kernel file {path} is missing",
                                      f"delete {path.parent.parent} and it will be rebuilt")
            self._kernels[k] = load_kernel_npy(path, k)
        return check_kernel(self._kernels[k][int(sample.meta["kernel_id"]) - 1],
                            f"{self.full_name} kernel k{k} #{sample.meta['kernel_id']}")
