"""``PairedFolders``: an ad-hoc split pairing a folder of restored images with references by name.

Used by ``faceblur-bench score``: every reference file ``R`` (any image suffix) is paired with the
restored file ``pattern.format(stem=R.stem, suffix=R.suffix, name=R.name)``. The "blurred" image
of each sample is the restored file, so scoring runs the identity method through the engine.
Pairs whose restored file is missing are refused up front, naming the first few.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataLayoutError, DataNotFoundError
from ..imageio import IMAGE_SUFFIXES
from .base import Sample, Split


class PairedFolders(Split):
    name = "folders"
    description = "restored images paired with references by file name"
    layout = "<restored>/<pattern(stem)>  paired with  <reference>/<stem>.<ext>"

    def __init__(self, restored: str | Path, reference: str | Path, pattern: str = "{stem}{suffix}"):
        super().__init__(data_root=Path(reference).parent)
        self.restored = Path(restored).expanduser()
        self.reference = Path(reference).expanduser()
        self.pattern = pattern

    @property
    def full_name(self) -> str:
        return f"folders:{self.reference.name}"

    def find(self) -> Path:
        for d, what in ((self.restored, "--restored"), (self.reference, "--reference")):
            if not d.is_dir():
                raise DataNotFoundError(f"{what} directory {d} does not exist", f"check the {what} path")
        return self.reference

    def samples(self) -> list[Sample]:
        self.find()
        refs = sorted(p for p in self.reference.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not refs:
            raise DataNotFoundError(f"no images in {self.reference}", f"suffixes: {', '.join(IMAGE_SUFFIXES)}")
        out, missing = [], []
        for r in refs:
            rel = self.pattern.format(stem=r.stem, suffix=r.suffix, name=r.name)
            p = self.restored / rel
            if self.restored.resolve() not in p.resolve().parents:
                raise DataLayoutError(f"pattern {self.pattern!r} escapes {self.restored}", "use a plain file-name pattern")
            if not p.is_file():
                missing.append(str(p))
                continue
            out.append(Sample(id=r.stem, blurred=p, sharp=r, meta={}))
        if missing:
            raise DataLayoutError(
                f"{len(missing)} of {len(refs)} references have no restored file, e.g. {missing[0]}",
                "check --pattern (placeholders {stem}, {suffix}, {name}; e.g. '{stem}_out.png')")
        return out
