"""The generic training loop behind ``faceblur-bench train NAME`` (names no method).

A registered :class:`~faceblur_bench.methods.training.TrainTask` supplies the networks,
optimisers, data and the loss of one step; this loop supplies the rest. Per epoch: the task's
``train_step`` runs over the shuffled training set, ``end_epoch`` steps its schedulers, rank 0
validates with the harness's PSNR / SSIM (:mod:`faceblur_bench.metrics.pixel`, uint8 RGB),
appends a CSV row to ``log.csv`` and rewrites ``checkpoints/last.pth``.

Output folder::

    config.json          resolved configuration
    tensorboard/         the log.csv scalars, when the tensorboard package is installed
    log.csv              one row per epoch: losses, lr, images/s, val_psnr, val_ssim
    steps.csv            every ``log_every`` steps: losses of that step
    samples/epoch_NNNN.png  blurred | restored | sharp of the first 4 validation images
    checkpoints/last.pth (every epoch), epoch_NNNN.pth (every ``keep_every``), best.pth

Mixed precision: bf16 autocast on CUDA (``amp = "bf16"``); tasks compute losses in float32.
Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1), each process trains on its shard
(``DistributedSampler``) with every task module wrapped in ``DistributedDataParallel``
(NCCL on CUDA, gloo on CPU); rank 0 validates, logs and writes checkpoints. ``batch_size`` is
per process.

Reproducibility: sample order comes from ``(seed, epoch)``, per-step randomness from
``StepContext.seed_for`` (seed, epoch, iteration, rank), and checkpoints carry modules,
optimisers, schedulers, epoch and RNG state, so ``--resume`` continues with exactly the losses an
uninterrupted run would have had (bit-exact on CPU; up to non-deterministic GPU kernels on CUDA).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

from ..devices import resolve_device
from ..errors import DataNotFoundError, UsageError
from ..methods import checkpoint as ckpt_io
from ..methods.training import StepContext, TrainTask
from ..metrics.pixel import psnr_u8, ssim_gaussian
from ..results import atomic_write_text
from .config import build_config, trainer_class


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None) -> tuple[DistInfo, torch.device]:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", info.local_rank if info.enabled else (dev.index or 0))
        torch.cuda.set_device(dev)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return info, dev


@dataclass
class TrainResult:
    out: Path
    epochs_done: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None


class Trainer:
    """Train the task of ``cfg["trainer"]`` on the data under ``data_root``, writing to ``out``.

    ``task_kwargs`` go to the task's constructor (e.g. a ``vgg_loader`` in tests and benchmarks);
    ``progress`` shows a rich progress bar on rank 0.
    """

    def __init__(self, cfg: dict[str, Any], data_root: str | Path, out: str | Path, *,
                 resume: bool = False, device: str | None = None,
                 weights_overrides: dict[str, str] | None = None, progress: bool = True,
                 log: Callable[[str], None] | None = None, epochs_override: int | None = None,
                 task_kwargs: dict[str, Any] | None = None):
        self.dist, self.device = init_distributed(device)
        self.out = Path(out)
        self.root = Path(data_root).expanduser().resolve()
        self.progress = progress and self.dist.main
        self.log = log or (lambda msg: print(msg, flush=True))
        self.ck_path = self.out / "checkpoints" / "last.pth"
        state = None
        if resume:
            if not self.ck_path.is_file():
                raise UsageError(f"--resume: no checkpoint at {self.ck_path}",
                                 "start without --resume, or pass the --out folder of the run to continue")
            state = ckpt_io.load(self.ck_path)
            if state["trainer"] != cfg["trainer"]:
                raise UsageError(f"--resume: {self.ck_path} is a {state['trainer']} run, not {cfg['trainer']}",
                                 "pass the matching trainer or another --out folder")
            cfg = state["config"]  # a resumed run keeps its own configuration ...
            if epochs_override is not None:  # ... except that it may be extended
                cfg["epochs"] = int(epochs_override)
        elif self.ck_path.is_file():
            raise UsageError(f"{self.out} already holds a training run ({self.ck_path})",
                             "add --resume to continue it, or choose another --out folder")
        if not self.root.is_dir():
            raise DataNotFoundError(f"data root {self.root} not found", "pass --data-root DIR (see `train NAME --help`)")
        tcls = trainer_class(cfg["trainer"])
        cfg = tcls.prepare_config(cfg, self.root, resuming=state is not None)
        self.cfg = cfg
        seed = int(cfg["seed"])
        torch.manual_seed(seed + self.dist.rank)
        np.random.seed((seed + self.dist.rank) % 2**32)
        self.task: TrainTask = tcls(cfg, self.device, weights_overrides=weights_overrides, **(task_kwargs or {}))
        self.dataset, self.val = self.task.build_data(self.root, rank=self.dist.rank, world=self.dist.world)
        if not self.dist.main:
            self.val = None
        bs = int(cfg["batch_size"])
        per_rank = len(self.dataset) // self.dist.world
        if per_rank < bs:
            raise UsageError(f"{len(self.dataset)} training images give {per_rank} per process, fewer than the "
                             f"batch size {bs}", "lower --batch-size or add images")
        self.steps_per_epoch = per_rank // bs
        self.start_epoch, self.step, self.best_psnr = 0, 0, -math.inf
        if state is not None:
            self._load_state(state)
        self.nets = dict(self.task.modules)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.nets = {k: DDP(m, device_ids=ids) if any(p.requires_grad for p in m.parameters()) else m
                         for k, m in self.task.modules.items()}
        self.use_amp = cfg["amp"] == "bf16" and self.device.type == "cuda"
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _load_state(self, state: dict[str, Any]) -> None:
        t = self.task
        for kind, have in (("modules", t.modules), ("optimizers", t.optimizers), ("schedulers", t.schedulers)):
            saved = state.get(kind, {})
            if set(saved) != set(have):
                raise UsageError(f"--resume: {self.ck_path} holds {kind} {sorted(saved)}, the task has {sorted(have)}",
                                 "resume with the configuration the run was started with")
            for k, obj in have.items():
                obj.load_state_dict(saved[k])
        t.load_extra_state(state.get("extra") or {})
        self.start_epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_psnr = float(state.get("best_psnr", -math.inf))
        ckpt_io.set_rng_state(state["rng"])

    # ------------------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else nullcontext()

    def loader(self, epoch: int) -> torch.utils.data.DataLoader:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        seed = int(self.cfg["seed"])
        if self.dist.enabled:
            sampler = torch.utils.data.DistributedSampler(
                self.dataset, num_replicas=self.dist.world, rank=self.dist.rank, shuffle=True,
                seed=seed, drop_last=True)
            sampler.set_epoch(epoch)
        else:
            gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            sampler = torch.utils.data.RandomSampler(self.dataset, generator=gen)
        # more workers than cores only adds context switches (and memory)
        nw = min(int(self.cfg["data"]["num_workers"]), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else (os.cpu_count() or 1))
        return torch.utils.data.DataLoader(
            self.dataset, batch_size=int(self.cfg["batch_size"]), sampler=sampler, num_workers=nw,
            drop_last=True, pin_memory=self.device.type == "cuda", persistent_workers=False)

    def context(self, epoch: int, it: int) -> StepContext:
        return StepContext(epoch=epoch, iteration=it, step=self.step, epochs=int(self.cfg["epochs"]),
                           seed=int(self.cfg["seed"]), rank=self.dist.rank, world=self.dist.world,
                           device=self.device, nets=self.nets, autocast=self.autocast)

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        if self.val is None:
            return {}
        self.task.train_mode(False)
        outs = []
        bs = max(1, int(self.cfg["batch_size"]))
        meta = self.val.meta
        for i in range(0, len(self.val), bs):
            x = self.val.blurred[i:i + bs].to(self.device).float() / 255.0
            with self.autocast():
                y = self.task.restore(x, meta[i:i + bs] if meta else None)
            outs.append(torch.clamp(torch.round(y.float() * 255.0), 0, 255).to(torch.uint8))
        self.task.train_mode(True)
        restored = torch.cat(outs)
        sharp = self.val.sharp.to(self.device)
        if restored.shape != sharp.shape:
            raise UsageError(f"{self.cfg['trainer']}: validation output {tuple(restored.shape)} does not match the "
                             f"sharp images {tuple(sharp.shape)}", "the task's restore() must return the sharp size")
        psnr = psnr_u8(restored, sharp)
        ssim = ssim_gaussian(restored, sharp)
        self._save_samples(epoch, restored[:4].cpu())
        finite = torch.isfinite(psnr)
        return {"val_psnr": float(psnr[finite].mean()) if finite.any() else float("inf"),
                "val_ssim": float(ssim.mean())}

    def _save_samples(self, epoch: int, restored: torch.Tensor) -> None:
        from ..imageio import write_png

        n = restored.shape[0]
        size = tuple(self.val.sharp.shape[-2:])
        blurred = self.val.blurred[:n]
        if tuple(blurred.shape[-2:]) != size:  # super-resolution: show the input at the output size
            blurred = torch.nn.functional.interpolate(blurred.float(), size=size, mode="nearest").to(torch.uint8)
        rows = [torch.cat([blurred[i], restored[i], self.val.sharp[i]], dim=2) for i in range(n)]
        grid = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()
        write_png(self.out / "samples" / f"epoch_{epoch:04d}.png", grid)

    def _checkpoint(self, epoch_done: int) -> dict[str, Any]:
        t = self.task
        return {
            "format": ckpt_io.FORMAT, "trainer": self.cfg["trainer"], "method": self.cfg["method"],
            "preset": self.cfg.get("preset"), "config": self.cfg, "epoch": epoch_done, "step": self.step,
            "modules": {k: m.state_dict() for k, m in t.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in t.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in t.schedulers.items()},
            "rng": ckpt_io.rng_state(), "best_psnr": self.best_psnr, "extra": t.extra_state(),
        }

    def _append_csv(self, name: str, row: dict[str, Any]) -> None:
        """Append ``row`` to ``out/name``; a key the header lacks (losses differ between presets
        and stages) widens the header, rewriting the file once, so columns never shift."""
        path = self.out / name
        header: list[str] = []
        if path.exists():
            with open(path, newline="") as f:
                header = next(csv.reader(f), None) or []
        extra = [k for k in row if k not in header]
        if header and extra:
            with open(path, newline="") as f:
                old = list(csv.DictReader(f))
            header = header + extra
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=header, restval="")
            w.writeheader()
            w.writerows(old)
            atomic_write_text(path, buf.getvalue())
        elif not header:
            header = list(row)
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header, restval="", extrasaction="raise")
            if f.tell() == 0:
                w.writeheader()
            w.writerow(row)

    def _reduce_mean(self, sums: dict[str, float], count: int) -> dict[str, float]:
        keys = sorted(sums)
        dev = self.device if self.device.type == "cuda" else torch.device("cpu")
        vec = torch.stack([torch.as_tensor(sums[k], dtype=torch.float64).to(dev) for k in keys]
                          + [torch.tensor(float(count), dtype=torch.float64, device=dev)])
        if self.dist.enabled:
            dist.all_reduce(vec)
        total = float(vec[-1])
        return {k: float(vec[i]) / max(total, 1.0) for i, k in enumerate(keys)} | {"_count": total}

    def _lrs(self) -> dict[str, float]:
        return {f"lr_{k}": float(o.param_groups[0]["lr"]) for k, o in self.task.optimizers.items()}

    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg, epochs = self.cfg, int(self.cfg["epochs"])
        result = TrainResult(self.out, self.start_epoch, self.step)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg, indent=2))
            desc = getattr(self.task, "kernels_desc", "")
            self.log(f"[train] {cfg['trainer']} {cfg.get('preset') or ''} on {self.device} x{self.dist.world}: "
                     f"{len(self.dataset)} images, {self.steps_per_epoch} steps/epoch"
                     + (f", kernels: {desc}" if desc else "")
                     + f"; validation: {self.val.source if self.val else 'none'}")
        if self.start_epoch >= epochs:
            if self.dist.main:
                self.log(f"[train] nothing to do: {self.start_epoch} of {epochs} epochs already done")
            return result
        log_every = max(1, int(cfg["log_every"]))
        tb = None
        if self.dist.main:
            try:  # optional: TensorBoard scalars beside the CSV logs when tensorboard is installed
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(self.out / "tensorboard"))
            except ImportError:
                tb = None
        progress_cm = nullcontext()
        task_id = None
        if self.progress:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            progress_cm = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                   TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
        self.task.train_mode(True)
        with progress_cm as prog:
            for epoch in range(self.start_epoch, epochs):
                if self.progress:
                    task_id = prog.add_task("train", total=self.steps_per_epoch, epoch=f"{epoch + 1}/{epochs}", info="")
                sums: dict[str, float] = {}
                count = 0
                t0 = time.perf_counter()
                lrs = self._lrs()
                for it, batch in enumerate(self.loader(epoch)):
                    if it >= self.steps_per_epoch:
                        break
                    logs = self.task.train_step(batch, self.context(epoch, it))
                    self.step += 1
                    n = int(next(v for v in batch.values() if torch.is_tensor(v)).shape[0])
                    count += n
                    for k, v in logs.items():
                        sums[k] = sums.get(k, 0.0) + (v.detach().double() if torch.is_tensor(v) else float(v)) * n
                    if it % log_every == 0:
                        vals = {k: float(v) for k, v in logs.items()}
                        if self.dist.main:
                            self._append_csv("steps.csv", {"epoch": epoch, "step": self.step, "iter": it} | vals)
                        if self.progress and task_id is not None:
                            info = " ".join(f"{k}={v:.4f}" for k, v in list(vals.items())[:4])
                            rate = count * self.dist.world / max(time.perf_counter() - t0, 1e-9)
                            prog.update(task_id, info=f"{info} {rate:.1f} img/s")
                    if self.progress and task_id is not None:
                        prog.update(task_id, advance=1)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                elapsed = time.perf_counter() - t0
                means = self._reduce_mean(sums, count)
                images = int(means.pop("_count"))
                self.task.end_epoch(epoch)
                row: dict[str, Any] = {"epoch": epoch, "step": self.step, "images": images,
                                       "images_per_s": round(images / max(elapsed, 1e-9), 3)} | lrs
                row |= {k: round(v, 6) for k, v in means.items() if k != "kernel"}
                if self.dist.main:
                    row |= self.validate(epoch)
                    self._append_csv("log.csv", row)
                    if tb is not None:
                        for k, v in row.items():
                            if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                                tb.add_scalar(k, v, epoch + 1)
                        tb.flush()
                    ck = self._checkpoint(epoch + 1)
                    ckpt_io.save_atomic(ck, self.ck_path)
                    keep = int(cfg["keep_every"])
                    if keep and (epoch + 1) % keep == 0:
                        ckpt_io.save_atomic(ck, self.out / "checkpoints" / f"epoch_{epoch + 1:04d}.pth")
                    if row.get("val_psnr", -math.inf) > self.best_psnr:
                        self.best_psnr = float(row["val_psnr"])
                        ck["best_psnr"] = self.best_psnr
                        ckpt_io.export(ck, self.out / "checkpoints" / "best.pth", self.task.inference_modules)
                    msg = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
                    self.log(f"[train] {msg}")
                if self.dist.enabled:
                    dist.barrier()
                result.history.append(row)
                result.epochs_done = epoch + 1
                result.steps = self.step
        if tb is not None:
            tb.close()
        result.checkpoint = self.ck_path
        return result

    def close(self) -> None:
        if self.dist.enabled and dist.is_initialized():
            # a DistributedDataParallel wrapper keeps the process group (and its Gloo/NCCL worker
            # threads) alive after destroy_process_group; freed only at interpreter exit, it can
            # abort the process ("terminate called without an active exception", seen once on a
            # loaded 2-core machine after a complete run) — so release the wrappers first
            self.nets = {k: getattr(m, "module", m) for k, m in self.nets.items()}
            gc.collect()
            dist.destroy_process_group()


def train(trainer: str | type[TrainTask], data_root: str | Path, out: str | Path, *,
          config: str | Path | dict | None = None, preset: str | None = None, epochs: int | None = None,
          batch_size: int | None = None, tiny: bool = False, overrides: dict[str, Any] | None = None,
          resume: bool = False, device: str | None = None, weights_overrides: dict[str, str] | None = None,
          progress: bool = True, task_kwargs: dict[str, Any] | None = None) -> TrainResult:
    """Library entry point of ``faceblur-bench train NAME`` (see :class:`Trainer`)."""
    cfg = build_config(trainer, preset, config, epochs, batch_size, tiny=tiny, overrides=overrides)
    runner = Trainer(cfg, data_root, out, resume=resume, device=device, weights_overrides=weights_overrides,
                     progress=progress, epochs_override=epochs, task_kwargs=task_kwargs)
    try:
        return runner.fit()
    finally:
        runner.close()


__all__ = ["TrainResult", "Trainer", "init_distributed", "train"]
