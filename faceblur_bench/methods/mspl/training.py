"""``faceblur-bench train mspl-gan``: MSPL-GAN's progressive semantic training (METHODS.md §D).

The step is the MSPL family's adversarial step (:class:`~faceblur_bench.methods.gan.MSPLGANTask`:
one discriminator step on detached outputs, then one generator step with the discriminator
frozen); this module supplies the networks (:mod:`.networks`), the losses (:mod:`.losses`,
outputs *not* detached before the adversarial and VGG terms) and the recipe (:mod:`.presets`).

Label maps are always needed (they mask the stage outputs): ``data.labels = "auto"`` takes
MSPL's ``train_label_cls4/`` when present, else merges CelebAMask-HQ's 19-class
``train_label/`` into the 4 classes (``cls19to4``); ``cls19`` itself is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ...data import training as mspl_data
from ...errors import UsageError
from ...registry import trainers
from ..gan import MSPL_FAMILY_DEFAULTS, MSPL_SMOKE_DATA, MSPLGANTask
from ..training import merge_config
from . import losses as L
from . import presets as P
from .networks import (
    DiscriminatorConfig,
    GeneratorConfig,
    MSPLGenerator,
    MultiStageDiscriminator,
)

SMOKE: dict[str, Any] = {"model": P.SMOKE_MODEL, "data": MSPL_SMOKE_DATA, "log_every": 1}


@trainers.register("mspl-gan")
class MSPLGANTrainer(MSPLGANTask):
    method = "mspl-gan"
    description = (
        "MSPL-GAN (Lee et al. 2020): 4 stacked U-Nets, stage-masked L1 + adversarial 0.05 + "
        "VGGFace L1 0.05; Adam 1e-4 (G, D) x0.99/epoch; batch 16; 200 epochs"
    )
    data_help = (
        "the MSPL training layout: train_img/, train_label_cls4/ (4-class) or train_label/ "
        "(19-class, merged to 4), optional trainkernels/blur_k{13..27}.mat and "
        "validationset/{gt,blur}/"
    )
    defaults = merge_config(MSPL_FAMILY_DEFAULTS, P.DEFAULTS, strict=False)
    presets = P.PRESETS
    preset_descriptions = P.DESCRIPTIONS
    default_preset = P.FULL
    smoke_config = SMOKE

    # -- configuration ----------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        super().check_config(cfg)
        if cfg["data"]["labels"] == "cls19":
            raise UsageError(
                "data.labels = 'cls19': MSPL-GAN's stages need the 4-class label maps",
                "use 'cls4' (train_label_cls4/), 'cls19to4' (merge train_label/) or 'auto'",
            )
        try:
            GeneratorConfig.from_dict(cfg["model"]["generator"])
            DiscriminatorConfig.from_dict(cfg["model"]["discriminator"])
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"model configuration: {exc}", "see faceblur_bench/methods/mspl/networks.py"
            ) from None
        for k in ("lambda_l1", "lambda_adv", "lambda_vgg"):
            if float(cfg["loss"][k]) < 0:
                raise UsageError(f"loss.{k} = {cfg['loss'][k]}", "use a weight >= 0")

    @classmethod
    def prepare_config(cls, cfg: dict[str, Any], data_root: Path, resuming: bool) -> dict[str, Any]:
        if cfg["data"]["labels"] == "auto":
            if (data_root / "train_label_cls4").is_dir():
                cfg["data"]["labels"] = "cls4"
            elif (data_root / "train_label").is_dir():
                cfg["data"]["labels"] = "cls19to4"
        mspl_data.resolve_labels(data_root, cfg["data"]["labels"])  # names the missing folder
        return cfg

    @classmethod
    def labels_needed(cls, cfg: dict[str, Any]) -> bool:
        return True

    @classmethod
    def write_smoke_data(cls, root: Path) -> Path:
        return mspl_data.make_layout(root, n_images=4, size=48, labels="cls4")

    # -- networks ---------------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        return MSPLGenerator(GeneratorConfig.from_dict(self.cfg["model"]["generator"]))

    def build_discriminator(self) -> nn.Module | None:
        if not self.cfg["loss"]["adversarial"]:
            return None
        return MultiStageDiscriminator(
            DiscriminatorConfig.from_dict(self.cfg["model"]["discriminator"])
        )

    @property
    def needs_vgg(self) -> bool:
        lc = self.cfg["loss"]
        return bool(lc["vgg"]) and float(lc["lambda_vgg"]) > 0

    @staticmethod
    def output_image(out: Any) -> Any:
        return out[-1]  # out_3, the restored face

    # -- losses -----------------------------------------------------------------------------------
    def discriminator_loss(self, batch, out, epoch, disc):
        return L.discriminator_objective(out, batch["sharp"], L.one_hot(batch["labels"]), disc)

    def generator_loss(self, batch, out, epoch, disc):
        lc = self.cfg["loss"]
        return L.generator_objective(
            out,
            batch["sharp"],
            L.one_hot(batch["labels"]),
            disc,
            self.vgg,
            lambda_l1=float(lc["lambda_l1"]),
            lambda_adv=float(lc["lambda_adv"]),
            lambda_vgg=float(lc["lambda_vgg"]),
        )
