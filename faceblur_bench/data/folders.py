"""``PairedFolders``: an ad-hoc split pairing a folder of restored images with references by name.

Used by ``faceblur-bench score``: every reference file ``R`` (an image or a video suffix) is paired
with the restored file named by ``--pattern`` (placeholders ``{stem}``, ``{suffix}``, ``{name}``
of ``R``, checked by :func:`~faceblur_bench.data.patterns.pattern_fields`). The "blurred" image
of each sample is the restored file, so scoring runs the identity method through the engine.

Rules:
- the two folders are the split's roots (made absolute once, from the current directory); they
  may have any parents, and nothing outside them is read: a restored or reference file that is a
  symlink to somewhere else is refused naming the symlink, a pattern that leads out of
  ``--restored`` is refused naming the pattern;
- entries of the reference folder with an image suffix that are not files (e.g. a directory
  named ``d.png``) are skipped with a warning;
- sequences (GIF, APNG, multi-page TIFF, video): when either file of a pair has several frames
  the pair is one sample per frame, id ``<stem>@f<i>`` (meta ``frame_index``, ``sequence_length``),
  frame ``i`` scored against frame ``i``; different frame counts make one failed row naming both;
- a reference whose restored file is missing is a failed row (``meta["unusable"]``) and the rest
  are scored (the command exits 1); when *no* reference has a restored file the pattern is wrong:
  :class:`DataLayoutError` (exit 2).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..errors import DataLayoutError, DataNotFoundError, ImageError
from ..files import check_inside, not_a_file
from ..imageio import SEQUENCE_SUFFIXES, frame_count
from ..text import printable
from .base import Sample, Split, absolute_path
from .patterns import pattern_fields

#: the placeholders of ``--pattern``
PLACEHOLDERS = ("stem", "suffix", "name")


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` when it is a valid ``--pattern`` (the shared validator,
    :func:`~faceblur_bench.data.patterns.pattern_fields`, over :data:`PLACEHOLDERS`)."""
    pattern_fields(pattern, PLACEHOLDERS, "--pattern")
    return pattern


class PairedFolders(Split):
    name = "folders"
    description = "restored images paired with references by file name"
    layout = "<restored>/<pattern(stem)>  paired with  <reference>/<stem>.<ext>"

    def __init__(self, restored: str | Path, reference: str | Path, pattern: str = "{stem}{suffix}"):
        self.restored = absolute_path(restored)
        self.reference = absolute_path(reference)
        # both folders are roots; the data root (what manifest paths are relative to) is the
        # deepest folder holding both
        super().__init__(data_root=os.path.commonpath([self.restored, self.reference]))
        self.pattern = check_pattern(pattern)

    @property
    def full_name(self) -> str:
        return f"folders:{printable(self.reference.name)}"

    def find(self) -> Path:
        for d, what in ((self.restored, "--restored"), (self.reference, "--reference")):
            if not d.is_dir():
                raise DataNotFoundError(f"{what} directory {d} does not exist", f"check the {what} path")
        return self.reference

    def samples(self) -> list[Sample]:
        self.find()
        refs = []
        for r in sorted(self.reference.iterdir()):
            if r.suffix.lower() not in SEQUENCE_SUFFIXES:
                continue
            why = not_a_file(r)  # by stat: a FIFO is never opened
            if why is not None:
                what = why.removeprefix("is ").removesuffix(", not a regular file")
                warnings.warn(f"{r}: not an image file ({what}); skipped", stacklevel=2)
                continue
            check_inside(self.reference, r, "reference")
            refs.append(r)
        if not refs:
            raise DataNotFoundError(f"no images in {self.reference}", f"suffixes: {', '.join(SEQUENCE_SUFFIXES)}")
        out, missing = [], []
        for r in refs:
            rel = self.pattern.format(stem=r.stem, suffix=r.suffix, name=r.name)
            p = self.restored / rel
            if self.restored not in Path(os.path.normpath(p)).parents:
                raise DataLayoutError(f"pattern {self.pattern!r} maps {r.name} to {rel!r}, which escapes "
                                      f"{self.restored}", "use a plain file-name pattern")
            if not p.is_file():
                missing.append(str(p))
                out.append(Sample(id=r.stem, blurred=p, sharp=r, meta={
                    "unusable": f"no restored file for {r.name}: expected {p} (check --pattern)"}))
                continue
            check_inside(self.restored, p, "restored file")
            out.extend(self._pair(r, p))
        if len(missing) == len(refs):
            raise DataLayoutError(
                f"none of the {len(refs)} references has a restored file, e.g. {missing[0]}",
                "check --pattern (placeholders {stem}, {suffix}, {name}; e.g. '{stem}_out.png')")
        return out

    @staticmethod
    def _pair(ref: Path, restored: Path) -> list[Sample]:
        """One sample for two still images; one per frame for two sequences of equal length."""
        try:
            n_ref, n_out = frame_count(ref), frame_count(restored)
        except ImageError:  # unreadable: the sample's decode names the file
            return [Sample(id=ref.stem, blurred=restored, sharp=ref, meta={})]
        if n_ref == n_out == 1:
            return [Sample(id=ref.stem, blurred=restored, sharp=ref, meta={})]
        if n_ref != n_out:
            return [Sample(id=ref.stem, blurred=restored, sharp=ref, meta={
                "unusable": f"{restored.name} has {n_out} frame(s), the reference {ref.name} has "
                            f"{n_ref}: sequences are paired frame by frame"})]
        return [Sample(id=f"{ref.stem}@f{i}", blurred=restored, sharp=ref,
                       meta={"frame_index": i, "sequence_length": n_ref}) for i in range(n_ref)]
