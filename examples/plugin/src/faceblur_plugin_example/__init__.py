"""A complete faceblur-bench plugin in one file.

- ``unsharp``: unsharp masking (Gaussian blur 5x5, sigma 1, amount from ``--option amount=``).
- ``example-pairs``: a split read from ``<data-root>/example-pairs/{blur,sharp}/<name>.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from faceblur_bench.data.base import Sample, Split
from faceblur_bench.methods.base import Method, Option


class UnsharpMask(Method):
    description = "Unsharp masking: x + amount * (x - gaussian5x5(x)) (example plugin)"
    #: declared options are checked before a run (`faceblur-bench methods unsharp` lists them)
    option_specs: ClassVar[dict[str, Option]] = {
        "amount": Option(float, 1.0, "weight of the high-pass detail added back", minimum=0.0)}

    def restore(self, blurred, meta=None):
        amount = self.options.get("amount", 1.0)
        g = torch.exp(-0.5 * torch.arange(-2.0, 3.0) ** 2)
        k = (g[:, None] * g[None, :]) / (g.sum() ** 2)
        k = k.to(blurred).expand(3, 1, 5, 5)
        low = F.conv2d(F.pad(blurred, (2, 2, 2, 2), mode="replicate"), k, groups=3)
        return (blurred + amount * (blurred - low)).clamp(0, 1)

    def num_parameters(self):
        return 0


class ExamplePairs(Split):
    description = "Pairs <root>/example-pairs/blur/<name>.png -> sharp/<name>.png (example plugin)"
    layout = "example-pairs/\n  blur/<name>.png\n  sharp/<name>.png"

    def find(self) -> Path:
        d = self.data_root / "example-pairs"
        if not (d / "blur").is_dir():
            raise self.missing(d)
        return d

    def samples(self):
        d = self.find()
        return [Sample(id=p.stem, blurred=p, sharp=d / "sharp" / p.name, meta={})
                for p in sorted((d / "blur").glob("*.png"))]
