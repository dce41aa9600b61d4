"""``faceblur-bench train dfpg`` (seed 002 §3.4): channel-attention feature discriminator + prior loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...errors import UsageError
from ...registry import trainers
from ..gan import MSPL_FAMILY_DEFAULTS, MSPL_SMOKE_DATA, MSPLGANTask
from ..training import merge_config
from . import losses as L
from . import presets as P
from .discriminator import ChannelAttentionFeatureDiscriminator, FeatureDiscriminatorConfig
from .model import DFPGGenerator, GeneratorConfig

#: tiny DFPGnet for smoke runs and the contract tests (never for results)
SMOKE: dict[str, Any] = {
    "model": {"generator": {"widths": [8, 16, 32], "base_blocks": 1, "prior_blocks": 1, "se_reduction": 4},
              "discriminator": {"width": 4, "se_reduction": 8}},
    "data": MSPL_SMOKE_DATA, "log_every": 1,
}


@trainers.register("dfpg")
class DFPGTask(MSPLGANTask):
    method = "dfpg"
    description = ("DFPGnet (Jung et al., WACV 2022): prior stream + channel-attention feature discriminator; "
                   "λ_adv 0.05, λ_prior 1; Adam G 1e-4 / D 1e-5 x0.99/epoch; batch 16; 300 epochs")
    defaults = merge_config(MSPL_FAMILY_DEFAULTS, P.DEFAULTS, strict=False)
    presets = P.PRESETS
    preset_descriptions = P.DESCRIPTIONS
    default_preset = P.FULL
    smoke_config = SMOKE

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        super().check_config(cfg)
        lc, gc = cfg["loss"], cfg["model"]["generator"]
        if (lc["prior"] or lc["adversarial"]) and not gc["prior_stream"]:
            raise UsageError("the prior loss and the feature discriminator need the prior stream",
                             "set model.generator.prior_stream = true, or loss.prior/adversarial = false")
        if lc["prior_reduction"] not in ("mean", "sum"):
            raise UsageError(f"loss.prior_reduction = {lc['prior_reduction']!r}", "use 'mean' or 'sum'")

    def build_generator(self) -> nn.Module:
        return DFPGGenerator(GeneratorConfig.from_dict(self.cfg["model"]["generator"]))

    def build_discriminator(self) -> nn.Module | None:
        if not self.cfg["loss"]["adversarial"]:
            return None
        return ChannelAttentionFeatureDiscriminator(
            FeatureDiscriminatorConfig.from_dict(self.cfg["model"]["discriminator"]))

    @property
    def needs_vgg(self) -> bool:
        lc = self.cfg["loss"]
        return bool(lc["prior"] or lc["adversarial"] or lc["perceptual"])

    def discriminator_loss(self, batch, out, epoch, disc):
        real = self.sharp_features(batch)
        fake = out[1]
        n = real[0].shape[0]
        logits = disc([torch.cat([r, f.to(r.dtype)], 0) for r, f in zip(real, fake)]).float()
        loss = L.discriminator_loss(logits[:n], logits[n:])
        return loss, {"d_loss": loss.detach(), "d_real_p": torch.sigmoid(logits[:n]).mean().detach(),
                      "d_fake_p": torch.sigmoid(logits[n:]).mean().detach()}

    def generator_loss(self, batch, out, epoch, disc):
        lc = self.cfg["loss"]
        img, priors = out
        priors = tuple(p.float() for p in priors)
        l_pix = L.pixel_loss(img.float(), batch["sharp"])
        total = l_pix
        logs = {"g_pixel": l_pix.detach()}
        if lc["prior"]:
            attend = None
            if disc is not None and self.cfg["model"]["discriminator"]["channel_attention"]:
                attend = disc.attend  # CA modules, frozen in the generator step (seed 002 Fig. 4b)
            l_prior = L.prior_loss(priors, self.sharp_features(batch), attend, lc["prior_reduction"])
            total = total + float(lc["lambda_prior"]) * l_prior
            logs["g_prior"] = l_prior.detach()
        if lc["perceptual"]:
            assert self.vgg is not None
            l_per = L.feature_loss(tuple(f.float() for f in self.vgg(img)), self.sharp_features(batch))
            total = total + float(lc["lambda_per"]) * l_per
            logs["g_perceptual"] = l_per.detach()
        if disc is not None:
            l_adv = L.generator_adv_loss(disc(list(priors)).float())
            total = total + float(lc["lambda_adv"]) * l_adv
            logs["g_adv"] = l_adv.detach()
        logs["g_total"] = total.detach()
        return total, logs
