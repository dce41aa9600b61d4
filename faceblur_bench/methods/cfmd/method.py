"""``cfmd-gan`` method: the CFMD-GAN generator G(b, u) (seed 003) restoring one sharp moment.

``restore(blurred, meta)``: ``(N, 3, H, W)`` float32 in [0, 1] -> same shape in [0, 1]. The moment
control factor of image i is ``meta[i]["moment"]`` (u in [0, 1]; the single-to-video protocol
sets u_k = k/(n−1) for the k-th of n frames in FMR order), else the ``moment`` option (default
0.5, the centre moment of the single-to-single tables). A u outside [0, 1] is refused. Inputs
are reflect-padded to multiples of 4 and cropped back; the network sees [0, 1] input, as the
released ``train.py`` trained it (its ``inference.py`` feeds [−1, 1], which does not match).
Output: ``G(b, u)[-1]`` clamped to [0, 1].

Weights (``--checkpoint``): the authors' generator state dict (:mod:`.official`), or a file
written by ``faceblur-bench train cfmd`` (run checkpoint or ``train export``). Without
``--checkpoint`` the default file ``$FACEBLUR_CHECKPOINTS/cfmd-gan.pth`` (else
``~/.cache/faceblur_bench/checkpoints/cfmd-gan.pth``) is used; with none the method refuses to
run — it never evaluates random weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...errors import UsageError, WeightsIntegrityError
from ...registry import methods
from .. import checkpoint as ckpt_io
from ..base import Method, pad_to_multiple
from . import official
from .networks import CFMDGenerator, GeneratorConfig, count_parameters

#: checkpoint "trainer" values this method runs
TRAINED_BY = ("cfmd",)


def _moment_option(v: Any) -> float:
    try:
        u = float(v)
    except (TypeError, ValueError):
        raise UsageError(f"cfmd-gan option moment={v!r} is not a number",
                         "pass --method-option moment=0.5 (a value in [0, 1])") from None
    if not 0.0 <= u <= 1.0:
        raise UsageError(f"cfmd-gan option moment={u} is outside [0, 1]",
                         "u = 0 and u = 1 are the first and last moments (FMR order), 0.5 the centre")
    return u


@methods.register("cfmd-gan")
class CFMDGAN(Method):
    description = ("CFMD-GAN (Lee, Han & Heo, Continuous Facial Motion Deblurring): ContAda MIMO-UNet "
                   "restoring the sharp moment u in [0,1] of a motion-blurred face, from a checkpoint")
    accepts_moment: ClassVar[bool] = True
    #: options giving a small network (contract tests only; the CLI never builds random weights)
    contract_options: ClassVar[dict] = {"generator": {"base_channels": 8, "num_res": 1}}

    def __init__(self, **options: Any):
        # the architecture is read from the checkpoint, so the moment is the only option
        unknown = sorted(set(options) - {"moment"})
        if unknown:
            import difflib

            from ...errors import UnknownNameError

            raise UnknownNameError("cfmd-gan option", unknown[0], ["moment"],
                                   difflib.get_close_matches(unknown[0], ["moment"], n=1))
        super().__init__(**options)
        self.default_moment = _moment_option(options.get("moment", 0.5))
        self.net: CFMDGenerator | None = None
        self.generator_config: GeneratorConfig | None = None
        self.trained: dict[str, Any] = {}

    def num_parameters(self) -> int | None:
        """Parameters of the loaded generator, else of the released architecture."""
        return count_parameters(self.generator_config or GeneratorConfig())

    def init_untrained(self, device: torch.device | str, *, tiny: bool = False) -> None:
        """Random weights — the released architecture, or with ``tiny`` the ``contract_options``
        one — for timing and the contract tests only (``run`` never calls this)."""
        cfg = GeneratorConfig.from_dict(self.contract_options["generator"]) if tiny else GeneratorConfig()
        super().load(None, device)
        self.net = CFMDGenerator(cfg).to(self.device).eval()
        self.generator_config = cfg
        self.trained = {"source": "untrained (timing / contract tests only)"}

    def load(self, checkpoint: str | Path | None, device: torch.device | str) -> None:
        path = ckpt_io.locate(self.name, checkpoint,
                              "pass the authors' generator weights (model_best.pth) with --checkpoint, or train "
                              "one with `faceblur-bench train cfmd --data-root DIR --out RUN` and pass "
                              "RUN/checkpoints/best.pth")
        obj = ckpt_io.read(path)  # weights_only=True: no code in the file can run
        if official.unwrap(obj) is not None:
            net = official.load_generator(obj, str(path))
            trained: dict[str, Any] = {"source": "authors' CFMD-GAN generator weights (released key layout)"}
        else:
            net, trained = _trained_generator(obj, path)
        super().load(path, device)
        self.net = net.to(self.device).eval()
        self.generator_config = net.cfg
        self.trained = trained

    def moments(self, n: int, meta: Sequence[dict] | None) -> list[float]:
        """u of each of the ``n`` images: ``meta[i]["moment"]``, else the ``moment`` option."""
        out = []
        for i in range(n):
            m = meta[i] if meta is not None and i < len(meta) else {}
            out.append(float(m["moment"]) if m.get("moment") is not None else self.default_moment)
        return out

    @torch.no_grad()
    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        self.check_restore_input(blurred, self.net is not None,
                                 "call load(checkpoint, device) first (CLI: --checkpoint PATH); "
                                 f"default location {ckpt_io.default_checkpoint(self.name)}")
        u = self.moments(blurred.shape[0], meta)
        x = blurred.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        y = self.net(pad_to_multiple(x, 4), u)[-1][..., :h, :w]
        return y.float().clamp_(0.0, 1.0)



def _trained_generator(obj: Any, path: Path) -> tuple[CFMDGenerator, dict[str, Any]]:
    """Generator of a ``faceblur-bench train cfmd`` checkpoint (run file or export)."""
    ck = ckpt_io.load_trained(path, trainers=TRAINED_BY)
    cfg = GeneratorConfig.from_dict(ck["config"]["model"]["generator"])
    net = CFMDGenerator(cfg)
    try:
        net.load_state_dict(ck["modules"]["generator"])
    except (KeyError, RuntimeError) as exc:
        raise WeightsIntegrityError(f"{path}: generator weights do not match its configuration ({exc})",
                                    "the checkpoint is damaged; re-export it from the training run") from None
    return net, {"preset": ck.get("preset"), "epoch": ck.get("epoch"), "step": ck.get("step")}
