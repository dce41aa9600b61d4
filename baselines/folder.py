"""``folder``: precomputed restorations produced by another codebase.

Options (``--option key=value``):
  ``dir``      directory holding the restored images (required)
  ``pattern``  file name of a sample's restoration; placeholders ``{stem}`` (blurred file name
               without extension), ``{name}`` (blurred file name) and ``{id}`` (sample id).
               Default ``{stem}.png``; SAPPGAN's test script writes ``{stem}_out.png``.

The blurred tensor is ignored; the stored file is decoded with the harness's image rules. A
missing file fails that image (reason names the expected path); the run goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Sequence

import torch

from faceblur_bench.errors import ImageError, UsageError
from faceblur_bench.imageio import read_image, to_tensor01
from faceblur_bench.methods.base import Method, Option


class Folder(Method):
    description = "Precomputed restorations from another codebase (--option dir=PATH [--option pattern={stem}_out.png])"
    option_specs: ClassVar[dict[str, Option]] = {
        "dir": Option(str, None, "directory holding the restored images"),
        "pattern": Option(str, "{stem}.png", "restored file name; placeholders {stem}, {name}, {id}"),
    }

    def __init__(self, **options):
        super().__init__(**options)
        options = self.options
        if not options.get("dir"):
            raise UsageError("method 'folder' needs the directory of restored images",
                             "pass --option dir=PATH [--option pattern={stem}_out.png]")
        self.dir = Path(options["dir"]).expanduser()
        self.pattern = options.get("pattern", "{stem}.png")
        if not self.dir.is_dir():
            raise UsageError(f"folder method: {self.dir} is not a directory", "check --option dir=PATH")

    def path_for(self, meta: dict) -> Path:
        name = meta.get("blurred_name", meta.get("id", ""))
        rel = self.pattern.format(stem=Path(name).stem, name=name, id=meta.get("id", ""))
        p = (self.dir / rel).resolve()
        if self.dir.resolve() not in p.parents:
            raise UsageError(f"folder pattern {self.pattern!r} escapes {self.dir}", "use a plain file-name pattern")
        return p

    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        if meta is None:
            raise UsageError("folder method needs sample metadata (id / blurred_name)")
        imgs = []
        for m in meta:
            p = self.path_for(m)
            if not p.exists():
                raise ImageError(f"no restoration for {m.get('id')}: expected {p}",
                                 "check --option dir / --option pattern")
            imgs.append(read_image(p))
        return to_tensor01(imgs).to(blurred.device)

    def identity(self) -> dict:
        ident = super().identity()
        ident["options"] = {"dir": str(self.dir.resolve()), "pattern": self.pattern}
        return ident
