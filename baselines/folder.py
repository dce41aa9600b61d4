"""``folder``: precomputed restorations produced by another codebase.

Options (``--option key=value``, or ``--option folder.key=value`` next to other methods):
  ``dir``      directory holding the restored images (required)
  ``pattern``  file name (relative to ``dir``) of a sample's restoration: a template over the
               placeholders of :mod:`faceblur_bench.data.patterns` -- ``{id}``, ``{stem}``,
               ``{name}``, ``{subset}``, ``{kernel}``, ``{face}``, ``{k}``, ``{u}`` -- with format
               specs (``{k:02d}``), checked when the method is built (unknown names exit 2 with
               "did you mean"). Default ``{stem}.png``; SAPPGAN's test script writes
               ``{stem}_out.png``; on a ``folder:DIR`` split ``{stem}`` is the photo's stem.

Rules (the blurred tensor itself is ignored; files are decoded with the harness's image rules):
- a missing file fails that image (the reason names the expected path); the run goes on;
- an output of another size than the sample is cut with the split's own crop box when the split
  has one (``folder:DIR``: the output is the full photo, of the photo's size): the same crop and
  PIL-bicubic resize that made the sample, and the row's ``warnings`` say so; any other size
  fails that image, naming both sizes;
- ``--protocol s2v``: with ``{k}`` or ``{u}`` in the pattern one file per moment; without them
  the file must be a sequence (GIF, APNG, multi-page TIFF, video) of exactly n frames, frame k
  being moment k (CFMD-GAN's released outputs). A pattern with ``{k}``/``{u}`` is refused under
  ``--protocol s2s`` (there is no moment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from faceblur_bench.data.patterns import MOMENT_PLACEHOLDERS, PLACEHOLDERS, fill, pattern_fields, sample_values
from faceblur_bench.errors import ImageError, UsageError
from faceblur_bench.files import not_a_file
from faceblur_bench.imageio import frame_count, read_image, to_tensor01
from faceblur_bench.methods.base import Method, Option

#: placeholders of the folder method's pattern (``{suffix}`` is ``score``'s only)
FOLDER_PLACEHOLDERS = tuple(p for p in PLACEHOLDERS if p != "suffix")
_OPTION = "--option pattern"


class Folder(Method):
    description = ("Precomputed restorations from another codebase (--option dir=PATH "
                   "[--option pattern={stem}_out.png]; placeholders {id} {stem} {name} {subset} "
                   "{kernel} {face} {k} {u})")
    option_specs: ClassVar[dict[str, Option]] = {
        "dir": Option(str, None, "directory holding the restored images"),
        "pattern": Option(str, "{stem}.png", "restored file name; placeholders "
                          + " ".join("{" + p + "}" for p in FOLDER_PLACEHOLDERS) + " (docs/inputs.md)"),
    }
    #: s2v: one file per moment ({k}/{u}) or one n-frame sequence per blurred image
    accepts_moment = True

    def __init__(self, **options: Any):
        super().__init__(**options)
        options = self.options
        self.pattern = options.get("pattern", "{stem}.png")
        self.fields = pattern_fields(self.pattern, FOLDER_PLACEHOLDERS, _OPTION)
        if not options.get("dir"):
            raise UsageError("method 'folder' needs the directory of restored images",
                             "pass --option dir=PATH [--option pattern={stem}_out.png]")
        self.dir = Path(options["dir"]).expanduser()
        if not self.dir.is_dir():
            raise UsageError(f"folder method: {self.dir} is not a directory", "check --option dir=PATH")

    @classmethod
    def check_protocol_options(cls, protocol: str, options: dict[str, Any]) -> None:
        fields = pattern_fields(str(options.get("pattern", "{stem}.png")), FOLDER_PLACEHOLDERS, _OPTION)
        moment = [f for f in fields if f in MOMENT_PLACEHOLDERS]
        if protocol != "s2v" and moment:
            raise UsageError(f"{_OPTION} uses {{{moment[0]}}}, a moment of single-to-video, under "
                             f"--protocol {protocol}",
                             "add --protocol s2v, or drop {k}/{u} from the pattern")

    def path_for(self, meta: dict) -> Path:
        """The restored file of one sample (``meta`` as ``restore`` receives it)."""
        sid = str(meta.get("id", ""))
        values = sample_values(sid, meta, str(meta.get("blurred_name", sid)))
        rel = fill(self.pattern, self.fields, values, sid)
        root = self.dir.resolve()
        p = (self.dir / rel).resolve()
        if root not in p.parents:
            raise UsageError(f"folder pattern {self.pattern!r} maps {sid} to {rel!r}, which escapes {self.dir}",
                             "use a file name (with sub-folders) inside --option dir")
        return p

    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        if meta is None:
            raise UsageError("folder method needs sample metadata (id / blurred_name)")
        size = (int(blurred.shape[-2]), int(blurred.shape[-1]))
        return to_tensor01([self.output_for(m, size) for m in meta]).to(blurred.device)

    def output_for(self, meta: dict, size: tuple[int, int]) -> np.ndarray:
        """The restored image of one sample, uint8 RGB of ``size`` (rules: module docstring)."""
        p = self.path_for(meta)
        sid = meta.get("id")
        why = not_a_file(p)  # by stat: a FIFO named like a restoration is never opened
        if why is not None:
            raise ImageError(f"no restoration for {sid}: expected {p}"
                             + ("" if why == "does not exist" else f", which {why}"),
                             "check --option dir / --option pattern")
        notes = meta.get("notes")
        if meta.get("moment_index") is not None and not any(f in MOMENT_PLACEHOLDERS for f in self.fields):
            n = frame_count(p)
            if n != int(meta["n_moments"]):
                raise ImageError(f"{p} has {n} frame(s); single-to-video needs one per moment "
                                 f"({meta['n_moments']} for {meta.get('window', sid)})",
                                 "give an n-frame sequence per blurred image, or one file per moment "
                                 "with {k} in the pattern")
            img = read_image(p, notes, frame=int(meta["moment_index"]))
        else:
            img = read_image(p, notes)
        if img.shape[:2] != size:
            img = self._cut(img, meta, size, p)
        return img

    @staticmethod
    def _cut(img: np.ndarray, meta: dict, size: tuple[int, int], p: Path) -> np.ndarray:
        """A full-photo output cut with the split's crop box (``meta["crop"]``, of a photo of
        ``meta["photo_size"]``); any other size mismatch is the image's failure."""
        from faceblur_bench.data.demo import crop_face

        h, w = img.shape[:2]
        crop, photo = meta.get("crop"), meta.get("photo_size")
        if crop is None or photo is None or (w, h) != tuple(photo) or size[0] != size[1]:
            where = f" (the photo {meta.get('photo')} is {photo[0]}x{photo[1]})" if photo else ""
            raise ImageError(f"{p}: restored image is {w}x{h}, the sample is {size[1]}x{size[0]}{where}",
                             "outputs must have the input's size, or be the full photo of a folder:DIR split")
        notes = meta.get("notes")
        if notes is not None:
            notes.append(f"{p.name} is the full photo ({w}x{h}): cut with the split's crop box "
                         f"(top, left, side) = {tuple(crop)} and resized to {size[1]}x{size[0]} "
                         "(PIL bicubic), as the split's face was")
        return crop_face(img, crop, size[0])

    def identity(self) -> dict:
        ident = super().identity()
        ident["options"] = {"dir": str(self.dir.resolve()), "pattern": self.pattern}
        return ident
