"""Shen et al. (CVPR 2018 / IJCV 2020) test sets: ``shen-helen`` and ``shen-celeba``.

Layout (``likesum/unsupimg:face_deblur/test.py``, PROTOCOLS.md §1)::

    <data_root>/Test_data_Helen/final_Helen_gt/{name}.png                       100 sharp, 128x128
    <data_root>/Test_data_Helen/final_Helen_blur/{name}_ker{01..10}_blur_k{13..27}.png
    <data_root>/Test_data_CelebA/final_CelebA_gt | final_CelebA_blur

(a ``shen/`` folder level under the data root is also accepted). 80 blurred images per face,
noise σ = 0.01 (paper). Results are reported per kernel size (meta ``kernel_size``). Kernels are
not part of the release; when ``Test_data_*/kernels/blur_k{K}.{npy,mat}`` exists (e.g. written
by ``faceblur-bench make-split --protocol shen``) :meth:`kernel` returns them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


@splits.register("shen-celeba")
class ShenCelebA(_Shen):
    folder = "CelebA"
    description = "Shen et al. CelebA test set: 100 faces x 80 uniform kernels (10 per size 13..27), noise 0.01"
    layout = ("<data_root>/Test_data_CelebA/final_CelebA_gt/{name}.png   (100, 128x128)\n"
              "<data_root>/Test_data_CelebA/final_CelebA_blur/{name}_ker{01..10}_blur_k{13..27}.png")
