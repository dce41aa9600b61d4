"""The adversarial training step shared by the MSPL family (MSPL-GAN, SAPPGAN, DFPGnet).

All three train a generator (and optionally a discriminator) on the MSPL training layout
(:mod:`faceblur_bench.data.training`) with blur synthesised per batch on the training device.
Per step: the generator restores the blurred batch; the discriminator (if any) takes one step on
real vs. detached restored inputs; the generator takes one step on the method's loss with the
discriminator frozen. A subclass supplies the networks and the two losses.

Batches handed to the losses are dicts with ``sharp`` and ``blurred`` ``(N, 3, H, W)`` in
[-1, 1] and, when :meth:`MSPLGANTask.labels_needed`, ``labels`` ``(N, H, W)`` int64.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..data import training as mspl_data
from ..errors import UsageError
from .training import StepContext, TrainTask, ValidationData, detach_outputs

#: MSPL-family recipe shared by the three papers (Adam (0.9, 0.999), 1e-4 x0.99 per epoch, batch 16)
MSPL_FAMILY_DEFAULTS: dict[str, Any] = {
    "epochs": 300,
    "batch_size": 16,
    "optim": {"lr_g": 1e-4, "lr_d": 1e-4, "betas": [0.9, 0.999], "lr_decay": 0.99},
    "data": dict(mspl_data.MSPL_TRAIN_DATA),
    "vgg_layers": ["relu1_2", "relu2_2", "relu3_3"],
}

#: tiny data for smoke runs (``--tiny``, contract tests): 32 px crops of the synthetic layout
MSPL_SMOKE_DATA: dict[str, Any] = {"image_size": 32, "crop": 48, "val_images": 2, "num_workers": 0,
                                   "rotate_deg": 30.0}

VGGLoader = Callable[..., nn.Module]


class MSPLGANTask(TrainTask):
    """Generator + optional discriminator on the MSPL layout (see the module docstring)."""

    data_help = ("the MSPL training layout: train_img/, train_label/ (19-class) or train_label_cls4/, "
                 "optional trainkernels/blur_k{13..27}.mat and validationset/{gt,blur}/")
    inference_modules = ("generator",)

    def __init__(self, cfg: dict[str, Any], device: torch.device, *,
                 weights_overrides: dict[str, str] | None = None, vgg_loader: VGGLoader | None = None):
        super().__init__(cfg, device, weights_overrides=weights_overrides)
        self.modules["generator"] = self.build_generator().to(device)
        disc = self.build_discriminator()
        if disc is not None:
            self.modules["discriminator"] = disc.to(device)
        self.vgg: nn.Module | None = None
        if self.needs_vgg:
            if vgg_loader is None:
                from .dfpg.vggface import load_vggface as vgg_loader
            self.vgg = vgg_loader(tuple(cfg["vgg_layers"]), overrides=self.weights_overrides, device=device)
        oc = cfg["optim"]
        betas = tuple(float(b) for b in oc["betas"])
        for name, lr in (("generator", oc["lr_g"]), ("discriminator", oc["lr_d"])):
            if name in self.modules:
                opt = torch.optim.Adam(self.modules[name].parameters(), lr=float(lr), betas=betas)
                self.optimizers[name] = opt
                self.schedulers[name] = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=float(oc["lr_decay"]))
        self.degrader: mspl_data.Degrader | None = None
        self.kernels_desc = ""

    # -- what a method declares -------------------------------------------------------------------
    @abstractmethod
    def build_generator(self) -> nn.Module:
        """The generator; its forward takes ``(N, 3, H, W)`` in [-1, 1]."""

    @abstractmethod
    def build_discriminator(self) -> nn.Module | None:
        """The discriminator, or None when the configuration trains without adversarial loss."""

    @property
    @abstractmethod
    def needs_vgg(self) -> bool:
        """True when a loss uses VGGFace features (``VGGFace16.pth`` must then be present)."""

    @staticmethod
    def output_image(out: Any) -> torch.Tensor:
        """The restored image in [-1, 1] within the generator's output (default: ``out[0]``)."""
        return out[0]

    @classmethod
    def labels_needed(cls, cfg: dict[str, Any]) -> bool:
        """True when ``cfg`` trains with label maps (decided before the networks are built)."""
        return False

    @property
    def needs_labels(self) -> bool:
        return self.labels_needed(self.cfg)

    @abstractmethod
    def discriminator_loss(self, batch: dict[str, Any], out: Any, epoch: int,
                           disc: nn.Module) -> tuple[torch.Tensor, dict[str, Any]]:
        """Loss of the discriminator step; ``out`` is detached. ``disc`` may be a DDP wrapper."""

    @abstractmethod
    def generator_loss(self, batch: dict[str, Any], out: Any, epoch: int,
                       disc: nn.Module | None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Loss of the generator step; ``disc`` is the bare, frozen discriminator."""

    # -- configuration ----------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        size = int(cfg["data"]["image_size"])
        if size % 32:
            raise UsageError(f"data.image_size = {size} is not a multiple of 32",
                             "the discriminators downsample 5 times (use 32, 64, 128, ...)")
        if cfg["data"]["labels"] not in ("auto", "cls19", "cls4", "cls19to4"):
            raise UsageError(f"data.labels = {cfg['data']['labels']!r}", "use auto, cls19, cls4 or cls19to4")

    @classmethod
    def prepare_config(cls, cfg: dict[str, Any], data_root: Path, resuming: bool) -> dict[str, Any]:
        if not cls.labels_needed(cfg):
            return cfg
        mode, _ = mspl_data.resolve_labels(data_root, cfg["data"]["labels"])
        want = mspl_data.N_CLASSES[mode]
        have = int(cfg["model"]["discriminator"]["n_classes"])
        if have != want:
            if resuming:
                raise UsageError(f"the run was trained with {have} label classes but the data has {want} ({mode})",
                                 "resume on the same data / data.labels")
            cfg["model"]["discriminator"]["n_classes"] = want
        return cfg

    @classmethod
    def write_smoke_data(cls, root: Path) -> Path:
        return mspl_data.make_layout(root, n_images=4, size=48, labels="cls19")

    # -- data -------------------------------------------------------------------------------------
    def build_data(self, data_root: Path, *, rank: int, world: int
                   ) -> tuple[torch.utils.data.Dataset, ValidationData | None]:
        dcfg = self.cfg["data"]
        seed = int(self.cfg["seed"])
        has_val_dir = (data_root / "validationset" / "gt").is_dir()
        n_files = len(mspl_data.list_images(data_root / "train_img")) if (data_root / "train_img").is_dir() else 0
        holdout = 0 if has_val_dir else mspl_data.holdout_count(n_files, dcfg["val_images"])
        dataset = mspl_data.MSPLTrainSet(data_root, dcfg, seed=seed, need_labels=self.needs_labels, exclude=holdout)
        self.kernels_desc, bank = mspl_data.kernel_source(data_root, dcfg)
        self.degrader = mspl_data.Degrader(bank, float(dcfg["noise_sigma"]), bool(dcfg["no_blur_option"]), self.device)
        val = None
        if rank == 0:
            vs = mspl_data.build_validation(data_root, dcfg, bank, seed)
            if vs is not None:
                val = ValidationData(vs.blurred, vs.sharp, vs.source)
        return dataset, val

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        assert self.degrader is not None, "build_data() first"
        sharp01 = batch["sharp"].to(ctx.device, non_blocking=True)
        blurred01, k = self.degrader(sharp01, ctx.seed_for())
        b: dict[str, Any] = {"sharp": sharp01 * 2.0 - 1.0, "blurred": blurred01 * 2.0 - 1.0}
        if "labels" in batch:
            b["labels"] = batch["labels"].to(ctx.device, non_blocking=True)
        logs: dict[str, Any] = {"kernel": float(k)}
        with ctx.autocast():
            out = ctx.nets["generator"](b["blurred"])
        d_raw = self.modules.get("discriminator")
        if d_raw is not None:
            d_raw.requires_grad_(True)
            with ctx.autocast():
                loss_d, dl = self.discriminator_loss(b, detach_outputs(out), ctx.epoch, ctx.nets["discriminator"])
            opt_d = self.optimizers["discriminator"]
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            d_raw.requires_grad_(False)
            logs.update(dl)
        with ctx.autocast():
            loss_g, gl = self.generator_loss(b, out, ctx.epoch, d_raw)
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        logs.update(gl)
        return logs

    @torch.no_grad()
    def restore(self, blurred01: torch.Tensor, meta: list[dict[str, Any]] | None = None) -> torch.Tensor:
        y = self.output_image(self.modules["generator"](blurred01.to(self.device) * 2.0 - 1.0))
        return ((y.float().clamp(-1, 1) + 1.0) / 2.0)

    # -- shared helpers ---------------------------------------------------------------------------
    def sharp_features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        """VGGFace features of the sharp images (computed once per batch, no grad)."""
        if "_vgg_sharp" not in batch:
            assert self.vgg is not None
            with torch.no_grad():
                batch["_vgg_sharp"] = tuple(f.float() for f in self.vgg(batch["sharp"]))
        return batch["_vgg_sharp"]


__all__ = ["MSPLGANTask", "MSPL_FAMILY_DEFAULTS", "MSPL_SMOKE_DATA"]
