"""The trainer contract: what a trainable method gives the generic loop (:mod:`faceblur_bench.train`).

A trainable method is one package under ``faceblur_bench/methods/<name>/``; its
``training.py`` registers a :class:`TrainTask` subclass with ``@trainers.register("<name>")``
(third-party packages use the entry-point group ``faceblur_bench.trainers``). The task owns
the networks, optimisers, data and the loss of one step; the loop owns everything that is the
same for every method: devices, bf16 autocast, DistributedDataParallel under ``torchrun``, the
DataLoader, checkpoints with exact resume, CSV / TensorBoard logs and validation with the
harness's PSNR / SSIM.

Configuration: a nested dict of plain values (it is stored in checkpoints read with
``weights_only=True``), layered as :data:`GENERIC` < :attr:`TrainTask.defaults` < preset <
config file < command line (``faceblur_bench.train.config.build_config``).
"""

from __future__ import annotations

import copy
import difflib
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..errors import UsageError
from .trainer_catalog import lookup_preset

#: keys every trainer has (the loop reads them); a task's ``defaults`` may override the values
GENERIC: dict[str, Any] = {
    "epochs": 100,
    "batch_size": 16,
    "seed": 0,
    "amp": "bf16",       # bf16 autocast on CUDA; ignored on CPU; "off" disables it
    "log_every": 50,     # steps between lines in steps.csv
    "keep_every": 50,    # also keep checkpoints/epoch_NNNN.pth every N epochs (0: never)
    "data": {"num_workers": 4},  # capped at the number of CPU cores
}


def merge_config(base: dict[str, Any], override: dict[str, Any], *, strict: bool = True,
                 path: str = "") -> dict[str, Any]:
    """``override`` merged into a deep copy of ``base``, key by key.

    ``strict``: keys unknown to ``base`` are refused with "did you mean" (a typo in a preset,
    config file or ``--set`` fails loudly); otherwise they are added (a trainer's own sections).
    """
    out = copy.deepcopy(base)
    for k, v in override.items():
        where = f"{path}.{k}" if path else k
        if k not in out:
            if strict:
                close = difflib.get_close_matches(k, list(out), n=2)
                raise UsageError(f"unknown config key {where!r}" + (f"; did you mean {close}?" if close else ""),
                                 f"known keys at this level: {', '.join(sorted(out))}")
            out[k] = copy.deepcopy(v)
        elif isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = merge_config(out[k], v, strict=strict, path=where)
        else:
            out[k] = copy.deepcopy(v)
    return out


@dataclass(frozen=True)
class CliOption:
    """An extra ``faceblur-bench train NAME --<option>`` that sets one configuration key.

    ``key`` is dotted (``"schedule.stage"``); ``type`` is ``int``, ``float``, ``str`` or ``bool``.
    """

    key: str
    type: type
    help: str


@dataclass
class ValidationData:
    """Fixed validation pairs: ``blurred`` uint8 ``(N, 3, h, w)``, ``sharp`` uint8 ``(N, 3, H, W)``
    (``H = h * scale``), optional per-sample ``meta`` passed to :meth:`TrainTask.restore`."""

    blurred: torch.Tensor
    sharp: torch.Tensor
    source: str
    meta: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return int(self.sharp.shape[0])


@dataclass
class StepContext:
    """What the loop tells a task about the current step.

    ``nets`` maps each module name of :attr:`TrainTask.modules` to the object to call for a
    forward pass with gradients (a DistributedDataParallel wrapper when ``world > 1``, the bare
    module otherwise). ``autocast()`` is the mixed-precision context of this run.
    """

    epoch: int
    iteration: int
    step: int
    epochs: int
    seed: int
    rank: int
    world: int
    device: torch.device
    nets: dict[str, nn.Module]
    autocast: Callable[[], AbstractContextManager] = field(repr=False)

    def seed_for(self, *extra: int) -> tuple[int, ...]:
        """A seed tuple unique to (run seed, epoch, iteration, rank, *extra): deterministic
        per-step randomness that resume replays exactly."""
        return (self.seed, self.epoch, self.iteration, self.rank, *extra)


