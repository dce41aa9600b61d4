"""MSPL test sets (Lee et al. 2020; used by SAPPGAN, DFPGnet): ``mspl-center`` and ``mspl-random``.

Released layout (``sujyQ/SAPPGAN:test/test.py`` and ``test/blur_gen.py``; PROTOCOLS.md §1)::

    <data_root>/Test_data_center/Test_data_CelebA/CelebA_gt/{img}.png              80 sharp, 128x128
    <data_root>/Test_data_center/Test_data_CelebA/CelebA_blur/{img}_ker{NN}_blur_k{K}.png
    ...                         /Test_data_CelebA-HQ/CelebA-HQ_gt|CelebA-HQ_blur
    ...                         /Test_data_FFHQ/FFHQ_gt|FFHQ_blur
    <data_root>/test250kernels/blur_k{K}.mat   (optional; variable blurs_k{K}, K x K x N)

(``Test_data_random`` likewise; a ``mspl/`` folder level under the data root is also accepted, and
for MSPL-Center the folder name ``Test_data_ver01_CentorCrop`` that SAPPGAN's ``test/blur_gen.py``
writes.)
Each sharp image has 8 sizes (K = 13..27) x 10 kernels = 80 blurred images; kernel ids are
01-10 for CelebA, 11-20 for CelebA-HQ and 21-30 for FFHQ (columns of the kernel files).
The released files carry no noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataLayoutError
from ..registry import splits
from .base import Sample, Split
from .kernels import KERNEL_SIZES
from .layout import KernelStore, first_dir, made_count, scan_paired

#: subset name -> (folder name, kernel ids)
MSPL_SUBSETS: dict[str, tuple[str, range]] = {
    "celeba": ("CelebA", range(1, 11)),
    "celeba-hq": ("CelebA-HQ", range(11, 21)),
    "ffhq": ("FFHQ", range(21, 31)),
}


class _MSPL(Split):
    variant = ""
    subsets = tuple(MSPL_SUBSETS)
    #: sharp images per subset in the release (tests lower it to build small trees)
    EXPECTED_IMAGES: int | None = 80

    def __init__(self, data_root=None, subset=None, allow_partial=False):
        super().__init__(data_root, subset, allow_partial)
        self._kernels: KernelStore | None = None

    def candidates(self) -> list[Path]:
        names = [f"Test_data_{self.variant}"]
        if self.variant == "center":  # the folder name SAPPGAN's test/blur_gen.py writes
            names.append("Test_data_ver01_CentorCrop")
        return [root / d for d in names for root in (self.data_root, self.data_root / "mspl", self.data_root / "MSPL")]

    def find(self) -> Path:
        top = first_dir(self.candidates())
        if top is None:
            raise self.missing(self.data_root / f"Test_data_{self.variant}")
        return top

    def kernel_dir(self) -> Path | None:
        top = self.find()
        return first_dir([top.parent / "test250kernels", self.data_root / "test250kernels", top / "test250kernels"])

    def expected_counts(self) -> dict[str, int]:
        """Release counts (or those recorded by make-split) of the selected subsets."""
        top = self.find()
        n = 0
        for sub in ([self.subset] if self.subset else list(MSPL_SUBSETS)):
            n += made_count(top / f"Test_data_{MSPL_SUBSETS[sub][0]}") or self.EXPECTED_IMAGES or 0
        return {"sharp": n, "blurred": n * 80}

    def samples(self) -> list[Sample]:
        top = self.find()
        out: list[Sample] = []
        self.partial = False
        for sub in ([self.subset] if self.subset else list(MSPL_SUBSETS)):
            folder, ids = MSPL_SUBSETS[sub]
            sub_dir = top / f"Test_data_{folder}"
            if not sub_dir.is_dir():
                if self.allow_partial:
                    self.partial = True
                    continue
                raise DataLayoutError(f"{sub_dir} is missing (subset {sub!r} of {self.name})",
                                      f"place it as {top.name}/Test_data_{folder}/{folder}_gt and {folder}_blur, "
                                      f"or select present subsets with {self.name}/<subset>, or --allow-partial")
            items, issues = scan_paired(sub_dir / f"{folder}_gt", sub_dir / f"{folder}_blur", ids, KERNEL_SIZES,
                                        128, self.allow_partial, made_count(sub_dir) or self.EXPECTED_IMAGES)
            self.partial = self.partial or bool(issues)
            for it in items:
                out.append(Sample(
                    id=f"{sub}/{it.blurred.stem}", blurred=it.blurred, sharp=it.sharp,
                    meta={"subset": sub, "image": it.image, "kernel_id": it.kernel_id, "kernel_size": it.kernel_size}))
        if not out:
            raise DataLayoutError(f"{top}: no MSPL subset folders found", f"expected layout:\n{self.layout}")
        return out

    def kernel(self, sample: Sample) -> np.ndarray | None:
        """Kernel column ``kernel_id`` of ``test250kernels/blur_k{K}`` when the kernel files are present."""
        if self._kernels is None:
            self._kernels = KernelStore(self.kernel_dir())
        return self._kernels.get(int(sample.meta["kernel_size"]), int(sample.meta["kernel_id"]))


_LAYOUT = """{root}/Test_data_{v}/Test_data_CelebA/CelebA_gt/{{img}}.png                 (80 per subset, 128x128)
{root}/Test_data_{v}/Test_data_CelebA/CelebA_blur/{{img}}_ker{{NN}}_blur_k{{K}}.png  (NN 01-10, K 13..27)
{root}/Test_data_{v}/Test_data_CelebA-HQ/CelebA-HQ_gt|CelebA-HQ_blur               (NN 11-20)
{root}/Test_data_{v}/Test_data_FFHQ/FFHQ_gt|FFHQ_blur                              (NN 21-30)
{root}/test250kernels/blur_k{{K}}.mat   optional, variable blurs_k{{K}}"""


@splits.register("mspl-center")
class MSPLCenter(_MSPL):
    variant = "center"
    description = "MSPL-Center test set: 3 x 80 faces (CelebA, CelebA-HQ, FFHQ) x 80 uniform kernels, no noise"
    layout = _LAYOUT.format(root="<data_root>", v="center")


@splits.register("mspl-random")
class MSPLRandom(_MSPL):
    variant = "random"
    description = "MSPL-Random test set (random rotation/crop faces): 3 x 80 faces x 80 uniform kernels, no noise"
    layout = _LAYOUT.format(root="<data_root>", v="random")
