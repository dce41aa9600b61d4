"""``shen`` methods: Shen et al. restored from trained weights (never from random ones).

Registered names (each maps to its published row where the paper has one):

==================  ==========================================================================
``shen``            the IJCV 2020 model ("Ours" of Tables 9–12), from a checkpoint written by
                    ``faceblur-bench train shen`` (or ``train export``)
``shen-cvpr18``     the CVPR 2018 model: the authors' MatConvNet release (``net_G_*.mat`` +
                    ``net_P_*.mat``, :mod:`.matconvnet`) or a ``train shen`` checkpoint of that
                    variant ("Shen et al. (2018)" rows)
``shen-n2``,        IJCV with 2 / 3 cascaded fine nets (Table 8), from ``train shen`` checkpoints
``shen-n3``
==================  ==========================================================================

``--checkpoint DIR_OR_FILE``: a ``.pth`` of ``faceblur-bench train shen``, or (``shen-cvpr18``) the
folder holding the release's pair or one of its two files. Without it the default file
``$FACEBLUR_CHECKPOINTS/<name>.pth`` (else ``~/.cache/faceblur_bench/checkpoints/<name>.pth``) is
used; when there is none the method refuses, naming what to pass.

Options (``-o KEY=VALUE``): ``bn_moments`` = ``stored`` (default: the running statistics) |
``per_image`` (each image's own batch-norm moments, what the release's current
``DL_deblur_net18.m`` computes by calling ``vl_nnbnorm`` without ``'moments'``; its older
``.m~`` passes the stored ones — which of the two produced the published numbers is not
known); ``release`` = ``P_S_F`` (default, the demo script's files) | ``P_S_F_GAN``;
``matlab_scale`` (default true, release only): multiply inputs by 255/256, because the
release reads images as ``uint8 / 256``.

``restore``: ``(N, 3, H, W)`` float32 in [0, 1] -> same shape in [0, 1] (clamped; the network's
output is unbounded). Inputs whose sides are not multiples of 64 are resized to 128×128 with
MATLAB's ``imresize`` (:mod:`.imresize`) — the release resizes every input to 128×128 that way —
and the result back with the same resize.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...errors import UsageError, WeightsIntegrityError, WeightsMissingError
from ...files import sha256_file
from ...registry import methods
from .. import checkpoint as ckpt_io
from ..base import Method
from . import presets
from .imresize import imresize
from .networks import BN_MOMENTS, ShenConfig, ShenNet, count_parameters

#: trainer name whose checkpoints these methods read
TRAINER = "shen"
#: inference modules of a trained checkpoint
MODULES: tuple[str, ...] = ("coarse", "parsing", "fine")


def variant_key(cfg: ShenConfig) -> tuple[str, int, bool]:
    """What must match between a checkpoint and a method: (variant, fine nets, shared)."""
    return (cfg.variant, cfg.fine_nets, cfg.share_fine)


class ShenMethod(Method):
    """Shen et al. at inference; subclasses fix :attr:`variant` (a :mod:`.presets` name)."""

    variant: ClassVar[str] = presets.DEFAULT
    #: True when the authors' MatConvNet release can be loaded (the CVPR 2018 model only)
    accepts_release: ClassVar[bool] = False
    contract_options: ClassVar[dict[str, Any]] = {
        "width": 8, "res_blocks": 1, "first_kernel": 3, "kernel": 3,
        "parsing": {"encoder_widths": [4, 4, 4, 4, 4, 4], "head_width": 4}}

    def __init__(self, **options: Any):
        known = {"bn_moments", "release", "matlab_scale"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"{self.name}: unknown option(s) {unknown}",
                             f"known options: {sorted(known)} (see `faceblur-bench methods`)")
        if options.get("bn_moments", "stored") not in BN_MOMENTS:
            raise UsageError(f"{self.name}: bn_moments={options['bn_moments']!r}",
                             f"use one of {list(BN_MOMENTS)}")
        super().__init__(**options)
        self.net: ShenNet | None = None
        self.config: ShenConfig | None = None
        self.trained: dict[str, Any] = {}
        self.input_scale = 1.0

    @classmethod
    def paper_config(cls) -> ShenConfig:
        return presets.variant_config(cls.variant)

    def num_parameters(self) -> int | None:
        """G_c + P + G_f parameters of the loaded model, else of the variant at the paper's
        widths (meta device; the discriminator is not part of the model at test time)."""
        return count_parameters(self.config or self.paper_config())["total"]

    def _missing(self, path: Path) -> WeightsMissingError:
        what = f"`faceblur-bench train shen --data-root DIR --out RUN` (preset {self.variant}) " \
               f"and pass --checkpoint RUN/checkpoints/best.pth"
        if self.accepts_release:
            what = ("the authors' CVPR 2018 release: --checkpoint DIR holding net_G_P_S_F.mat and "
                    "net_P_P_S_F.mat (joanshen0508/Deep-Semantic-Face-Deblurring), or train "
                    + what.replace("`faceblur-bench", "with `faceblur-bench"))
        else:
            what = "train one with " + what
        return WeightsMissingError(
            f"{self.name} needs trained weights and none were given: no --checkpoint and no "
            f"file at {path}", f"{what}; or copy a checkpoint to {path} (or set "
            f"$FACEBLUR_CHECKPOINTS)")

    def load(self, checkpoint: str | Path | None, device: torch.device | str) -> None:
        from . import matconvnet

        path = Path(checkpoint).expanduser() if checkpoint else ckpt_io.default_checkpoint(self.name)
        if not path.exists():
            if checkpoint:
                raise UsageError(f"{self.name}: checkpoint {path} not found",
                                 "check the --checkpoint path (a file or, for the MatConvNet "
                                 "release, the folder holding net_G_*.mat and net_P_*.mat)")
            raise self._missing(path)
        if matconvnet.is_release_path(path):
            if not self.accepts_release:
                raise UsageError(
                    f"{path}: the MatConvNet release is the CVPR 2018 model, not {self.name}",
                    "run it with --method shen-cvpr18")
            net, info = matconvnet.load_release(path, str(self.options.get("release", "P_S_F")))
            self.input_scale = 255.0 / 256.0 if self.options.get("matlab_scale", True) else 1.0
            self._release_files = (Path(info["net_G"]), Path(info["net_P"]))
        elif path.is_dir():
            raise UsageError(f"{path} is a folder without net_G_*.mat",
                             "pass a .pth checkpoint of `faceblur-bench train shen`, or (shen-cvpr18) "
                             "the folder of the authors' net_G_*.mat / net_P_*.mat")
        else:
            net, info = self._load_trained(path)
        super().load(path, device)
        net.parsing.bn_moments = str(self.options.get("bn_moments", "stored"))
        self.net = net.to(self.device).eval()
        self.config = net.config
        self.trained = info

    def _load_trained(self, path: Path) -> tuple[ShenNet, dict[str, Any]]:
        ck = ckpt_io.load_trained(path, trainers=(TRAINER,))
        try:
            cfg = ShenConfig.from_dict(ck["config"]["model"]["shen"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsIntegrityError(f"{path}: no valid model.shen configuration ({exc})",
                                        "re-export the checkpoint from its training run") from None
        want = variant_key(self.paper_config())
        if variant_key(cfg) != want:
            names = [n for n, cls in REGISTERED.items()
                     if variant_key(cls.paper_config()) == variant_key(cfg)]
            raise UsageError(
                f"{path} holds the {variant_key(cfg)} model, not {self.name}'s {want}",
                f"use --method {names[0]}" if names else "use a checkpoint of this variant")
        net = ShenNet(cfg)
        mods = ck.get("modules", {})
        for name in MODULES:
            sub = getattr(net, name)
            if sub is None:
                continue
            if name not in mods:
                raise WeightsIntegrityError(f"{path}: no {name!r} weights (holds {sorted(mods)})",
                                            "export a checkpoint of the joint stage (stage 4) or "
                                            "of a full run")
            try:
                sub.load_state_dict(mods[name])
            except RuntimeError as exc:
                raise WeightsIntegrityError(
                    f"{path}: {name} weights do not match the stored configuration "
                    f"({str(exc).splitlines()[0]})", "the checkpoint is damaged; re-export it") from None
        info = {"source": "faceblur-bench train shen", "preset": ck.get("preset"),
                "stage": (ck["config"].get("schedule") or {}).get("stage"),
                "epoch": ck.get("epoch"), "step": ck.get("step")}
        return net, info

    def init_untrained(self, device: torch.device | str, *, tiny: bool = False) -> None:
        """Random weights (timing and contract tests only): the variant at paper widths, or with
        ``tiny`` the small net of :attr:`contract_options`."""
        d = self.paper_config().to_dict()
        if tiny:
            d.update({k: v for k, v in self.contract_options.items() if k != "parsing"})
            d["parsing"] = {**d["parsing"], **self.contract_options.get("parsing", {})}
        super().load(None, device)
        self.net = ShenNet(ShenConfig.from_dict(d)).to(self.device).eval()
        self.config = self.net.config
        self.trained = {"source": "untrained (contract tests only)"}

    @torch.no_grad()
    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        self.check_restore_input(blurred, self.net is not None,
                                 "call load(checkpoint, device) first (CLI: --checkpoint DIR_OR_FILE)")
        x = blurred.to(self.device, torch.float32) * self.input_scale
        h, w = x.shape[-2:]
        resized = h % 64 != 0 or w % 64 != 0
        if resized:  # the release: imresize(img, [128 128]); back with the same resize
            x = imresize(x, size=(128, 128))
        y = self.net(x).y.float()
        if resized:
            y = imresize(y, size=(h, w))
        return y.clamp_(0.0, 1.0)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        files = getattr(self, "_release_files", None)
        ident["trained"] = dict(self.trained)
        if files:  # a folder: one digest over the pair, each file's digest beside it
            per_file = {f.name: sha256_file(f) for f in files}
            ident["trained"]["sha256"] = per_file
            ident["checkpoint_sha256"] = hashlib.sha256(
                " ".join(f"{k}:{v}" for k, v in sorted(per_file.items())).encode()).hexdigest()
        return ident


@methods.register("shen")
class Shen(ShenMethod):
    description = ("Shen et al. (IJCV 2020): coarse net, face parsing on its output, fine net; "
                   "from a `faceblur-bench train shen` checkpoint")
    variant = "ijcv"


@methods.register("shen-cvpr18")
class ShenCVPR18(ShenMethod):
    description = ("Shen et al. (CVPR 2018): parsing on the blurred input + one deblurring net; "
                   "the authors' MatConvNet net_G/net_P .mat release or a `train shen` checkpoint")
    variant = "cvpr2018"
    accepts_release = True


@methods.register("shen-n2")
class ShenN2(ShenMethod):
    description = "Shen et al. (IJCV 2020) with 2 cascaded fine nets (Table 8), trained checkpoint"
    variant = "n2"


@methods.register("shen-n3")
class ShenN3(ShenMethod):
    description = "Shen et al. (IJCV 2020) with 3 cascaded fine nets (Table 8), trained checkpoint"
    variant = "n3"


REGISTERED: dict[str, type[ShenMethod]] = {"shen": Shen, "shen-cvpr18": ShenCVPR18,
                                           "shen-n2": ShenN2, "shen-n3": ShenN3}
