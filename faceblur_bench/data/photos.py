"""``folder:DIR``: any folder of real (blurred) photos as a split without ground truth.

Faces are found and cropped exactly as the demo split crops its sources (:mod:`.demo`):

1. every image file directly in ``DIR`` (suffixes of :data:`~faceblur_bench.imageio.IMAGE_SUFFIXES`,
   hidden files skipped), decoded to RGB;
2. facenet-pytorch MTCNN (``keep_all=True``, CPU); a face is kept when its probability is
   >= 0.95 and its box's shorter side is >= 48 px (:data:`.demo.MIN_PROB`, :data:`.demo.MIN_BOX`);
3. crop: the square of side ``round(1.3 x max(box w, box h))`` centred on the box, shrunk to the
   photo's shorter side if larger and shifted inside the photo, resized to 128x128 (PIL bicubic).

Face ``j`` (reading order: rows, then left to right) of photo ``P.jpg`` is sample
``P_{j:02d}`` (meta ``photo`` = ``P.jpg``, ``face`` = ``j``, ``crop`` = its crop box). The crops are written once to ``<data_root>/folder/<DIR name>-<8 hex of its
absolute path>/faces/`` with a ``manifest.json`` (sha256 of each source photo, boxes,
probabilities, crop boxes, photos without a face); they are rebuilt when a photo is added,
removed or changed (name, size or modification time). A photo that cannot be decoded (zero-byte,
truncated, over the pixel limit) does not stop the others: it is listed under
``photos_unreadable`` and becomes a sample of its own (id: the photo's stem) whose row fails with
the reason (decoding its copy under ``unreadable/``), so ``run`` lists it and exits 1 like any
failed image. A symlink leading out of
``DIR`` to a photo is refused (exit 2), as ``score`` refuses one; FIFOs, sockets, symlinked
subfolders and other non-files are not read, and a warning names them. The split is named ``folder:<DIR name>``
in results, tables and the leaderboard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from ..errors import DataLayoutError, DataNotFoundError, ImageError, UsageError
from ..files import check_inside, describe_skipped, folder_entries, sha256_file
from ..imageio import IMAGE_SUFFIXES, image_size, read_image, write_png
from ..registry import splits
from ..text import printable
from .base import Sample, Split

PHOTO_FOLDER_VERSION = 2  # 2: unreadable photos are recorded (photos_unreadable)
#: photos handed to MTCNN per call (bounds memory for folders of large photos)
PHOTOS_PER_CALL = 8


def _photos(folder: Path) -> list[Path]:
    """The photo files directly in ``folder``; a symlink to a file leading out of ``folder`` is
    refused (:func:`~faceblur_bench.files.check_inside`, the rule of every reader), never
    followed. FIFOs, sockets, devices, symlinked subfolders and links leading out to anything
    but a file are not read: a warning names them (count, the first few, why)."""
    found, odd = folder_entries(folder, IMAGE_SUFFIXES)
    if odd:
        warnings.warn(describe_skipped(folder, odd), stacklevel=2)
    for p in found:
        check_inside(folder, p, "photo")
    return found


def _source_key(photos: list[Path]) -> str:
    """Identity of the folder's photos: names, sizes and modification times."""
    h = hashlib.sha256()
    for p in photos:
        st = p.stat()
        h.update(f"{p.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def build_faces(folder: Path, out: Path) -> dict[str, Any]:
    """Detect and crop the faces of every photo in ``folder`` into ``out``; return the manifest."""
    from .demo import MARGIN, MIN_BOX, MIN_PROB, SIZE, detect_faces

    photos = _photos(folder)
    out.mkdir(parents=True, exist_ok=True)
    stems: dict[str, Path] = {}
    for p in photos:
        if p.stem in stems:
            raise DataLayoutError(f"{p} and {stems[p.stem]} have the same name stem",
                                  "keep one file per photo name (sample ids come from the stem)")
        stems[p.stem] = p
    faces: list[dict[str, Any]] = []
    unreadable: list[dict[str, str]] = []
    for i in range(0, len(photos), PHOTOS_PER_CALL):
        decoded = []
        for p in photos[i:i + PHOTOS_PER_CALL]:
            try:
                decoded.append(("folder", p.stem, read_image(p)))
            except ImageError as exc:  # one bad photo is a failed sample, not the end of the split
                # a copy under the data root (every sample file lies there): its row fails on it
                (out / "unreadable").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, out / "unreadable" / p.name)
                unreadable.append({"photo": p.name, "file": f"unreadable/{p.name}",
                                   "reason": exc.message.replace(str(p), p.name)})
        found = detect_faces(decoded) if decoded else []
        per_photo: dict[str, int] = {}
        for f in found:  # detect_faces keeps photo order, then reading order within a photo
            j = per_photo.get(f["photo"], 0)
            per_photo[f["photo"]] = j + 1
            f["id"] = f"{f['photo']}_{j:02d}"
            faces.append(f)
    with_face = {f["photo"] for f in faces}
    records = []
    for f in faces:
        write_png(out / "faces" / f"{f['id']}.png", f["image"])
        src = stems[f["photo"]]
        records.append({"id": f["id"], "file": f"faces/{f['id']}.png", "photo": src.name,
                        "box": f["box"], "prob": f["prob"], "crop": f["crop"]})
    manifest = {
        "split": "folder", "version": PHOTO_FOLDER_VERSION, "folder": str(folder),
        "source_key": _source_key(photos),
        "recipe": {"detector": "facenet-pytorch MTCNN keep_all, cpu", "min_prob": MIN_PROB,
                   "min_box_px": MIN_BOX, "crop_side": f"{MARGIN} x max(box w, h), clamped inside the photo",
                   "resize": f"PIL bicubic to {SIZE}x{SIZE}"},
        "photos": {p.name: sha256_file(p) for p in photos},
        "photos_without_face": sorted(p.name for p in photos if p.stem not in with_face
                                      and p.name not in {u["photo"] for u in unreadable}),
        "photos_unreadable": unreadable,
        "faces": records,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


@splits.register("folder")
class PhotoFolder(Split):
    """Faces cropped from a folder of real photos (``--split folder:DIR``); no ground truth."""

    name = "folder"
    description = ("any folder of real photos (--split folder:DIR): faces found by MTCNN and cropped "
                   "128x128 as the demo split does; no ground truth")
    layout = ("DIR/*.png|jpg|...   any photos (--split folder:DIR); face crops are written to "
              "<data_root>/folder/<DIR name>-<hash>/faces/")
    has_reference = False

    def __init__(self, data_root: str | Path | None = None, subset: str | None = None,
                 allow_partial: bool = False, folder: str | Path | None = None):
        super().__init__(data_root, subset, allow_partial)
        self.folder = Path(folder).expanduser().resolve() if folder else None

    @classmethod
    def from_argument(cls, arg: str, data_root: str | Path | None = None,
                      allow_partial: bool = False) -> PhotoFolder:
        if not arg.strip():
            raise UsageError("split 'folder:' needs a directory", "write it as --split folder:DIR")
        return cls(data_root, None, allow_partial, folder=arg.strip())

    @property
    def full_name(self) -> str:
        # the folder's name is the user's: shown everywhere, so without escape codes or newlines
        return f"folder:{printable(self.folder.name)}" if self.folder else "folder"

    def _source(self) -> Path:
        if self.folder is None:
            raise DataNotFoundError("split 'folder' needs a directory of photos",
                                    "use --split folder:DIR (any folder of real photos)")
        if not self.folder.is_dir():
            raise DataNotFoundError(f"photo folder {self.folder} does not exist",
                                    "check the path given as --split folder:DIR")
        return self.folder

    def crop_dir(self) -> Path:
        src = self._source()
        tag = hashlib.sha256(str(src).encode()).hexdigest()[:8]
        return self.data_root / "folder" / f"{printable(src.name)}-{tag}"

    def find(self) -> Path:
        """The directory of face crops, (re)built first when the photos changed."""
        from filelock import FileLock

        src = self._source()
        target = self.crop_dir()
        photos = _photos(src)
        if not photos:
            raise DataNotFoundError(f"no photos in {src}", f"suffixes: {', '.join(IMAGE_SUFFIXES)}")
        key = _source_key(photos)
        if self._current(target, key):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.parent / f".{target.name}.lock"), timeout=600):
            if self._current(target, key):  # built by another process meanwhile
                return target
            tmp = target.parent / f".{target.name}.build-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                build_faces(src, tmp)
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    @staticmethod
    def _current(target: Path, key: str) -> bool:
        try:
            man = json.loads((target / "manifest.json").read_text())
        except (OSError, ValueError):
            return False
        return man.get("source_key") == key and man.get("version") == PHOTO_FOLDER_VERSION

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.find() / "manifest.json").read_text())

    def photos_without_face(self) -> list[str]:
        """Photos of the folder left out because no face passed detection (file names)."""
        return list(self.manifest().get("photos_without_face") or [])

    def samples(self) -> list[Sample]:
        root = self.find()
        man = json.loads((root / "manifest.json").read_text())
        unreadable = man.get("photos_unreadable") or []
        if not man["faces"] and not unreadable:
            raise DataNotFoundError(
                f"MTCNN found no face in the {len(man['photos'])} photos of {self._source()}",
                "faces need probability >= 0.95 and a box of at least 48 px")
        out = []
        sizes: dict[str, list[int]] = {}  # displayed (w, h) of each photo: its crop boxes' frame
        for rec in man["faces"]:
            if rec["photo"] not in sizes:
                sizes[rec["photo"]] = list(image_size(self._source() / rec["photo"]))
            p = root / rec["file"]
            if not p.is_file():
                raise DataLayoutError(f"{p} is missing", f"delete {root} and it will be rebuilt")
            out.append(Sample(id=rec["id"], blurred=p, sharp=None,
                              meta={"photo": rec["photo"], "face": int(rec["id"].rsplit("_", 1)[1]),
                                    "box": rec["box"], "prob": rec["prob"], "crop": rec["crop"],
                                    "photo_size": sizes[rec["photo"]]}))
        for rec in unreadable:  # scored as failed rows: listed with their reason, exit code 1
            out.append(Sample(id=Path(rec["photo"]).stem, blurred=root / rec["file"],
                              sharp=None, meta={"photo": rec["photo"], "unreadable": rec["reason"]}))
        return out
