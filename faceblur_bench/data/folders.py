"""``PairedFolders``: an ad-hoc split pairing a folder of restored images with references by name.

Used by ``faceblur-bench score``: every reference file ``R`` (any image suffix) is paired with the
restored file ``pattern.format(stem=R.stem, suffix=R.suffix, name=R.name)``. The "blurred" image
of each sample is the restored file, so scoring runs the identity method through the engine.

Rules:
- the two folders are the split's roots (made absolute once, from the current directory); they
  may have any parents, and nothing outside them is read: a restored or reference file that is a
  symlink to somewhere else is refused naming the symlink, a pattern that leads out of
  ``--restored`` is refused naming the pattern;
- ``--pattern`` uses only the placeholders ``{stem}``, ``{suffix}``, ``{name}`` (at least one);
  anything else is a :class:`UsageError` (exit 2) listing them;
- entries of the reference folder with an image suffix that are not files (e.g. a directory
  named ``d.png``) are skipped with a warning;
- pairs whose restored file is missing are refused up front, naming the first few.
"""

from __future__ import annotations

import os
import string
import warnings
from pathlib import Path

from ..errors import DataLayoutError, DataNotFoundError, UsageError
from ..files import check_inside
from ..text import printable
from ..imageio import IMAGE_SUFFIXES
from .base import Sample, Split, absolute_path

#: the placeholders of ``--pattern``
PLACEHOLDERS = ("stem", "suffix", "name")
_PATTERN_HINT = "placeholders: {stem}, {suffix}, {name}; e.g. '{stem}_out.png' or '{name}'"


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` when it is a ``str.format`` template over :data:`PLACEHOLDERS` only
    (at least one of them); else raise :class:`UsageError` naming the problem."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:  # '{stem', 'stem}', ...
        raise UsageError(f"--pattern {pattern!r} is not a valid template ({exc})", _PATTERN_HINT) from None
    bad = [f for f in fields if f not in PLACEHOLDERS]
    if bad:
        raise UsageError(f"--pattern {pattern!r} uses {{{bad[0]}}}, which is not a placeholder", _PATTERN_HINT)
    if not fields:
        raise UsageError(f"--pattern {pattern!r} has no placeholder: every reference would pair with "
                         "the same restored file", _PATTERN_HINT)
    try:
        pattern.format(stem="x", suffix=".png", name="x.png")
    except (ValueError, TypeError) as exc:  # a bad format spec, e.g. '{stem:d}'
        raise UsageError(f"--pattern {pattern!r} cannot be filled in ({exc})", _PATTERN_HINT) from None
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
            if r.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not r.is_file():
                warnings.warn(f"{r}: not an image file ({'a directory' if r.is_dir() else 'a broken link'}); "
                              "skipped", stacklevel=2)
                continue
            check_inside(self.reference, r, "reference")
            refs.append(r)
        if not refs:
            raise DataNotFoundError(f"no images in {self.reference}", f"suffixes: {', '.join(IMAGE_SUFFIXES)}")
        out, missing = [], []
        for r in refs:
            rel = self.pattern.format(stem=r.stem, suffix=r.suffix, name=r.name)
            p = self.restored / rel
            if self.restored not in Path(os.path.normpath(p)).parents:
                raise DataLayoutError(f"pattern {self.pattern!r} maps {r.name} to {rel!r}, which escapes "
                                      f"{self.restored}", "use a plain file-name pattern")
            if not p.is_file():
                missing.append(str(p))
                continue
            check_inside(self.restored, p, "restored file")
            out.append(Sample(id=r.stem, blurred=p, sharp=r, meta={}))
        if missing:
            raise DataLayoutError(
                f"{len(missing)} of {len(refs)} references have no restored file, e.g. {missing[0]}",
                "check --pattern (placeholders {stem}, {suffix}, {name}; e.g. '{stem}_out.png')")
        return out
