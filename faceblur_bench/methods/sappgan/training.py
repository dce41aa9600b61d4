"""``faceblur-bench train sappgan`` (seed 000 §III-B/C): SAPP or U-Net discriminator, PW loss, C2F α."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...errors import UsageError
from ...registry import trainers
from ..dfpg.losses import prior_loss
from ..dfpg.model import DFPGGenerator, GeneratorConfig
from ..dfpg.training import SMOKE as DFPG_SMOKE
from ..gan import MSPL_FAMILY_DEFAULTS, MSPLGANTask
from ..training import merge_config
from . import losses as L
from . import presets as P
from .discriminator import SAPPDiscriminator, SAPPDiscriminatorConfig


@trainers.register("sappgan")
class SAPPGANTask(MSPLGANTask):
    method = "sappgan"
    description = ("SAPPGAN (Han et al., IEEE Access 2023): DFPGnet generator + SAPP discriminator, PW loss, coarse-to-fine α; "
                   "λ = 1, 1, 0.06; Adam 1e-4 x0.99/epoch; batch 16; 300 epochs")
    defaults = merge_config(MSPL_FAMILY_DEFAULTS, P.DEFAULTS, strict=False)
    presets = P.PRESETS
    preset_descriptions = P.DESCRIPTIONS
    default_preset = P.FULL
    smoke_config = {**DFPG_SMOKE, "model": {"generator": DFPG_SMOKE["model"]["generator"],
                                            "discriminator": {"ch": 4, "attention": False}}}

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        super().check_config(cfg)
        lc = cfg["loss"]
        if lc["feat_on"] not in ("output", "prior"):
            raise UsageError(f"loss.feat_on = {lc['feat_on']!r}", "use 'output' (eq. 14) or 'prior'")
        if lc["feat_on"] == "prior" and not cfg["model"]["generator"]["prior_stream"]:
            raise UsageError("loss.feat_on = 'prior' needs the generator's prior stream",
                             "set model.generator.prior_stream = true or feat_on = 'output'")

    def build_generator(self) -> nn.Module:
        return DFPGGenerator(GeneratorConfig.from_dict(self.cfg["model"]["generator"]))

    def build_discriminator(self) -> nn.Module | None:
        if not self.cfg["loss"]["adversarial"]:
            return None
        return SAPPDiscriminator(SAPPDiscriminatorConfig.from_dict(self.cfg["model"]["discriminator"]))

    @property
    def needs_vgg(self) -> bool:
        return float(self.cfg["loss"]["lambda_feat"]) > 0

    @classmethod
    def labels_needed(cls, cfg: dict[str, Any]) -> bool:
        return bool(cfg["loss"]["adversarial"] and cfg["model"]["discriminator"]["conditional"])

    def _labels(self, batch: dict[str, Any]) -> torch.Tensor | None:
        return batch["labels"] if self.needs_labels else None

    def discriminator_loss(self, batch, out, epoch, disc):
        real, fake = batch["sharp"], out[0]
        n = real.shape[0]
        y = self._labels(batch)
        logits, q = disc(torch.cat([real, fake], 0), None if y is None else torch.cat([y, y], 0))
        logits, q = logits.float(), q.float()
        pw = bool(self.cfg["loss"]["prediction_weighted"])
        l_enc = L.encoder_loss(logits[:n], logits[n:])
        l_dec = L.decoder_loss(q[:n], q[n:], pw)
        return l_enc + l_dec, {"d_enc": l_enc.detach(), "d_dec": l_dec.detach(),
                               "d_real_p": torch.sigmoid(logits[:n]).mean().detach(),
                               "d_fake_p": torch.sigmoid(logits[n:]).mean().detach()}

    def generator_loss(self, batch, out, epoch, disc):
        lc = self.cfg["loss"]
        img, priors = out
        img = img.float()
        total = img.new_zeros(())
        logs: dict[str, float] = {}
        l_pix = L.pixel_loss(img, batch["sharp"])
        total = total + float(lc["lambda_pixel"]) * l_pix
        logs["g_pixel"] = l_pix.detach()
        if self.needs_vgg:
            target = self.sharp_features(batch)
            if lc["feat_on"] == "output":
                assert self.vgg is not None
                feats = tuple(f.float() for f in self.vgg(out[0]))
                l_feat = L.feat_loss(feats, target, lc["feat_distance"])
            else:
                l_feat = prior_loss(tuple(p.float() for p in priors), target)
            total = total + float(lc["lambda_feat"]) * l_feat
            logs["g_feat"] = l_feat.detach()
        if disc is not None:
            alpha = L.c2f_alpha(epoch, int(self.cfg["epochs"]), bool(lc["coarse_to_fine"]))
            logits, q = disc(out[0], self._labels(batch))
            l_adv = L.adv_loss(logits.float(), q.float(), alpha, bool(lc["prediction_weighted"]))
            total = total + float(lc["lambda_adv"]) * l_adv
            logs["g_adv"] = l_adv.detach()
            logs["alpha"] = alpha
        logs["g_total"] = total.detach()
        return total, logs
