"""``faceblur-bench train cfmd``: CFMD-GAN (seed 003 §4.3, §5.1.2) on 300VW blur windows.

Per step (batch of (b, s_i, u_i) triples from :mod:`.data`; u-map u_2D filled with u_i):

1. G restores ``[ŝ_¼, ŝ_½, ŝ] = G(b, u)``;
2. D step on real ``D(s, b)`` vs. detached fake ``D(ŝ, b)``:
   ``L_D = d_gan_scale·(L_Denc + L_Ddec) + λ_Q·L_Q`` (:func:`.losses.discriminator_loss`);
3. G step with D frozen: ``L_G = λ_ar·L_ar + λ_adv·L_adv + λ_pix·L_pix + λ_per·L_per``.

Adam(1e-4, (0.9, 0.999)) for both, ExponentialLR ×0.99 stepped per epoch; batch 8; 200 epochs.
Presets (:mod:`.presets`): ``paper`` (default), ``released`` (the authors' train.py losses, bugs
fixed), Table 5 ablations ``cadc-only``, ``caca-only``, ``no-fmr``, and ``paper-block``.
Validation: windows held out of training (the last ``data.val_images`` windows), restored at
u = ``data.val_moment`` (0.5) against the FMR frame at that moment (index (n−1)/2), as the
release selects checkpoints. Inputs are [0, 1] in training, validation and inference alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ...errors import UsageError
from ...imageio import read_image
from ...registry import trainers
from ..training import CliOption, StepContext, TrainTask, ValidationData
from . import data as D
from . import losses as L
from . import presets as P
from .discriminator import CFMDDiscriminator, DiscriminatorConfig
from .networks import CFMDGenerator, GeneratorConfig, u_map

DEFAULTS: dict[str, Any] = {
    "epochs": 200,
    "batch_size": 8,
    **P.DEFAULTS,
    "data": {**P.DEFAULTS["data"], "val_images": 8, "num_workers": 4},
}

#: tiny networks and 32 px crops for smoke runs and the contract tests (never for results);
#: no LPIPS term there, so no AlexNet file is needed
SMOKE: dict[str, Any] = {
    "model": {"generator": {"base_channels": 8, "num_res": 1},
              "discriminator": {"widths": [8, 8, 16]}},
    "loss": {"lambda_per": 0.0},
    "data": {"crop": 32, "scale_max": 1.2, "samples_per_epoch": 4, "val_images": 1, "num_workers": 0,
             "videos": "all-but-test"},
    "log_every": 1,
}


@trainers.register("cfmd")
class CFMDTask(TrainTask):
    method = "cfmd-gan"
    description = ("CFMD-GAN (Lee, Han & Heo): ContAda MIMO-UNet G(b,u) + U-Net D with moment regressor Q; "
                   "Charbonnier x3 + LPIPS + adv + λ_Q; Adam 1e-4 x0.99/epoch; batch 8; 200 epochs")
    data_help = ("300VW blur windows as genBlurDataset.py writes them: blur/{vid}/blurNNN/{mid}.png, "
                 "sharp/{vid}/blurNNN/{mid}/{frame}.png and train_filelist.txt (FMR order; required "
                 "unless --preset no-fmr); the release's 83 training videos are used")
    defaults = DEFAULTS
    presets = P.PRESETS
    preset_descriptions = P.DESCRIPTIONS
    default_preset = P.DEFAULT_PRESET
    inference_modules = ("generator",)
    cli_options: ClassVar[dict[str, CliOption]] = {
        "frame_order": CliOption("data.frame_order", str, "fmr (train_filelist.txt order) or temporal"),
        "crop": CliOption("data.crop", int, "training crop size in pixels (256)"),
    }
    smoke_config = SMOKE

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        GeneratorConfig.from_dict(cfg["model"]["generator"])  # unknown keys / bad values
        dcfg = DiscriminatorConfig.from_dict(cfg["model"]["discriminator"])
        dc, lc = cfg["data"], cfg["loss"]
        m = 2 ** len(dcfg.widths)
        if int(dc["crop"]) % m or int(dc["crop"]) % 4:
            raise UsageError(f"data.crop = {dc['crop']} is not a multiple of {m}",
                             f"the discriminator halves the crop {len(dcfg.widths)} times (use 256, or {m}·k)")
        if not 1.0 <= float(dc["scale_min"]) <= float(dc["scale_max"]):
            raise UsageError(f"data.scale_min/max = {dc['scale_min']}/{dc['scale_max']}",
                             "use 1 <= scale_min <= scale_max (the paper: 1.0 and 1.5)")
        if not 0.0 <= float(dc["val_moment"]) <= 1.0:
            raise UsageError(f"data.val_moment = {dc['val_moment']} is outside [0, 1]", "use 0.5 (the centre)")
        if dc["frame_order"] not in ("fmr", "temporal") or dc["videos"] not in ("train", "all-but-test"):
            raise UsageError(f"data.frame_order = {dc['frame_order']!r}, data.videos = {dc['videos']!r}",
                             "frame_order: fmr | temporal; videos: train | all-but-test")
        if lc["pixel"] not in ("charbonnier", "l1"):
            raise UsageError(f"loss.pixel = {lc['pixel']!r}", "use 'charbonnier' (paper) or 'l1' (release)")

    @classmethod
    def write_smoke_data(cls, root: Path) -> Path:
        vids = {"001": [(5, 1), (5, 6)], "002": [(7, 1)]}  # two training videos
        return D.write_synthetic_tree(Path(root), vids, size=32)

    def __init__(self, cfg: dict[str, Any], device: torch.device, *,
                 weights_overrides: dict[str, str] | None = None):
        super().__init__(cfg, device, weights_overrides=weights_overrides)
        self.modules["generator"] = CFMDGenerator(GeneratorConfig.from_dict(cfg["model"]["generator"])).to(device)
        self.modules["discriminator"] = CFMDDiscriminator(
            DiscriminatorConfig.from_dict(cfg["model"]["discriminator"])).to(device)
        oc, lc = cfg["optim"], cfg["loss"]
        betas = tuple(float(b) for b in oc["betas"])
        for name in ("generator", "discriminator"):
            opt = torch.optim.Adam(self.modules[name].parameters(), lr=float(oc["lr"]), betas=betas)
            self.optimizers[name] = opt
            self.schedulers[name] = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=float(oc["gamma"]))
        # the LPIPS network is frozen (a plain attribute, not a checkpointed module)
        self.lpips = L.LPIPSLoss(self.weights_overrides).to(device) if float(lc["lambda_per"]) > 0 else None

    # -- data ---------------------------------------------------------------------------------------
    def build_data(self, data_root: Path, *, rank: int, world: int
                   ) -> tuple[torch.utils.data.Dataset, ValidationData | None]:
        dc = self.cfg["data"]
        root = D.find_root(Path(data_root))
        windows = D.list_windows(root, dc["videos"], dc["frame_order"])
        n_val = int(dc["val_images"])
        if n_val >= len(windows):
            raise UsageError(f"{len(windows)} training windows leave none for training after holding out "
                             f"data.val_images = {n_val}", "lower data.val_images or add windows")
        train_w, val_w = (windows[:-n_val], windows[-n_val:]) if n_val else (windows, [])
        dataset = D.MomentTrainSet(train_w, dc, seed=int(self.cfg["seed"]))
        val = None
        if rank == 0 and val_w:
            u = float(dc["val_moment"])
            blurred, sharp, meta = [], [], []
            for w in val_w:
                k = round(u * (w.n - 1))
                blurred.append(torch.from_numpy(read_image(w.blurred).copy()).permute(2, 0, 1))
                sharp.append(torch.from_numpy(read_image(w.frames[k]).copy()).permute(2, 0, 1))
                meta.append({"moment": k / (w.n - 1), "window": f"{w.video}/blur{w.n:03d}/{w.mid}"})
            if len({tuple(b.shape) for b in blurred}) == 1:
                val = ValidationData(torch.stack(blurred), torch.stack(sharp),
                                     f"{len(val_w)} held-out windows at u = {u} ({dc['frame_order']} order)", meta)
        return dataset, val

    # -- one step -----------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        lc = self.cfg["loss"]
        blur = batch["blurred"].to(ctx.device, non_blocking=True)
        sharp = batch["sharp"].to(ctx.device, non_blocking=True)
        u2d = u_map(batch["u"], blur)
        with ctx.autocast():
            outs = ctx.nets["generator"](blur, u2d)
        d_raw = self.modules["discriminator"]
        d_raw.requires_grad_(True)
        with ctx.autocast():
            disc = ctx.nets["discriminator"]
            real, fake = disc(sharp, blur), disc(outs[-1].detach(), blur)
            loss_d, logs = L.discriminator_loss(real, fake, u2d, float(lc["lambda_q"]), float(lc["d_gan_scale"]))
        opt_d = self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        d_raw.requires_grad_(False)
        with ctx.autocast():
            fake = d_raw(outs[-1], blur)
            l_pix = L.pixel_loss(outs, sharp, lc["pixel"], float(lc["charbonnier_eps"]))
            l_adv = L.adversarial_loss(fake)
            l_ar = L.regression(fake["q"], u2d)
            total = float(lc["lambda_pix"]) * l_pix + float(lc["lambda_adv"]) * l_adv + float(lc["lambda_ar"]) * l_ar
            logs |= {"g_pixel": l_pix.detach(), "g_adv": l_adv.detach(), "g_ar": l_ar.detach()}
            if self.lpips is not None:
                l_per = self.lpips(outs[-1], sharp)
                total = total + float(lc["lambda_per"]) * l_per
                logs["g_lpips"] = l_per.detach()
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()
        d_raw.requires_grad_(True)
        logs |= {"d_total": loss_d.detach(), "g_total": total.detach(), "u_mean": batch["u"].float().mean()}
        return logs

    @torch.no_grad()
    def restore(self, blurred01: torch.Tensor, meta: list[dict[str, Any]] | None = None) -> torch.Tensor:
        n = blurred01.shape[0]
        u0 = float(self.cfg["data"]["val_moment"])
        u = [float((meta[i] if meta else {}).get("moment", u0)) for i in range(n)]
        x = blurred01.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = self.modules["generator"](x, u)[-1][..., :h, :w]
        return y.float().clamp(0.0, 1.0)


__all__ = ["SMOKE", "CFMDTask"]
