"""``dfpg`` method: DFPGnet generator restored from a trainer checkpoint.

Checkpoints are the generator weights saved by the authors' code (see :mod:`.official`) or those
written by ``faceblur-bench train dfpg`` (``checkpoints/last.pth`` /
``best.pth``, format ``faceblur-bench-gan/1``): they carry the generator's configuration, so
reduced-width and ablation (B1–B6) models load without options. Without ``--checkpoint`` the
method looks for the default file :func:`..checkpoint.default_checkpoint` (``$FACEBLUR_CHECKPOINTS/<name>.pth``,
else ``~/.cache/faceblur_bench/checkpoints/<name>.pth``) and refuses to run when there is none —
it never evaluates random weights.

``restore``: ``(N, 3, H, W)`` float32 in [0, 1] -> same shape in [0, 1]; inputs are reflect-padded
to multiples of 4 internally and cropped back; the network works on [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from ...errors import UsageError
from ...registry import methods
from .. import checkpoint as ckpt_io
from ..base import Method, pad_to_multiple
from . import official
from .model import DFPGGenerator, GeneratorConfig, count_parameters


class DFPGFamilyMethod(Method):
    """A method whose network is the DFPGnet generator (DFPGnet itself, SAPPGAN)."""

    needs_checkpoint: ClassVar[bool] = True
    contract_options: ClassVar[dict[str, Any]] = {
        "generator": {"widths": [8, 16, 32], "base_blocks": 1, "prior_blocks": 1, "se_reduction": 4}}
    #: checkpoint "method" values this class accepts
    trained_by: ClassVar[tuple[str, ...]] = ()
    #: generator configuration reported before any checkpoint is loaded (the paper model)
    paper_generator: ClassVar[GeneratorConfig] = GeneratorConfig()
    #: no options: the generator's configuration comes from the checkpoint
    option_specs: ClassVar[dict] = {}

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.net: DFPGGenerator | None = None
        self.generator_config: GeneratorConfig | None = None
        self.trained: dict[str, Any] = {}

    def num_parameters(self) -> int | None:
        """Parameters of the loaded generator, else of the paper configuration (computed on the
        meta device, once per configuration)."""
        return count_parameters(self.generator_config or self.paper_generator)

    def load(self, checkpoint: str | Path | None, device: torch.device | str) -> None:
        path = ckpt_io.locate(self.name, checkpoint,
                              f"pass the authors' generator weights (G_*_best.pth) with --checkpoint, or train "
                              f"one with `faceblur-bench train {self.trained_by[0]} --data-root DIR --out RUN` "
                              "and pass --checkpoint RUN/checkpoints/best.pth")
        obj = ckpt_io.read(path)
        if isinstance(obj, dict) and not ckpt_io.is_trained(obj) and official.is_official(obj):  # the authors' released generator
            gcfg = GeneratorConfig()
            net = DFPGGenerator(gcfg)
            net.load_state_dict(official.convert(obj, net.state_dict(), str(path)))
            trained: dict[str, Any] = {"source": "authors' generator weights (renamed by methods/dfpg/official.py)"}
        else:
            ck = ckpt_io.normalise(obj, path)
            if ck.get("trainer") not in self.trained_by:
                raise UsageError(f"{path} was trained by {ck.get('trainer')!r}, not as {self.name}",
                                 f"use `--method {ck.get('method')}` for this checkpoint")
            gcfg = GeneratorConfig.from_dict(ck["config"]["model"]["generator"])
            net = DFPGGenerator(gcfg)
            try:
                net.load_state_dict(ck["modules"]["generator"])
            except RuntimeError as exc:
                raise UsageError(f"{path}: generator weights do not match its configuration ({exc})",
                                 "the checkpoint is damaged; re-export it from the training run") from None
            trained = {"ablation": ck.get("preset"), "epoch": ck.get("epoch"), "step": ck.get("step")}
        super().load(path, device)
        self.net = net.to(self.device).eval()
        self.generator_config = gcfg
        self.trained = trained

    def init_untrained(self, device: torch.device | str, *, tiny: bool = False) -> None:
        gcfg = GeneratorConfig.from_dict(self.contract_options["generator"]) if tiny else self.paper_generator
        super().load(None, device)
        self.net = DFPGGenerator(gcfg).to(self.device).eval()
        self.generator_config = gcfg
        self.trained = {"source": "untrained (contract tests only)"}

    @torch.no_grad()
    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        self.check_restore_input(blurred, self.net is not None,
                                 "call load(checkpoint, device) first (CLI: --checkpoint PATH); "
                                 f"default location {ckpt_io.default_checkpoint(self.name)}")
        x = blurred.to(self.device, torch.float32) * 2.0 - 1.0
        h, w = x.shape[-2:]
        y = self.net(pad_to_multiple(x, 4))[0][..., :h, :w]
        return ((y.float() + 1.0) / 2.0).clamp_(0.0, 1.0)



@methods.register("dfpg")
class DFPG(DFPGFamilyMethod):
    description = "DFPGnet (Jung et al., WACV 2022): deep feature prior guided generator, from a trained checkpoint"
    trained_by = ("dfpg",)
