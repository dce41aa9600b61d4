"""``mspl-gan`` method: the MSPL-GAN generator (Lee et al. 2020) from trained weights.

Weights: the authors' released ``netG_last.pth`` (plain state dict, renamed by
:mod:`.official`) or a checkpoint written by ``faceblur-bench train mspl-gan`` (it carries the
generator configuration, so reduced-width models load without options). Without
``--checkpoint`` the method looks for ``$FACEBLUR_CHECKPOINTS/mspl-gan.pth`` (else
``~/.cache/faceblur_bench/checkpoints/mspl-gan.pth``) and refuses to run when there is none —
it never evaluates random weights.

``restore``: ``(N, 3, H, W)`` float32 in [0, 1] -> same shape in [0, 1]. The network works on
[-1, 1] (the authors' ``Normalize(0.5, 0.5)``) and was trained on 128x128 faces (the MSPL test
sets' size); other sizes are reflect-padded to multiples of 4 and cropped back. The result is the
last stage image ``out_3`` mapped back by ``(y + 1) / 2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...errors import WeightsIntegrityError
from ...registry import methods
from .. import checkpoint as ckpt_io
from ..base import Method, pad_to_multiple
from . import official
from .networks import GeneratorConfig, MSPLGenerator, count_parameters
from .presets import SMOKE_MODEL

#: trainers whose checkpoints this method runs
TRAINED_BY: tuple[str, ...] = ("mspl-gan",)


@methods.register("mspl-gan")
class MSPLGAN(Method):
    description = (
        "MSPL-GAN (Lee et al., IEEE Access 2020): 4 stacked U-Nets restoring face parts "
        "progressively, from the authors' netG_last.pth or a trained checkpoint"
    )

    paper_generator: ClassVar[GeneratorConfig] = GeneratorConfig()
    contract_options: ClassVar[dict[str, Any]] = {"generator": SMOKE_MODEL["generator"]}

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.net: MSPLGenerator | None = None
        self.generator_config: GeneratorConfig | None = None
        self.trained: dict[str, Any] = {}

    def num_parameters(self) -> int | None:
        """Parameters of the loaded generator, else of the paper configuration (18,471,308)."""
        return count_parameters(self.generator_config or self.paper_generator)

    def load(self, checkpoint: str | Path | None, device: torch.device | str) -> None:
        path = ckpt_io.locate(self.name, checkpoint,
                              "pass the authors' netG_last.pth (MSPL-GAN README, Google Drive) or a run of "
                              "`faceblur-bench train mspl-gan` with --checkpoint")
        obj = ckpt_io.read(path)  # weights_only=True: no code in the file can run
        if isinstance(obj, dict) and official.is_official(obj):
            gcfg = official.config_of(obj, str(path))
            net = MSPLGenerator(gcfg)
            net.load_state_dict(official.convert(obj, net.state_dict(), str(path)))
            trained: dict[str, Any] = {
                "source": "authors' generator weights (renamed by methods/mspl/official.py)"
            }
        else:
            gcfg, state, trained = self._trained(obj, path)
            net = MSPLGenerator(gcfg)
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise WeightsIntegrityError(
                    f"{path}: generator weights do not match its configuration ({exc})",
                    "the checkpoint is damaged; re-export it from the training run",
                ) from None
        super().load(path, device)
        self.net = net.to(self.device).eval()
        self.generator_config = gcfg
        self.trained = trained

    def _trained(
        self, obj: Any, path: Path
    ) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
        """(configuration, generator state dict, provenance) of a faceblur-bench checkpoint."""
        if not ckpt_io.is_trained(obj):
            raise WeightsIntegrityError(
                f"{path} is neither the authors' MSPL-GAN generator (no from_rgb / net0.en1 / "
                f"to_rgb3 keys) nor a checkpoint of `faceblur-bench train mspl-gan`",
                "pass the authors' netG_last.pth or RUN/checkpoints/best.pth of a training run",
            )
        ck = ckpt_io.load_trained(path, TRAINED_BY)
        try:
            gcfg = GeneratorConfig.from_dict(ck["config"]["model"]["generator"])
            state = ck["modules"]["generator"]
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsIntegrityError(
                f"{path}: no usable generator configuration / weights "
                f"({type(exc).__name__}: {exc})",
                "re-export it with `faceblur-bench train export`",
            ) from None
        trained = {"preset": ck.get("preset"), "epoch": ck.get("epoch"), "step": ck.get("step")}
        return gcfg, state, trained

    def init_untrained(self, device: torch.device | str, *, tiny: bool = False) -> None:
        """Random weights — the paper's generator, or with ``tiny`` the small one of
        :attr:`contract_options` — for timing and the contract tests only (``run`` never calls this)."""
        gcfg = GeneratorConfig.from_dict(self.contract_options["generator"]) if tiny else self.paper_generator
        super().load(None, device)
        self.net = MSPLGenerator(gcfg).to(self.device).eval()
        self.generator_config = gcfg
        self.trained = {"source": "untrained (contract tests only)"}

    @torch.no_grad()
    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        self.check_restore_input(blurred, self.net is not None,
                                 "call load(checkpoint, device) first (CLI: --checkpoint PATH); "
                                 f"default location {ckpt_io.default_checkpoint(self.name)}")
        x = blurred.to(self.device, torch.float32) * 2.0 - 1.0
        h, w = x.shape[-2:]
        y = self.net(pad_to_multiple(x, 4))[-1][..., :h, :w]
        return ((y.float() + 1.0) / 2.0).clamp_(0.0, 1.0)

