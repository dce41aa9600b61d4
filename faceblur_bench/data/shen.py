"""Shen et al. (CVPR 2018 / IJCV 2020) test sets: ``shen-helen`` and ``shen-celeba``.

Layout (``likesum/unsupimg:face_deblur/test.py``, PROTOCOLS.md §1)::

    <data_root>/Test_data_Helen/final_Helen_gt/{name}.png                       100 sharp, 128x128
    <data_root>/Test_data_Helen/final_Helen_blur/{name}_ker{01..10}_blur_k{13..27}.png
    <data_root>/Test_data_CelebA/final_CelebA_gt | final_CelebA_blur

(a ``shen/`` folder level under the data root is also accepted). 80 blurred images per face,
noise σ = 0.01 (paper). Results are reported per kernel size (meta ``kernel_size``). Kernels are
not part of the release; when ``Test_data_*/kernels/blur_k{K}.{npy,mat}`` exists (e.g. written
by ``faceblur-bench make-split --protocol shen``) :meth:`kernel` returns them.

MSPL's verification protocol on ``shen-celeba`` (``MSPL-GAN:src/test_benchmark/face_verification.ipynb``)
pairs every restored image of face ``{name}`` with one CelebA image of the same and one of a
different person, named in ``shen_celeba_{positive,negative}_mod.txt`` (lines ``{name} {file}``,
files of CelebA's ``img_align_celeba``). Those lists are not shipped: copy them into
``Test_data_CelebA/`` and put CelebA's aligned images at ``<data_root>/celebA/img_align_celeba/``
(or ``<data_root>/img_align_celeba/``); samples then carry ``meta["positive"]`` /
``meta["negative"]`` (absolute paths), which the verification metrics use, and the lists and the
partner images enter the split's manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataLayoutError
from ..registry import splits
from .base import Sample, Split
from .kernels import KERNEL_SIZES
from .layout import KernelStore, first_dir, made_count, scan_paired


class _Shen(Split):
    folder = ""
    EXPECTED_IMAGES: int | None = 100

    def __init__(self, data_root=None, subset=None, allow_partial=False):
        super().__init__(data_root, subset, allow_partial)
        self._kernels: KernelStore | None = None

    def candidates(self) -> list[Path]:
        d = f"Test_data_{self.folder}"
        return [self.data_root / d, self.data_root / "shen" / d]

    def find(self) -> Path:
        d = f"Test_data_{self.folder}"
        top = first_dir(self.candidates())
        if top is None:
            raise self.missing(self.data_root / d)
        return top

    def expected_counts(self) -> dict[str, int]:
        n = made_count(self.find()) or self.EXPECTED_IMAGES or 0
        return {"sharp": n, "blurred": n * 80}

    def samples(self) -> list[Sample]:
        top = self.find()
        f = self.folder
        items, issues = scan_paired(top / f"final_{f}_gt", top / f"final_{f}_blur", range(1, 11), KERNEL_SIZES,
                                    128, self.allow_partial, made_count(top) or self.EXPECTED_IMAGES)
        self.partial = bool(issues)
        sub = f.lower()
        return [Sample(id=it.blurred.stem, blurred=it.blurred, sharp=it.sharp,
                       meta={"subset": sub, "image": it.image, "kernel_id": it.kernel_id,
                             "kernel_size": it.kernel_size}) for it in items]

    def kernel_dir(self) -> Path:
        return self.find() / "kernels"

    def kernel(self, sample: Sample) -> np.ndarray | None:
        if self._kernels is None:
            self._kernels = KernelStore(self.find() / "kernels")
        return self._kernels.get(int(sample.meta["kernel_size"]), int(sample.meta["kernel_id"]))


@splits.register("shen-helen")
class ShenHelen(_Shen):
    folder = "Helen"
    description = "Shen et al. Helen test set: 100 faces x 80 uniform kernels (10 per size 13..27), noise 0.01"
    layout = ("<data_root>/Test_data_Helen/final_Helen_gt/{name}.png   (100, 128x128)\n"
              "<data_root>/Test_data_Helen/final_Helen_blur/{name}_ker{01..10}_blur_k{13..27}.png")


PAIR_LISTS = ("shen_celeba_positive_mod.txt", "shen_celeba_negative_mod.txt")
CELEBA_DIRS = ("celebA/img_align_celeba", "celeba/img_align_celeba", "CelebA/img_align_celeba", "img_align_celeba")


def read_partner_list(path: Path) -> dict[str, str]:
    """``{face name: CelebA file}`` from an MSPL ``shen_celeba_*_mod.txt`` list."""
    out: dict[str, str] = {}
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        t = line.split()
        if not t:
            continue
        if len(t) != 2 or t[0] in out:
            raise DataLayoutError(f"{path}:{i}: cannot read {line.strip()!r}" if len(t) != 2 else
                                  f"{path}:{i}: face {t[0]} listed twice",
                                  "expected one 'NAME FILE.jpg' line per test face, as in MSPL-GAN's src/test_benchmark/")
        out[t[0]] = t[1]
    return out


@splits.register("shen-celeba")
class ShenCelebA(_Shen):
    folder = "CelebA"
    description = "Shen et al. CelebA test set: 100 faces x 80 uniform kernels (10 per size 13..27), noise 0.01"
    layout = ("<data_root>/Test_data_CelebA/final_CelebA_gt/{name}.png   (100, 128x128)\n"
              "<data_root>/Test_data_CelebA/final_CelebA_blur/{name}_ker{01..10}_blur_k{13..27}.png\n"
              f"optional (MSPL verification pairs): Test_data_CelebA/{PAIR_LISTS[0]}, {PAIR_LISTS[1]} "
              "+ <data_root>/celebA/img_align_celeba/")

    def pair_lists(self) -> tuple[Path, Path] | None:
        top = first_dir(self.candidates())
        if top is None:
            return None
        found = [top / n for n in PAIR_LISTS]
        return (found[0], found[1]) if all(p.is_file() for p in found) else None

    def celeba_dir(self) -> Path | None:
        return first_dir([self.data_root / d for d in CELEBA_DIRS])

    def samples(self) -> list[Sample]:
        base = super().samples()
        lists = self.pair_lists()
        if lists is None:
            return base
        cdir = self.celeba_dir()
        if cdir is None:
            raise DataLayoutError(f"{lists[0].parent}: MSPL verification lists found but no CelebA image folder "
                                  f"(looked in {', '.join(str(self.data_root / d) for d in CELEBA_DIRS)})",
                                  "put CelebA's img_align_celeba there, or move the two lists away")
        pos, neg = (read_partner_list(p) for p in lists)
        out = []
        for s in base:
            name = str(s.meta["image"])
            for lst, path in ((pos, lists[0]), (neg, lists[1])):
                if name not in lst:
                    raise DataLayoutError(f"{path}: no partner for face {name}",
                                          "use the lists that belong to this test set")
            meta = dict(s.meta, positive=str(cdir / pos[name]), negative=str(cdir / neg[name]))
            out.append(Sample(id=s.id, blurred=s.blurred, sharp=s.sharp, frames=s.frames, meta=meta))
        return out

    def extra_files(self) -> list[Path]:
        """The pair lists and the CelebA partner images they name (hashed into the manifest)."""
        lists = self.pair_lists()
        cdir = self.celeba_dir()
        if lists is None or cdir is None:
            return []
        partners = {cdir / f for p in lists for f in read_partner_list(p).values()}
        return [*lists, *sorted(q for q in partners if q.is_file())]
