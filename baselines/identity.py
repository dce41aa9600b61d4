"""``blurred``: returns its input — the "no restoration" row of every table."""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch

from faceblur_bench.methods.base import Method, Option


class Blurred(Method):
    description = "No restoration: returns the blurred input (lower bound row of every table)"
    option_specs: ClassVar[dict[str, Option]] = {}

    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        return blurred.clone()

    def num_parameters(self) -> int:
        return 0
