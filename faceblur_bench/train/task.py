"""What a GAN trainer needs from a method: networks and the two loss functions.

The shared loop (:mod:`faceblur_bench.train.loop`) owns optimisation, AMP, DDP, checkpoints
and logging; a :class:`GANTask` owns the networks and the paper's losses. Batches are dicts
with ``sharp`` and ``blurred`` ``(N, 3, H, W)`` in [-1, 1] and, when
:attr:`GANTask.needs_labels`, ``labels`` ``(N, H, W)`` int64. The generator output ``out`` is
the DFPGnet pair ``(image in (-1, 1), priors)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import torch
from torch import nn

from ..methods.dfpg.model import DFPGGenerator, GeneratorConfig
from ..methods.dfpg.vggface import VGGFaceFeatures, load_vggface

VGGLoader = Callable[..., VGGFaceFeatures]


class GANTask(ABC):
    method: str = ""

    def __init__(self, cfg: dict[str, Any], device: torch.device, vgg_loader: VGGLoader = load_vggface,
                 weights_overrides: dict[str, str] | None = None):
        self.cfg = cfg
        self.device = device
        self.generator: nn.Module = DFPGGenerator(GeneratorConfig.from_dict(cfg["model"]["generator"])).to(device)
        self.discriminator: nn.Module | None = self.build_discriminator()
        if self.discriminator is not None:
            self.discriminator.to(device)
        self.vgg: VGGFaceFeatures | None = None
        if self.needs_vgg:
            self.vgg = vgg_loader(tuple(cfg["vgg_layers"]), overrides=weights_overrides, device=device)

    # -- what the method declares ----------------------------------------------------------------
    @abstractmethod
    def build_discriminator(self) -> nn.Module | None:
        """The discriminator, or None when the configuration trains without adversarial loss."""

    @property
    @abstractmethod
    def needs_vgg(self) -> bool:
        """True when a loss uses VGGFace features (``VGGFace16.pth`` must then be present)."""

    @staticmethod
    def labels_needed(cfg: dict[str, Any]) -> bool:
        """True when ``cfg`` trains with label maps (decided before the networks are built)."""
        return False

    @property
    def needs_labels(self) -> bool:
        return self.labels_needed(self.cfg)

    @abstractmethod
    def discriminator_loss(self, batch: dict[str, Any], out: tuple[torch.Tensor, tuple[torch.Tensor, ...]],
                           epoch: int, disc: nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of the discriminator step; ``out`` is detached. ``disc`` may be a DDP wrapper."""

    @abstractmethod
    def generator_loss(self, batch: dict[str, Any], out: tuple[torch.Tensor, tuple[torch.Tensor, ...]],
                       epoch: int, disc: nn.Module | None) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of the generator step; ``disc`` is the bare, frozen discriminator."""

    # -- shared helpers ---------------------------------------------------------------------------
    def sharp_features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        """VGGFace features of the sharp images (computed once per batch, no grad)."""
        if "_vgg_sharp" not in batch:
            assert self.vgg is not None
            with torch.no_grad():
                batch["_vgg_sharp"] = tuple(f.float() for f in self.vgg(batch["sharp"]))
        return batch["_vgg_sharp"]


def task_class(method: str) -> type[GANTask]:
    if method == "sappgan":
        from ..methods.sappgan.training import SAPPGANTask

        return SAPPGANTask
    if method == "dfpg":
        from ..methods.dfpg.training import DFPGTask

        return DFPGTask
    raise ValueError(f"no trainer for method {method!r}")


def build_task(cfg: dict[str, Any], device: torch.device, **kw: Any) -> GANTask:
    """The :class:`GANTask` of ``cfg["method"]``."""
    return task_class(cfg["method"])(cfg, device, **kw)
