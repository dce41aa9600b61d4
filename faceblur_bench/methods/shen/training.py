"""``faceblur-bench train shen``: the progressive four-stage schedule of seed 004 §3.4.

=====  ===========================================================  ==================  ========
stage  trains (the others frozen)                                   loss                 default
=====  ===========================================================  ==================  ========
1      G_c                                                          L_c (both scales)    200 k it
2      P on G_c's output                                            L_p                  60 k it
3      G_f (and D)                                                  L_c + λ_s L_s +      200 k it
                                                                    λ_VGG L_VGG +
                                                                    λ_adv L_adv
4      G_c, P, G_f jointly (and D)                                  eq. 11               100 k it
=====  ===========================================================  ==================  ========

eq. 11: ``L = L_c + 50 L_s + 1e-4 L_p + 1e-5 L_VGG + 5e-5 L_adv`` (c = 1 in eq. 7). Learning
rates (§3.5): 4e-5 for the deblurring nets, 5e-6 for P; D is not given (4e-5 here). The
optimiser is not named (MatConvNet): Adam (0.9, 0.999) here, which also makes the absolute scale
of the summed losses irrelevant. Batch 16.

Schedule (``schedule`` section): ``stage`` 0 runs the four stages in order, switching by the
global step (``iterations``: the stage lengths, the paper's by default), so ``--resume`` lands in
the right stage with the same losses; ``stage`` N (``--stage N``) trains only stage N for
``iterations[N-1]`` steps, starting from the modules of ``init_from`` (``--init-from``: a
checkpoint of the previous stage's run; required for stages 2–4). With ``auto_epochs`` (default)
the number of epochs is set from the iteration count and the data size when a run starts
(``--epochs`` then has no effect; ``--set schedule.auto_epochs=false`` restores it); the last
stage absorbs the rounding up to whole epochs. Frozen networks run in eval mode (P's batch norm
on its running statistics); active ones in training mode.

Per step: blur is synthesised on the device (:class:`.data.Blurrer`); in stages 3–4 D first
takes one step on ``[y_GT, ŷ.detach()]``, then the deblurring nets take one step with D frozen.
L_c and L_s apply to every scale of every fine net (and of G_c in stage 4), L_VGG (VGG-Face
pool2 + pool5, ``vgg_face_dag.pth``) and L_adv to the final output only. L_s masks come from the
ground-truth labels (``loss.masks = "gt"``) or from P's detached probabilities (``"predicted"``);
the paper says only "extracted from the semantic label".
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...errors import UsageError
from ...registry import trainers
from .. import checkpoint as ckpt_io
from ..training import CliOption, StepContext, TrainTask, ValidationData
from . import data as D
from . import losses as L
from . import presets as P
from .networks import (
    DiscriminatorConfig,
    ShenConfig,
    ShenDiscriminator,
    ShenNet,
    half,
)

STAGES: dict[int, tuple[str, ...]] = {1: ("coarse",), 2: ("parsing",), 3: ("fine", "discriminator"),
                                      4: ("coarse", "parsing", "fine", "discriminator")}
STAGE_NAMES = {1: "G_c with L_c", 2: "P with L_p (G_c frozen)",
               3: "G_f with L_c + L_s + L_VGG + L_adv (G_c, P frozen)", 4: "joint, eq. 11"}

DEFAULTS: dict[str, Any] = {
    "epochs": 1,  # replaced from schedule.iterations when schedule.auto_epochs
    "batch_size": 16,
    "model": {"shen": ShenConfig().to_dict(),
              "discriminator": {"widths": list(DiscriminatorConfig().widths)}},
    "loss": {"lambda_s": L.LAMBDA_S, "lambda_p": L.LAMBDA_P, "lambda_vgg": L.LAMBDA_VGG,
             "lambda_adv": L.LAMBDA_ADV, "c": L.C_STRUCT, "structural": "adaptive",
             "reduction": "sum", "masks": "gt", "vgg_layers": ["pool2", "pool5"]},
    "optim": {"lr_deblur": 4e-5, "lr_parsing": 5e-6, "lr_d": 4e-5, "betas": [0.9, 0.999]},
    "schedule": {"stage": 0, "iterations": [200_000, 60_000, 200_000, 100_000],
                 "auto_epochs": True, "init_from": ""},
    "data": dict(D.DATA_DEFAULTS),
}

#: architecture variants (Tables 7, 8) and the loss ablations of Tables 4 and 6
PRESETS: dict[str, dict[str, Any]] = {
    **{name: {"model": {"shen": over}} for name, over in P.VARIANTS.items() if name != "cvpr2018"},
    "lc-only": {"loss": {"lambda_s": 0.0, "lambda_vgg": 0.0, "lambda_adv": 0.0}},
    "equal-ls": {"loss": {"structural": "equal", "lambda_vgg": 0.0, "lambda_adv": 0.0}},
    "adaptive-ls": {"loss": {"lambda_vgg": 0.0, "lambda_adv": 0.0}},
}
PRESET_DESCRIPTIONS: dict[str, str] = {
    **{name: d for name, d in P.DESCRIPTIONS.items() if name != "cvpr2018"},
    "lc-only": "Table 4 row 1: G_f trained with L_c only (no L_s, L_VGG, L_adv)",
    "equal-ls": "Table 4 row 2: L_c + equal-weight L_s (the CVPR 2018 loss), no L_VGG / L_adv",
    "adaptive-ls": "Table 4 row 3: L_c + adaptive L_s, no L_VGG / L_adv",
}

SMOKE: dict[str, Any] = {
    "batch_size": 2, "log_every": 1,
    "model": {"shen": {"width": 8, "res_blocks": 1, "first_kernel": 3, "kernel": 3,
                       "parsing": {"encoder_widths": [4, 4, 4, 4, 4, 4], "head_width": 4}},
              "discriminator": {"widths": [4, 4, 4, 4, 4, 4]}},
    # the contract tests have no VGG-Face file: L_VGG is off in the smoke configuration
    "loss": {"lambda_vgg": 0.0},
    "schedule": {"iterations": [1, 1, 1, 1], "auto_epochs": False},
    "data": {"image_size": 64, "val_images": 1, "num_workers": 0, "kernel_sizes": [13, 15],
             "kernel_bank_size": 4},
}


@trainers.register("shen")
class ShenTask(TrainTask):
    method = "shen"
    description = ("Shen et al. (IJCV 2020): G_c, P, G_f in four progressive stages (200k/60k/200k/"
                   "100k it), eq. 11 weights 50, 1e-4, 1e-5, 5e-5; Adam 4e-5 / P 5e-6; batch 16")
    data_help = ("sharp aligned faces with 11-class Helen labels: images/{name}.png|jpg and "
                 "labels/{name}.png (or labels/{name}/{name}_lbl00..10.png); docs/methods-shen.md")
    defaults = DEFAULTS
    presets = PRESETS
    preset_descriptions = PRESET_DESCRIPTIONS
    default_preset = "ijcv"
    inference_modules = ("coarse", "parsing", "fine")
    cli_options: ClassVar[dict[str, CliOption]] = {
        "stage": CliOption("schedule.stage", int,
                           "Run only stage N (1 G_c, 2 P, 3 G_f, 4 joint); 0 runs all four"),
        "init_from": CliOption("schedule.init_from", str,
                               "Checkpoint of the previous stage's run whose networks to start from"),
    }
    smoke_config = SMOKE

    # -- configuration ----------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        try:
            mc = ShenConfig.from_dict(cfg["model"]["shen"])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"model.shen: {exc}", "see `faceblur-bench train presets shen`") from None
        if mc.variant != "ijcv":
            raise UsageError("the shen trainer trains the IJCV model (model.shen.variant = 'ijcv')",
                             "the CVPR 2018 model runs from the authors' release (--method shen-cvpr18)")
        if mc.num_classes != D.N_CLASSES:
            raise UsageError(f"model.shen.num_classes = {mc.num_classes}, but the Helen labels have 11",
                             "keep num_classes = 11")
        sc, lc = cfg["schedule"], cfg["loss"]
        stage = int(sc["stage"])
        if stage not in (0, 1, 2, 3, 4):
            raise UsageError(f"schedule.stage = {stage}", "use 1, 2, 3, 4 or 0 (all four in order)")
        its = [int(v) for v in sc["iterations"]]
        if len(its) != 4 or min(its) < 0 or sum(its) < 1:
            raise UsageError(f"schedule.iterations = {sc['iterations']}",
                             "give four non-negative stage lengths (iterations)")
        if stage >= 2 and not sc["init_from"]:
            raise UsageError(f"--stage {stage} starts from the networks of stage {stage - 1}",
                             f"pass --init-from RUN/checkpoints/last.pth of the stage-{stage - 1} run")
        if lc["structural"] not in ("adaptive", "equal"):
            raise UsageError(f"loss.structural = {lc['structural']!r}", "use 'adaptive' or 'equal'")
        if lc["masks"] not in ("gt", "predicted"):
            raise UsageError(f"loss.masks = {lc['masks']!r}", "use 'gt' or 'predicted'")
        if lc["reduction"] not in L.REDUCTIONS:
            raise UsageError(f"loss.reduction = {lc['reduction']!r}", f"use one of {list(L.REDUCTIONS)}")
        size = int(cfg["data"]["image_size"])
        if size % 64:
            raise UsageError(f"data.image_size = {size}", "use a multiple of 64 (128 in the paper)")

    @classmethod
    def prepare_config(cls, cfg: dict[str, Any], data_root: Path, resuming: bool) -> dict[str, Any]:
        sc = cfg["schedule"]
        if resuming or not sc["auto_epochs"]:
            return cfg
        train_files, _ = D.training_files(data_root, cfg["data"]["val_images"])
        world = int(os.environ.get("WORLD_SIZE", "1"))
        per_epoch = max(1, len(train_files) // world // int(cfg["batch_size"]))
        its = [int(v) for v in sc["iterations"]]
        total = its[int(sc["stage"]) - 1] if int(sc["stage"]) else sum(its)
        cfg["epochs"] = max(1, math.ceil(total / per_epoch))
        return cfg

    @classmethod
    def write_smoke_data(cls, root: Path) -> Path:
        return D.make_smoke_layout(Path(root) / "helen", n_images=5, size=64)

    # -- networks -----------------------------------------------------------------------------------
    def __init__(self, cfg: dict[str, Any], device: torch.device, *,
                 weights_overrides: dict[str, str] | None = None):
        super().__init__(cfg, device, weights_overrides=weights_overrides)
        self.net = ShenNet(ShenConfig.from_dict(cfg["model"]["shen"])).to(device)
        assert self.net.coarse is not None
        size = int(cfg["data"]["image_size"])
        disc = ShenDiscriminator(DiscriminatorConfig(
            widths=tuple(int(w) for w in cfg["model"]["discriminator"]["widths"]), image_size=size))
        self.modules = {"coarse": self.net.coarse, "parsing": self.net.parsing,
                        "fine": self.net.fine, "discriminator": disc.to(device)}
        oc = cfg["optim"]
        betas = tuple(float(b) for b in oc["betas"])
        lrs = {"coarse": oc["lr_deblur"], "parsing": oc["lr_parsing"], "fine": oc["lr_deblur"],
               "discriminator": oc["lr_d"]}
        self.optimizers = {k: torch.optim.Adam(m.parameters(), lr=float(lrs[k]), betas=betas)
                           for k, m in self.modules.items()}
        init = str(cfg["schedule"]["init_from"] or "")
        if init:
            ck = ckpt_io.load_trained(Path(init).expanduser(), trainers=("shen",))
            for k, sd in ck["modules"].items():
                if k in self.modules:
                    self.modules[k].load_state_dict(sd)
        self.vgg = None
        if float(cfg["loss"]["lambda_vgg"]) > 0 and int(cfg["schedule"]["stage"]) in (0, 3, 4):
            from .vggface import load_vggface

            self.vgg = load_vggface(tuple(cfg["loss"]["vgg_layers"]), self.weights_overrides, device)
        self.blurrer: D.Blurrer | None = None
        self.kernels_desc = ""

    def stage_at(self, step: int) -> int:
        """The stage trained at global step ``step`` (0-based)."""
        fixed = int(self.cfg["schedule"]["stage"])
        if fixed:
            return fixed
        end = 0
        for s, n in enumerate(self.cfg["schedule"]["iterations"], start=1):
            end += int(n)
            if step < end:
                return s
        return 4

    # -- data -------------------------------------------------------------------------------------
    def build_data(self, data_root: Path, *, rank: int, world: int
                   ) -> tuple[torch.utils.data.Dataset, ValidationData | None]:
        dc = self.cfg["data"]
        train_files, val_files = D.training_files(data_root, dc["val_images"])
        dataset = D.HelenTrainSet(data_root, train_files, dc, seed=int(self.cfg["seed"]))
        bank = D.kernel_bank(dc)
        self.kernels_desc = (f"{dc['kernel_generator']} generator, {dc['kernel_bank_size']} per "
                             f"size {list(bank)}, seed {dc['kernel_seed']}")
        self.blurrer = D.Blurrer(bank, float(dc["noise_sigma"]), self.device)
        val = None
        if rank == 0 and val_files:
            blurred, sharp = D.validation_pairs(val_files, int(dc["image_size"]), bank,
                                                int(self.cfg["seed"]))
            val = ValidationData(blurred, sharp, f"{len(val_files)} held-out images, seeded blur, "
                                 "no noise")
        return dataset, val

    # -- one step ---------------------------------------------------------------------------------
    def _structural(self, outs: list[torch.Tensor], halves: list[torch.Tensor], sharp, sharp_half,
                    masks: torch.Tensor) -> torch.Tensor:
        lc = self.cfg["loss"]
        mh = L.half_masks(masks)
        total = sharp.new_zeros(())
        for y, yh in zip(outs, halves):
            total = total + L.structural_loss(y, sharp, masks, lc["structural"], float(lc["c"]))
            total = total + L.structural_loss(yh, sharp_half, mh, lc["structural"], float(lc["c"]))
        return total

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        assert self.blurrer is not None, "build_data() first"
        lc = self.cfg["loss"]
        red = lc["reduction"]
        stage = self.stage_at(ctx.step)
        active = STAGES[stage]
        for k, m in self.modules.items():
            m.train(k in active)
        sharp = batch["sharp"].to(ctx.device, non_blocking=True)
        labels = batch["labels"].to(ctx.device, non_blocking=True)
        blurred = self.blurrer(sharp, ctx.seed_for())
        sharp_half = half(sharp)
        logs: dict[str, Any] = {"stage": float(stage)}
        nets, bare = ctx.nets, self.modules
        with ctx.autocast():
            if stage == 1:
                yc_half, yc = nets["coarse"](blurred)
                total = L.content_loss([yc_half, yc], [sharp_half, sharp], red)
                logs["l_c"] = total.detach()
            elif stage == 2:
                with torch.no_grad():
                    _, yc = bare["coarse"](blurred)
                total = L.parsing_loss(nets["parsing"](yc), labels, red)
                logs["l_p"] = total.detach()
            else:
                if stage == 3:
                    with torch.no_grad():
                        yc_half, yc = bare["coarse"](blurred)
                        logits = bare["parsing"](yc)
                else:
                    yc_half, yc = nets["coarse"](blurred)
                    logits = nets["parsing"](yc)
                probs = torch.softmax(logits.float(), 1)
                outs, halves = nets["fine"](blurred, yc, probs)
        if stage >= 3:
            total, more = self._fine_losses(stage, ctx, sharp, sharp_half, labels, yc, yc_half,
                                            logits, probs, outs, halves)
            logs.update(more)
        for k in active:
            if k != "discriminator":
                self.optimizers[k].zero_grad(set_to_none=True)
        total.backward()
        for k in active:
            if k != "discriminator":
                self.optimizers[k].step()
        logs["total"] = total.detach()
        return logs

    def _fine_losses(self, stage, ctx, sharp, sharp_half, labels, yc, yc_half, logits, probs, outs,
                     halves) -> tuple[torch.Tensor, dict[str, Any]]:
        lc = self.cfg["loss"]
        red = lc["reduction"]
        logs: dict[str, Any] = {}
        pairs_o = [t for pair in zip(halves, outs) for t in pair]
        pairs_t = [sharp_half, sharp] * len(outs)
        if stage == 4:
            pairs_o += [yc_half, yc]
            pairs_t += [sharp_half, sharp]
        l_c = L.content_loss(pairs_o, pairs_t, red)
        total = l_c
        logs["l_c"] = l_c.detach()
        if float(lc["lambda_s"]) > 0:
            if lc["masks"] == "gt":
                masks = L.component_masks(labels)
            else:
                masks = probs.detach()[:, list(L.STRUCTURAL_CLASSES)]
            l_s = self._structural(outs, halves, sharp, sharp_half, masks)
            total = total + float(lc["lambda_s"]) * l_s
            logs["l_s"] = l_s.detach()
        if stage == 4 and float(lc["lambda_p"]) > 0:
            l_p = L.parsing_loss(logits, labels, red)
            total = total + float(lc["lambda_p"]) * l_p
            logs["l_p"] = l_p.detach()
        y = outs[-1]
        if self.vgg is not None:
            with torch.no_grad(), ctx.autocast():
                target = self.vgg(sharp)
            with ctx.autocast():
                feats = self.vgg(y)
            l_vgg = L.perceptual_loss(feats, target, red)
            total = total + float(lc["lambda_vgg"]) * l_vgg
            logs["l_vgg"] = l_vgg.detach()
        if float(lc["lambda_adv"]) > 0:
            d_raw = self.modules["discriminator"]
            d_raw.requires_grad_(True)
            with ctx.autocast():
                both = ctx.nets["discriminator"](torch.cat([sharp, y.detach()], 0))
            n = sharp.shape[0]
            l_d = L.discriminator_loss(both[:n], both[n:])
            opt = self.optimizers["discriminator"]
            opt.zero_grad(set_to_none=True)
            l_d.backward()
            opt.step()
            d_raw.requires_grad_(False)
            with ctx.autocast():
                l_adv = L.adversarial_loss(d_raw(y))
            total = total + float(lc["lambda_adv"]) * l_adv
            logs |= {"l_adv": l_adv.detach(), "d_loss": l_d.detach()}
        return total, logs

    @torch.no_grad()
    def restore(self, blurred01: torch.Tensor, meta: list[dict[str, Any]] | None = None) -> torch.Tensor:
        return self.net(blurred01.to(self.device).float()).y.float().clamp(0.0, 1.0)


__all__ = ["ShenTask"]