class TrainTask(ABC):
    """Networks, optimisers, data and the loss of one trainable method (see the module docstring).

    Subclasses build ``self.modules`` (every trained network; their state dicts go into the
    checkpoint under these names), ``self.optimizers`` and ``self.schedulers`` in ``__init__``.
    Frozen helper networks (e.g. VGG features) are plain attributes, not modules.
    """

    name: ClassVar[str] = ""
    #: the registered Method that runs this trainer's exported checkpoints
    method: ClassVar[str] = ""
    #: one line for ``faceblur-bench train --help``
    description: ClassVar[str] = ""
    #: what ``--data-root`` must hold
    data_help: ClassVar[str] = ""
    #: this trainer's configuration, merged over :data:`GENERIC`
    defaults: ClassVar[dict[str, Any]] = {}
    #: named configuration overrides (ablations, recipes), with one-line descriptions
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    preset_descriptions: ClassVar[dict[str, str]] = {}
    default_preset: ClassVar[str | None] = None
    #: modules kept by ``faceblur-bench train export`` and in ``best.pth``
    inference_modules: ClassVar[tuple[str, ...]] = ("generator",)
    #: extra command-line options of ``faceblur-bench train NAME``
    cli_options: ClassVar[dict[str, CliOption]] = {}
    #: overrides giving tiny networks and data (``train NAME --tiny``; the contract tests)
    smoke_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: dict[str, Any], device: torch.device, *,
                 weights_overrides: dict[str, str] | None = None):
        self.cfg = cfg
        self.device = device
        self.weights_overrides = dict(weights_overrides or {})
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}

    # -- configuration --------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        """Raise :class:`~faceblur_bench.errors.UsageError` for values this trainer cannot use."""

    @classmethod
    def prepare_config(cls, cfg: dict[str, Any], data_root: Path, resuming: bool) -> dict[str, Any]:
        """Adapt ``cfg`` to the data before the networks are built (e.g. the number of label
        classes found); a resumed run must come back unchanged. Default: ``cfg`` as is."""
        return cfg

    @classmethod
    @abstractmethod
    def write_smoke_data(cls, root: Path) -> Path:
        """Write a tiny training tree under ``root`` for ``smoke_config`` (tests, ``--tiny``) and
        return the data root to pass. Its images are synthetic: never report quality numbers from it."""

    # -- training ---------------------------------------------------------------------------------
    @abstractmethod
    def build_data(self, data_root: Path, *, rank: int, world: int
                   ) -> tuple[torch.utils.data.Dataset, ValidationData | None]:
        """The training dataset (items are dicts of tensors) and, on rank 0, the validation pairs.

        Datasets with a ``set_epoch(epoch)`` method are told the epoch before each one."""

    @abstractmethod
    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float | torch.Tensor]:
        """Forward, backward and optimiser steps of one batch; returns scalars to log."""

    @abstractmethod
    def restore(self, blurred01: torch.Tensor, meta: list[dict[str, Any]] | None = None) -> torch.Tensor:
        """Inference for validation: ``(N, 3, h, w)`` in [0, 1] -> ``(N, 3, H, W)`` in [0, 1]."""

    def end_epoch(self, epoch: int) -> None:
        """Called after each epoch (default: step every scheduler)."""
        for sched in self.schedulers.values():
            sched.step()

    def extra_state(self) -> dict[str, Any]:
        """Plain values the task needs for exact resume beyond modules and optimisers."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`extra_state`."""

    def train_mode(self, on: bool) -> None:
        """Switch every module between training and evaluation mode."""
        for m in self.modules.values():
            m.train(on)


def detach_outputs(out: Any) -> Any:
    """``out`` (a tensor or nested tuples / lists / dicts of tensors) with every tensor detached."""
    if torch.is_tensor(out):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(detach_outputs(o) for o in out)
    if isinstance(out, dict):
        return {k: detach_outputs(v) for k, v in out.items()}
    return out


__all__ = ["GENERIC", "CliOption", "StepContext", "TrainTask", "ValidationData", "detach_outputs", "lookup_preset",
           "merge_config"]
