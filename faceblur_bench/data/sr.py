"""Joint face SR + deblurring test set of Yun et al. (IEEE Access 2020): split ``celebahq-sr8``.

Layout read by ``JungUnYun/Face_SRnDeblur:FaceSRnDeblur_wN_test.ipynb`` (ground-truth path =
input path with ``valx8`` replaced by ``val_GT`` and the extension by ``.jpg``)::

    <data_root>/celebahq-sr8/valx8/{name}.png    blurred low-resolution input, 32x32
    <data_root>/celebahq-sr8/val_GT/{name}.jpg   ground truth, 256x256

(a folder named ``Face_SRnDeblur`` or ``face_SRnDeblur`` is also accepted). The paper's test set
holds 1,200 CelebA-HQ faces; ``scale = 8``. The synthesis code is not released.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataLayoutError
from ..registry import splits
from .base import Sample, Split
from .layout import IMAGE_EXTS, check_size


@splits.register("celebahq-sr8")
class CelebAHQSR8(Split):
    name = "celebahq-sr8"
    description = "CelebA-HQ joint SR x8 + deblur (Yun et al.): 32x32 blurred input, 256x256 ground truth"
    layout = ("<data_root>/celebahq-sr8/valx8/{name}.png    (32x32 blurred LR input)\n"
              "<data_root>/celebahq-sr8/val_GT/{name}.jpg   (256x256 ground truth); 1,200 faces")
    scale = 8
    EXPECTED_IMAGES: int | None = 1200

    def candidates(self) -> list[Path]:
        return [self.data_root / n for n in ("celebahq-sr8", "Face_SRnDeblur", "face_SRnDeblur")]

    def find(self) -> Path:
        for d in self.candidates():
            if (d / "valx8").is_dir():
                return d
        raise self.missing(self.data_root / "celebahq-sr8")

    def expected_counts(self) -> dict[str, int]:
        return {"images": self.EXPECTED_IMAGES or 0}

    def samples(self) -> list[Sample]:
        top = self.find()
        gt_dir = top / "val_GT"
        if not gt_dir.is_dir():
            raise DataLayoutError(f"{gt_dir} is missing", "the ground truth folder val_GT sits next to valx8")
        out: list[Sample] = []
        issues: list[str] = []
        for p in sorted((top / "valx8").iterdir()):
            if p.name.startswith(".") or p.is_dir():
                continue
            if p.suffix.lower() not in IMAGE_EXTS:
                raise DataLayoutError(f"{p}: unexpected file in valx8", "expected {name}.png images")
            gt = next((gt_dir / f"{p.stem}{e}" for e in (".jpg", ".png") if (gt_dir / f"{p.stem}{e}").is_file()), None)
            if gt is None:
                msg = f"{p}: no ground truth {gt_dir / (p.stem + '.jpg')}"
                if not self.allow_partial:
                    raise DataLayoutError(msg, "restore val_GT, or pass allow_partial=True (--allow-partial)")
                issues.append(msg)
                continue
            check_size(p, (32, 32))
            check_size(gt, (256, 256))
            out.append(Sample(id=p.stem, blurred=p, sharp=gt, meta={"subset": "celeba-hq", "image": p.stem}))
        if self.EXPECTED_IMAGES and len(out) != self.EXPECTED_IMAGES:
            msg = f"{top}: {len(out)} image pairs, the test set has {self.EXPECTED_IMAGES}"
            if not self.allow_partial:
                raise DataLayoutError(msg, "re-extract the test set, or pass allow_partial=True (--allow-partial)")
            issues.append(msg)
        self.partial = bool(issues)
        if not out:
            raise DataLayoutError(f"{top / 'valx8'}: no images", f"expected layout:\n{self.layout}")
        return out
