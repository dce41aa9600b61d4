"""``yun`` method: Yun et al.'s joint ×8 SR + deblurring generator from a checkpoint.

Checkpoints: the released notebooks' ``generator-<epoch>.pkl`` state dicts (:mod:`.checkpoint`;
none are published) or those written by ``faceblur-bench train yun``. Without ``--checkpoint``
the method looks for ``$FACEBLUR_CHECKPOINTS/yun.pth`` (else
``~/.cache/faceblur_bench/checkpoints/yun.pth``) and refuses to run when there is none — it
never evaluates random weights.

``restore``: ``(N, 3, 32, 32)`` float32 in [0, 1] -> ``(N, 3, 256, 256)`` in [0, 1]
(``scale = 8``). The network works on [-1, 1]; the output is the lower decoder's sharp HR
image ``outHR`` mapped by ``(x + 1) / 2`` and clamped. Only the generator runs; the face mask
is training-only. Inputs must be exactly 32×32 (the U-Net encoder reaches 1×1).

Options: ``noise`` = ``none`` (default) | ``wN`` — the w/N notebooks' forward, which adds noise
drawn from N(1, 0.1) to the input, to each encoder output on its way into the next layer and to
every decoder skip concatenation, in eval mode too (:class:`~.networks.AdditiveNoise` at
:data:`~.networks.NOISE_AT`); ``noise_seed`` (int,
default 0). Image ``i``'s noise stream is seeded by :func:`noise_seed_of` (the seed and the
image's input pixels), so its output does not depend on the batch it was restored in. Options
given are part of the run key. ``ngf`` / ``upscale_width`` size the untrained network of the
contract tests only (a checkpoint carries its own widths).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...errors import UsageError
from ...registry import methods
from ..base import Method, Option
from .. import checkpoint as ckpt_io
from . import checkpoint as nb_ckpt
from .networks import (
    INPUT_SIZE,
    SCALE,
    AdditiveNoise,
    YunGenerator,
    YunGeneratorConfig,
    count_parameters,
)

NOISE_MODES = ("none", "wN")


def noise_seed_of(seed: int, image: torch.Tensor) -> int:
    """Seed of one image's wN noise stream: 63 bits of sha256(``seed``, the image's float32
    bytes). ``image`` is one network input ``(3, 32, 32)``."""
    h = hashlib.sha256(str(int(seed)).encode() + b"\0")
    h.update(image.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return int.from_bytes(h.digest()[:8], "little") >> 1


@methods.register("yun")
class Yun(Method):
    description = ("Yun et al. (IEEE Access 2020): joint x8 face SR + deblurring GAN, 32x32 -> 256x256, "
                   "from a trained checkpoint")
    scale = SCALE
    #: options giving a small network (contract tests only)
    contract_options: ClassVar[dict[str, Any]] = {"ngf": 4, "upscale_width": 4}

    option_specs: ClassVar[dict[str, Option] | None] = {
        "noise": Option(str, "none", "none | wN: the w/N notebooks' additive N(1, 0.1) noise on the "
                                     "input, encoder outputs and decoder skips (docs/yun.md)"),
        "noise_seed": Option(int, 0, "seed of the wN noise (each image's stream: this seed and its "
                                     "input pixels)", minimum=0),
        "ngf": Option(int, None, "contract tests only: width of the untrained network", minimum=1),
        "upscale_width": Option(int, None, "contract tests only: x8 CNN width of the untrained "
                                           "network", minimum=1),
    }

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.noise = str(self.options.get("noise", "none"))
        if self.noise not in NOISE_MODES:
            close = difflib.get_close_matches(self.noise, NOISE_MODES, n=1, cutoff=0.3)
            raise UsageError(f"option 'noise' for yun must be one of {', '.join(NOISE_MODES)}, got "
                             f"{self.noise!r}" + (f"; did you mean {close[0]!r}" if close else ""),
                             "pass --option noise=none (default) or --option noise=wN")
        self.noise_seed = int(self.options.get("noise_seed", 0))
        self.net: YunGenerator | None = None
        self.generator_config: YunGeneratorConfig | None = None
        self.trained: dict[str, Any] = {}

    def num_parameters(self) -> int | None:
        """Parameters of the loaded generator, else of the released configuration (58.3 M)."""
        return count_parameters(self.generator_config or YunGeneratorConfig())

    def init_untrained(self, device: torch.device | str, *, tiny: bool = False) -> None:
        """Random weights — the released layer list, or with ``tiny`` the small net of
        :attr:`contract_options` — for timing and the contract tests only (``run`` never calls this)."""
        cfg = YunGeneratorConfig(**self.contract_options) if tiny else YunGeneratorConfig()
        super().load(None, device)
        self.net = YunGenerator(cfg).to(self.device).eval()
        self.generator_config = cfg
        self.trained = {"source": "untrained (contract test)"}

    def load(self, checkpoint: str | Path | None, device: torch.device | str) -> None:
        path = ckpt_io.locate(self.name or "yun", checkpoint,
                              "the authors published no weights: train one with `faceblur-bench train yun "
                              "--data-root DIR --out RUN` and pass --checkpoint RUN/checkpoints/best.pth")
        obj = nb_ckpt.read(path)
        if nb_ckpt.is_notebook_state(obj):
            net = nb_ckpt.generator_from_state(obj, str(path))
            trained: dict[str, Any] = {"source": "FaceSRnDeblur notebook state dict"}
        else:
            net, trained = self._load_trained(obj, path)
        super().load(path, device)
        self.net = net.to(self.device).eval()
        self.generator_config = net.config
        self.trained = trained

    def _load_trained(self, obj: Any, path: Path) -> tuple[YunGenerator, dict[str, Any]]:
        """A checkpoint written by ``faceblur-bench train yun`` (or its export)."""
        from ..checkpoint import load_trained

        ck = load_trained(path, trainers=("yun",))
        gcfg = YunGeneratorConfig.from_dict(ck["config"]["model"]["generator"])
        net = YunGenerator(gcfg)
        try:
            net.load_state_dict(ck["modules"]["generator"])
        except RuntimeError as exc:
            raise UsageError(f"{path}: generator weights do not match its configuration ({exc})",
                             "the checkpoint is damaged; re-export it from the training run") from None
        return net, {"preset": ck.get("preset"), "epoch": ck.get("epoch"), "step": ck.get("step")}

    @torch.no_grad()
    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        self.check_restore_input(blurred, self.net is not None, size=INPUT_SIZE, size_hint=(
            "Yun et al.'s network takes exactly 32x32 faces (x8 -> 256x256); use --split celebahq-sr8"))
        x = blurred.to(self.device, torch.float32) * 2.0 - 1.0
        noise = None
        if self.noise == "wN":
            noise = AdditiveNoise([noise_seed_of(self.noise_seed, xi) for xi in x])
        sharp_hr = self.net(x, noise)[2]
        return ((sharp_hr.float() + 1.0) / 2.0).clamp_(0.0, 1.0)

