"""Real blurred images of Lai et al. (CVPR 2016): split ``lai-real`` (no ground truth).

The 100 image names and their kernel-size estimates are ``list/real.txt`` of
``phoenix104104/cvpr16_deblur_study``; subset ``people`` is that repository's
``attributes/real_people.txt`` (12 images with faces). Layout::

    <data_root>/lai-real/{name}.png     (or .jpg; a ``blurry/`` sub-folder is also accepted)

(``real_dataset/`` is accepted as the folder name too). Reference metrics are not applicable.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataLayoutError
from ..registry import splits
from .base import Sample, Split
from .layout import IMAGE_EXTS, first_dir

# name:kernel-size estimate, from phoenix104104/cvpr16_deblur_study:list/real.txt
_REAL_LIST = (
    "bird:51 boat1:51 boat2:51 book1:25 book2:25 book3:51 book4:51 boy_statue:51 bridge:51 building1:51 "
    "building2:51 butchershop:25 cairo1979:51 car_house:25 car1:25 car2:75 car3:101 car4:101 car5:75 church:25 "
    "coke:51 cross_stitch:25 dinner:51 dog:51 elephant:25 face:51 face2:51 family:51 ferry:75 fishes:51 "
    "flower:25 fountain1:51 garden:51 girls:25 hanzi:25 harubang:51 house1:25 house2:25 house3:51 house4:51 "
    "ian1:51 istanbul:25 lady_portrait:25 leaf:75 lion:25 livingroom:51 lobster:51 lyndsey:51 mukta:25 "
    "night1:101 night2:51 night3:75 night4:75 night5:25 night6:51 notredame:75 nv:51 outdoor:25 pagode:25 "
    "Pantheon:51 petrol_station1:25 picasso:51 pietro:25 postcard:101 redtree:51 roma:75 sculpture:25 shelf:151 "
    "shrink:25 singing:25 statue1:51 statue2:25 stone:25 street_cars:51 street1:125 street2:51 street3:51 "
    "street4:101 subway:25 summerhouse:75 sydney_opera:75 text1:75 text2:101 text3:125 text4:75 text5:51 "
    "text6:51 text7:51 text8:51 text9:51 text10:75 text11:75 text12:75 topresso:51 torres:25 toy:101 vase:51 "
    "vintage_car:25 wall:51 wheel:25"
)
REAL_IMAGES: dict[str, int] = {n: int(k) for n, k in (e.split(":") for e in _REAL_LIST.split())}
# attributes/real_people.txt (1-based indices 13 23 24 26 27 28 34 49 62 63 70 78)
PEOPLE: tuple[str, ...] = ("cairo1979", "dinner", "dog", "face", "face2", "family", "girls", "mukta",
                           "picasso", "pietro", "singing", "street4")


@splits.register("lai-real")
class LaiReal(Split):
    name = "lai-real"
    description = "Lai et al. CVPR16 real blurred images (100; subset 'people' = 12 with faces), no ground truth"
    layout = "<data_root>/lai-real/{name}.png   (100 names of cvpr16_deblur_study list/real.txt)"
    subsets = ("people",)
    has_reference = False

    def candidates(self) -> list[Path]:
        return [self.data_root / "lai-real", self.data_root / "lai_real", self.data_root / "real_dataset"]

    def find(self) -> Path:
        top = first_dir(self.candidates())
        if top is None:
            raise self.missing(self.data_root / "lai-real")
        if (top / "blurry").is_dir():
            top = top / "blurry"
        return top

    def expected_counts(self) -> dict[str, int]:
        return {"images": len(PEOPLE) if self.subset else len(REAL_IMAGES)}

    def samples(self) -> list[Sample]:
        top = self.find()
        found: dict[str, Path] = {}
        for p in sorted(top.iterdir()):
            if p.name.startswith(".") or p.is_dir():
                continue
            if p.suffix.lower() not in IMAGE_EXTS or p.stem not in REAL_IMAGES:
                raise DataLayoutError(f"{p}: not one of the 100 images of list/real.txt",
                                      "keep only the released images ({name}.png) in this folder")
            if p.stem in found:
                raise DataLayoutError(f"{p}: duplicate of {found[p.stem]}", "keep one file per image name")
            found[p.stem] = p
        wanted = list(PEOPLE) if self.subset == "people" else list(REAL_IMAGES)
        missing = [n for n in wanted if n not in found]
        if missing:
            if not self.allow_partial:
                raise DataLayoutError(f"{top / (missing[0] + '.png')} is missing ({len(missing)} of {len(wanted)} missing)",
                                      "place all images, or pass allow_partial=True (--allow-partial)")
            self.partial = True
        else:
            self.partial = False
        return [Sample(id=n, blurred=found[n], sharp=None,
                       meta={"subset": "people" if n in PEOPLE else "all", "image": n,
                             "kernel_size_estimate": REAL_IMAGES[n]})
                for n in wanted if n in found]
