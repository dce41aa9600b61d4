"""``faceblur-bench train yun``: Yun et al.'s joint ×8 SR + deblurring GAN (seed 001 §III-D, §IV-A).

One step (both presets):

1. the generator maps the 32×32 blurred input to ``(upx, Î_HRB, Î_HR)``;
2. discriminator step (one Adam over D_g and D_l, as in the notebooks): D_g scores
   ``cat(upx, I_HR)`` against ``cat(upx, Î_HR)``, D_l scores ``I_HR ⊙ M`` against
   ``Î_HR ⊙ M`` (generator outputs detached), LSGAN, ``0.25·Σ`` of the four terms
   (:func:`.losses.discriminators_loss`);
3. generator step with both discriminators frozen: eq. 6,
   ``L_GAN(D_g) + L_GAN(D_l) + 100·L_pix + 10·L_VGG``.

Staging (paper preset): before epoch ``loss.local_from_epoch`` D_l is neither trained nor
used, i.e. G + D_g only. Adam lr 2e-4, β (0.5, 0.999) for G and for the discriminators; no lr
schedule. Data: :mod:`.data` (release layout, or synthesis from sharp faces on the device).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import UsageError
from ...registry import trainers
from ..training import StepContext, TrainTask, ValidationData
from . import data as D
from . import losses as L
from . import presets as P
from .discriminators import PatchDiscriminator, YunDiscriminatorConfig
from .networks import YunGenerator, YunGeneratorConfig

VGGLoader = Callable[..., nn.Module]

#: tiny networks and data for ``--tiny`` and the contract tests (no VGG-19 file needed);
#: instance norm, the notebooks' choice for batch size 1, so any batch size works
SMOKE: dict[str, Any] = {
    "batch_size": 2,
    "log_every": 1,
    "model": {"generator": {"ngf": 4, "upscale_width": 4, "norm": "instance"},
              "discriminator": {"ndf": 4, "norm": "instance"}},
    "loss": {"lambda_vgg": 0.0},
    "data": {"val_images": 2, "num_workers": 0},
}


@trainers.register("yun")
class YunTask(TrainTask):
    method = "yun"
    description = ("Yun et al. (joint face SR and deblurring): joint x8 SR + deblurring GAN, LSGAN D_g + D_l, "
                   "L_GAN + 100 L_pix + 10 L_VGG, Adam 2e-4 (0.5, 0.999)")
    data_help = ("the release's trainx8/ (32x32), wblur/, GT/, fmask/ (256x256) folders; or sharp faces in "
                 "train_img/ (+ train_label/ 19-class maps for the face mask), blurred and x8-downsampled on the fly")
    defaults = P.DEFAULTS
    presets = P.PRESETS
    preset_descriptions = P.DESCRIPTIONS
    default_preset = P.DEFAULT_PRESET
    inference_modules = ("generator",)
    smoke_config = SMOKE

    def __init__(self, cfg: dict[str, Any], device: torch.device, *,
                 weights_overrides: dict[str, str] | None = None, vgg_loader: VGGLoader | None = None):
        super().__init__(cfg, device, weights_overrides=weights_overrides)
        mc = cfg["model"]
        self.modules["generator"] = YunGenerator(YunGeneratorConfig.from_dict(mc["generator"])).to(device)
        dcfg = YunDiscriminatorConfig.from_dict(mc["discriminator"])
        self.modules["d_global"] = PatchDiscriminator(6, dcfg).to(device)
        self.modules["d_local"] = PatchDiscriminator(3, dcfg).to(device)
        lc = cfg["loss"]
        self.vgg: nn.Module | None = None
        if float(lc["lambda_vgg"]) > 0:
            if vgg_loader is None:
                from .vgg19 import load_vgg19 as vgg_loader
            self.vgg = vgg_loader(tuple(lc["vgg_layers"]), overrides=self.weights_overrides, device=device)
        oc = cfg["optim"]
        betas = tuple(float(b) for b in oc["betas"])
        self.optimizers["generator"] = torch.optim.Adam(self.modules["generator"].parameters(),
                                                        lr=float(oc["lr"]), betas=betas)
        d_params = list(self.modules["d_global"].parameters()) + list(self.modules["d_local"].parameters())
        self.optimizers["discriminators"] = torch.optim.Adam(d_params, lr=float(oc["lr"]), betas=betas)
        self.kernels: D.KernelSampler | None = None
        self.kernels_desc = ""

    # -- configuration ----------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        lc, gc = cfg["loss"], cfg["model"]["generator"]
        try:
            YunGeneratorConfig.from_dict(gc)
            YunDiscriminatorConfig.from_dict(cfg["model"]["discriminator"])
        except ValueError as exc:
            raise UsageError(f"yun: {exc}", "fix model.generator / model.discriminator") from None
        if gc["norm"] == "batch" and int(cfg["batch_size"]) < 2:
            raise UsageError(f"batch_size = {cfg['batch_size']} with batch norm: the 1x1 innermost level "
                             "cannot be batch-normalised over one image",
                             "use --batch-size 2 or more, or model.generator.norm = 'instance' "
                             "(what the notebooks build for batch size 1)")
        if float(lc["lambda_vgg"]) > 0 and len(lc["vgg_layers"]) != len(lc["vgg_weights"]):
            raise UsageError(f"loss.vgg_layers has {len(lc['vgg_layers'])} entries, loss.vgg_weights "
                             f"{len(lc['vgg_weights'])}", "give one weight per VGG-19 layer")
        if int(lc["local_from_epoch"]) < 0:
            raise UsageError(f"loss.local_from_epoch = {lc['local_from_epoch']}", "use an epoch >= 0")
        val = cfg["data"]["val_images"]
        if val != "auto" and (not isinstance(val, int) or val < 0):
            raise UsageError(f"data.val_images = {val!r}", "use a count >= 0 or 'auto'")

    @classmethod
    def write_smoke_data(cls, root: Path) -> Path:
        return D.write_release_tree(root, n_images=4)

    # -- data -------------------------------------------------------------------------------------
    def build_data(self, data_root: Path, *, rank: int, world: int
                   ) -> tuple[torch.utils.data.Dataset, ValidationData | None]:
        from ...data.training import holdout_count

        dc = self.cfg["data"]
        seed = int(self.cfg["seed"])
        kind = D.layout_kind(data_root)
        names = D.release_names(data_root) if kind == "release" else D.sharp_names(data_root)
        has_val_dir = kind == "release" and (data_root / "valx8").is_dir() and (data_root / "val_GT").is_dir()
        n_val = holdout_count(len(names), dc["val_images"])
        val_names = [] if has_val_dir else names[len(names) - n_val:] if n_val else []
        train_names = names[: len(names) - len(val_names)]
        if kind == "sharp":
            from ...data.kernels import kernel_bank

            sizes = tuple(int(k) for k in dc["kernel_sizes"])
            bank = kernel_bank(int(dc["kernel_bank_size"]), sizes, seed=int(dc["kernel_seed"]),
                               kind=str(dc["kernel_kind"]))
            self.kernels = D.KernelSampler(bank, self.device)
            self.kernels_desc = (f"{dc['kernel_kind']} kernels {sizes}, {dc['kernel_bank_size']} per size, "
                                 f"seed {dc['kernel_seed']}, inside the face mask")
        dataset = D.YunTrainSet(data_root, train_names, hflip=bool(dc["hflip"]), seed=seed)
        val = None
        if rank == 0:
            if has_val_dir:
                val = self._val_from_dirs(data_root, n_val)
            elif val_names:
                val = self._val_from_names(data_root, kind, val_names, seed)
        return dataset, val

    def _val_from_dirs(self, root: Path, n: int) -> ValidationData | None:
        lr_paths = D._images(root / "valx8")[: n or None]
        pairs = [(p, D._find(root / "val_GT", p.stem, (".jpg", ".png"))) for p in lr_paths]
        pairs = [(a, b) for a, b in pairs if b is not None]
        if not pairs:
            return None
        lr = torch.stack([torch.from_numpy(D.read_rgb(a, D.INPUT_SIZE)).permute(2, 0, 1) for a, _ in pairs])
        gt = torch.stack([torch.from_numpy(D.read_rgb(b, D.HR_SIZE)).permute(2, 0, 1) for _, b in pairs])
        return ValidationData(lr, gt, f"{root / 'valx8'} ({len(pairs)} pairs)")

    def _val_from_names(self, root: Path, kind: str, names: list[str], seed: int) -> ValidationData:
        items = [D.load_item(root, kind, n) for n in names]
        sharp = torch.stack([it["sharp"] for it in items])
        if kind == "release":
            lr = torch.stack([it["lr"] for it in items])
            src = f"last {len(names)} trainx8/ images (held out)"
        else:
            assert self.kernels is not None
            mask = torch.stack([it["mask"] for it in items])
            k = self.kernels(len(names), (seed, 10**6)).cpu()
            _, lr = D.synthesise(sharp, mask, k)
            src = f"last {len(names)} train_img/ images (held out), synthesised with seed {seed}"
        q = (lambda t: torch.clamp(torch.round(t * 255.0), 0, 255).to(torch.uint8))
        return ValidationData(q(lr), q(sharp), src)

    # -- one step ---------------------------------------------------------------------------------
    def _batch(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        """Batch tensors on the device in [-1, 1] (mask in [0, 1]); synthesises the triple when needed."""
        sharp = batch["sharp"].to(ctx.device, non_blocking=True)
        mask = batch["mask"].to(ctx.device, non_blocking=True)
        if "lr" in batch:
            lr = batch["lr"].to(ctx.device, non_blocking=True)
            bhr = batch["blurred_hr"].to(ctx.device, non_blocking=True)
        else:
            assert self.kernels is not None, "build_data() first"
            k = self.kernels(sharp.shape[0], ctx.seed_for())
            g = torch.Generator(device=sharp.device)
            g.manual_seed(int(np.random.default_rng(list(ctx.seed_for(1))).integers(0, 2**62)))
            bhr, lr = D.synthesise(sharp, mask, k, float(self.cfg["data"]["noise_sigma"]), g)
        return {"lr": lr * 2 - 1, "blurred_hr": bhr * 2 - 1, "sharp": sharp * 2 - 1, "mask": mask}

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        b = self._batch(batch, ctx)
        lc = self.cfg["loss"]
        use_local = ctx.epoch >= int(lc["local_from_epoch"])
        sharp, mask = b["sharp"], b["mask"]
        with ctx.autocast():
            upx, bhr_hat, shr_hat = ctx.nets["generator"](b["lr"])
        # discriminator step (generator outputs detached)
        dg_raw, dl_raw = self.modules["d_global"], self.modules["d_local"]
        dg_raw.requires_grad_(True)
        dl_raw.requires_grad_(use_local)
        u, f = upx.detach(), shr_hat.detach()
        with ctx.autocast():
            g_real = ctx.nets["d_global"](torch.cat([u, sharp.to(u.dtype)], 1)).float()
            g_fake = ctx.nets["d_global"](torch.cat([u, f], 1)).float()
            l_real = l_fake = None
            if use_local:
                l_real = ctx.nets["d_local"](sharp * mask).float()
                l_fake = ctx.nets["d_local"]((f * mask).to(sharp.dtype)).float()
            loss_d = L.discriminators_loss(g_real, g_fake, l_real, l_fake)
        opt_d = self.optimizers["discriminators"]
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        dg_raw.requires_grad_(False)
        dl_raw.requires_grad_(False)
        logs: dict[str, Any] = {"d_loss": loss_d.detach(), "d_g_real": g_real.mean().detach(),
                                "d_g_fake": g_fake.mean().detach()}
        # generator step with the discriminators frozen (bare modules: no DDP reduction needed)
        with ctx.autocast():
            sg = dg_raw(torch.cat([upx, shr_hat], 1)).float()
            sl = dl_raw(shr_hat * mask).float() if use_local else None
            l_pix = L.pixel_loss(bhr_hat.float(), b["blurred_hr"], shr_hat.float(), sharp, mask)
            l_vgg = sharp.new_zeros(())
            if self.vgg is not None:
                with torch.no_grad():
                    target = tuple(t.float() for t in self.vgg(sharp))
                l_vgg = L.vgg_loss(tuple(t.float() for t in self.vgg(shr_hat)), target, lc["vgg_weights"])
            loss_g = L.generator_loss(sg, sl, l_pix, l_vgg, float(lc["lambda_pix"]), float(lc["lambda_vgg"]))
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        logs.update({"g_total": loss_g.detach(), "g_adv_global": L.lsgan_g_loss(sg).detach(),
                     "g_pix": l_pix.detach(), "g_vgg": l_vgg.detach(), "local": float(use_local),
                     # 0 while D_l is not active yet (staged training): one set of columns per run
                     "g_adv_local": L.lsgan_g_loss(sl).detach() if sl is not None else 0.0})
        return logs

    def train_mode(self, on: bool) -> None:
        for m in self.modules.values():
            m.train(on)

    @torch.no_grad()
    def restore(self, blurred01: torch.Tensor, meta: list[dict[str, Any]] | None = None) -> torch.Tensor:
        y = self.modules["generator"](blurred01.to(self.device).float() * 2.0 - 1.0)[2]
        return (y.float().clamp(-1, 1) + 1.0) / 2.0
