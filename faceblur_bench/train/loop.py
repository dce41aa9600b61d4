"""The shared GAN training loop used by ``faceblur-bench train sappgan|dfpg``.

Per step: the generator restores the on-the-fly blurred batch; the discriminator (if any) takes
one Adam step on real vs. detached restored inputs; the generator takes one Adam step on the
method's loss with the discriminator frozen. Per epoch: both learning rates decay (x0.99 by
default), the generator is validated with the harness's PSNR / SSIM
(:mod:`faceblur_bench.metrics.pixel`, uint8 RGB), a CSV row is appended to ``log.csv`` and the
checkpoint ``checkpoints/last.pth`` is rewritten.

Output folder::

    config.json          resolved configuration
    tensorboard/         the log.csv scalars, when the tensorboard package is installed
    log.csv              one row per epoch: losses, lr, images/s, val_psnr, val_ssim
    steps.csv            every ``log_every`` steps: losses of that step
    samples/epoch_NNNN.png  blurred | restored | sharp of the first 4 validation images
    checkpoints/last.pth (every epoch), epoch_NNNN.pth (every ``keep_every``), best.pth

Mixed precision: bf16 autocast on CUDA (``amp = "bf16"``); losses are computed in float32.
Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1), each process trains on its shard
(``DistributedSampler``) with ``DistributedDataParallel`` generator / discriminator
(NCCL on CUDA, gloo on CPU); rank 0 validates, logs and writes checkpoints. ``batch_size`` is
per process.

Reproducibility: augmentation, sample order, kernel choice and noise are drawn from seeds
derived from ``(seed, epoch, step, rank)``, and checkpoints carry model, optimiser, scheduler,
epoch and RNG state, so ``--resume`` continues with exactly the losses an uninterrupted run
would have had (bit-exact on CPU; up to non-deterministic GPU kernels on CUDA).
"""

from __future__ import annotations

import csv
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

from ..errors import DataNotFoundError, UsageError
from ..metrics.pixel import psnr_u8, ssim_gaussian
from . import checkpoint as ckpt_io
from .data import N_CLASSES, Degrader, MSPLTrainSet, build_validation, kernel_source, resolve_labels
from .task import GANTask, VGGLoader, task_class


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
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda requested but CUDA is not available", "use --device cpu")
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


def _to01(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1.0) / 2.0


class Trainer:
    """Train ``cfg["method"]`` on the MSPL layout under ``data_root``, writing to ``out``.

    ``vgg_loader`` builds the VGGFace feature network (default: ``VGGFace16.pth`` from the
    weights registry); ``progress`` shows a rich progress bar on rank 0.
    """

    def __init__(self, cfg: dict[str, Any], data_root: str | Path, out: str | Path, *,
                 resume: bool = False, device: str | None = None,
                 weights_overrides: dict[str, str] | None = None, progress: bool = True,
                 vgg_loader: VGGLoader | None = None, log: Callable[[str], None] | None = None,
                 epochs_override: int | None = None):
        self.dist, self.device = init_distributed(device)
        self.out = Path(out)
        self.root = Path(data_root).expanduser()
        self.progress = progress and self.dist.main
        self.log = log or (lambda msg: print(msg, flush=True))
        self.ck_path = self.out / "checkpoints" / "last.pth"
        state = None
        if resume:
            if not self.ck_path.is_file():
                raise UsageError(f"--resume: no checkpoint at {self.ck_path}",
                                 "start without --resume, or pass the --out folder of the run to continue")
            state = ckpt_io.load(self.ck_path)
            if state["method"] != cfg["method"]:
                raise UsageError(f"--resume: {self.ck_path} is a {state['method']} run, not {cfg['method']}",
                                 "pass the matching method or another --out folder")
            cfg = state["config"]  # a resumed run keeps its own configuration ...
            if epochs_override is not None:  # ... except that it may be extended
                cfg["epochs"] = int(epochs_override)
        elif self.ck_path.is_file():
            raise UsageError(f"{self.out} already holds a training run ({self.ck_path})",
                             "add --resume to continue it, or choose another --out folder")
        if not self.root.is_dir():
            raise DataNotFoundError(f"data root {self.root} not found", "pass --data-root DIR with the MSPL training layout")
        self.cfg = cfg
        seed = int(cfg["seed"])
        torch.manual_seed(seed + self.dist.rank)
        np.random.seed((seed + self.dist.rank) % 2**32)
        tcls = task_class(cfg["method"])
        dcfg = cfg["data"]
        if tcls.labels_needed(cfg):
            mode, _ = resolve_labels(self.root, dcfg["labels"])
            want = N_CLASSES[mode]
            have = int(cfg["model"]["discriminator"]["n_classes"])
            if have != want:
                if state is not None:
                    raise UsageError(f"the run was trained with {have} label classes but the data has {want} ({mode})",
                                     "resume on the same data / data.labels")
                cfg["model"]["discriminator"]["n_classes"] = want
        self.task: GANTask = tcls(cfg, self.device, weights_overrides=weights_overrides,
                                  **({"vgg_loader": vgg_loader} if vgg_loader else {}))
        has_val_dir = (self.root / "validationset" / "gt").is_dir()
        holdout = 0 if has_val_dir else int(dcfg["val_images"])
        self.dataset = MSPLTrainSet(self.root, dcfg, seed=seed, need_labels=self.task.needs_labels, exclude=holdout)
        self.kernels_desc, bank = kernel_source(self.root, dcfg)
        self.degrader = Degrader(bank, float(dcfg["noise_sigma"]), bool(dcfg["no_blur_option"]), self.device)
        self.val = build_validation(self.root, dcfg, bank, seed) if self.dist.main else None
        bs = int(cfg["batch_size"])
        per_rank = len(self.dataset) // self.dist.world
        if per_rank < bs:
            raise UsageError(f"{len(self.dataset)} training images give {per_rank} per process, fewer than the "
                             f"batch size {bs}", "lower --batch-size or add images")
        self.steps_per_epoch = per_rank // bs

        g_raw, d_raw = self.task.generator, self.task.discriminator
        oc = cfg["optim"]
        betas = tuple(float(b) for b in oc["betas"])
        self.opt_g = torch.optim.Adam(g_raw.parameters(), lr=float(oc["lr_g"]), betas=betas)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.opt_g, gamma=float(oc["lr_decay"]))
        self.opt_d = self.sched_d = None
        if d_raw is not None:
            self.opt_d = torch.optim.Adam(d_raw.parameters(), lr=float(oc["lr_d"]), betas=betas)
            self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.opt_d, gamma=float(oc["lr_decay"]))
        self.start_epoch, self.step, self.best_psnr = 0, 0, -math.inf
        if state is not None:
            g_raw.load_state_dict(state["generator"])
            if d_raw is not None:
                d_raw.load_state_dict(state["discriminator"])
                self.opt_d.load_state_dict(state["optim_d"])
                self.sched_d.load_state_dict(state["sched_d"])
            self.opt_g.load_state_dict(state["optim_g"])
            self.sched_g.load_state_dict(state["sched_g"])
            self.start_epoch, self.step = int(state["epoch"]), int(state["step"])
            self.best_psnr = float(state.get("best_psnr", -math.inf))
            ckpt_io.set_rng_state(state["rng"])
        self.g, self.d = g_raw, d_raw
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g = DDP(g_raw, device_ids=ids)
            if d_raw is not None:
                self.d = DDP(d_raw, device_ids=ids)
        self.use_amp = cfg["amp"] == "bf16" and self.device.type == "cuda"
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    # ------------------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else nullcontext()

    def loader(self, epoch: int) -> torch.utils.data.DataLoader:
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
        nw = int(self.cfg["data"]["num_workers"])
        return torch.utils.data.DataLoader(
            self.dataset, batch_size=int(self.cfg["batch_size"]), sampler=sampler, num_workers=nw,
            drop_last=True, pin_memory=self.device.type == "cuda", persistent_workers=False)

    def train_step(self, batch: dict[str, Any], epoch: int, it: int) -> dict[str, torch.Tensor | float]:
        sharp01 = batch["sharp"].to(self.device, non_blocking=True)
        blurred01, k = self.degrader(sharp01, (int(self.cfg["seed"]), epoch, it, self.dist.rank))
        b: dict[str, Any] = {"sharp": sharp01 * 2.0 - 1.0, "blurred": blurred01 * 2.0 - 1.0}
        if "labels" in batch:
            b["labels"] = batch["labels"].to(self.device, non_blocking=True)
        logs: dict[str, Any] = {"kernel": float(k)}
        with self.autocast():
            out = self.g(b["blurred"])
        d_raw = self.task.discriminator
        if d_raw is not None:
            d_raw.requires_grad_(True)
            detached = (out[0].detach(), tuple(p.detach() for p in out[1]))
            with self.autocast():
                loss_d, dl = self.task.discriminator_loss(b, detached, epoch, self.d)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            d_raw.requires_grad_(False)
            logs.update(dl)
        with self.autocast():
            loss_g, gl = self.task.generator_loss(b, out, epoch, d_raw)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        logs.update(gl)
        return logs

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        if self.val is None:
            return {}
        g = self.task.generator
        g.eval()
        outs = []
        bs = max(1, int(self.cfg["batch_size"]))
        for i in range(0, len(self.val), bs):
            x = self.val.blurred[i:i + bs].to(self.device).float() / 127.5 - 1.0
            with self.autocast():
                y = g(x)[0]
            outs.append(torch.clamp(torch.round(_to01(y) * 255.0), 0, 255).to(torch.uint8))
        g.train()
        restored = torch.cat(outs)
        sharp = self.val.sharp.to(self.device)
        psnr = psnr_u8(restored, sharp)
        ssim = ssim_gaussian(restored, sharp)
        self._save_samples(epoch, restored[:4].cpu())
        return {"val_psnr": float(psnr[torch.isfinite(psnr)].mean()) if torch.isfinite(psnr).any() else float("inf"),
                "val_ssim": float(ssim.mean())}

    def _save_samples(self, epoch: int, restored: torch.Tensor) -> None:
        from ..imageio import write_png

        n = restored.shape[0]
        rows = [torch.cat([self.val.blurred[i], restored[i], self.val.sharp[i]], dim=2) for i in range(n)]
        grid = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()
        write_png(self.out / "samples" / f"epoch_{epoch:04d}.png", grid)

    def _checkpoint(self, epoch_done: int) -> dict[str, Any]:
        d_raw = self.task.discriminator
        return {
            "format": ckpt_io.FORMAT, "method": self.cfg["method"], "ablation": self.cfg.get("ablation"),
            "config": self.cfg, "epoch": epoch_done, "step": self.step,
            "generator": self.task.generator.state_dict(),
            "discriminator": d_raw.state_dict() if d_raw is not None else None,
            "optim_g": self.opt_g.state_dict(), "sched_g": self.sched_g.state_dict(),
            "optim_d": self.opt_d.state_dict() if self.opt_d else None,
            "sched_d": self.sched_d.state_dict() if self.sched_d else None,
            "rng": ckpt_io.rng_state(), "best_psnr": self.best_psnr,
        }

    def _append_csv(self, name: str, row: dict[str, Any]) -> None:
        path = self.out / name
        new = not path.exists()
        if not new:
            with open(path, newline="") as f:
                header = next(csv.reader(f), None)
            if header and header != list(row):
                # losses differ between presets; keep one header per file by filling gaps
                row = {k: row.get(k, "") for k in header} | {k: v for k, v in row.items() if k not in header}
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
            if new:
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

    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg, epochs = self.cfg, int(self.cfg["epochs"])
        result = TrainResult(self.out, self.start_epoch, self.step)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg, indent=2))
            self.log(f"[train] {cfg['method']} {cfg.get('ablation')} on {self.device} x{self.dist.world}: "
                     f"{len(self.dataset)} images, {self.steps_per_epoch} steps/epoch, kernels: {self.kernels_desc}; "
                     f"validation: {self.val.source if self.val else 'none'}")
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
        with progress_cm as prog:
            for epoch in range(self.start_epoch, epochs):
                if self.progress:
                    task_id = prog.add_task("train", total=self.steps_per_epoch, epoch=f"{epoch + 1}/{epochs}", info="")
                sums: dict[str, float] = {}
                count = 0
                t0 = time.perf_counter()
                lr_g = self.opt_g.param_groups[0]["lr"]
                lr_d = self.opt_d.param_groups[0]["lr"] if self.opt_d else 0.0
                for it, batch in enumerate(self.loader(epoch)):
                    if it >= self.steps_per_epoch:
                        break
                    logs = self.train_step(batch, epoch, it)
                    self.step += 1
                    n = int(batch["sharp"].shape[0])
                    count += n
                    for k, v in logs.items():
                        sums[k] = sums.get(k, 0.0) + (v.detach().double() if torch.is_tensor(v) else float(v)) * n
                    if it % log_every == 0:
                        vals = {k: float(v) for k, v in logs.items()}
                        if self.dist.main:
                            self._append_csv("steps.csv", {"epoch": epoch, "step": self.step, "iter": it} | vals)
                        if self.progress and task_id is not None:
                            info = " ".join(f"{k}={vals[k]:.4f}" for k in
                                            ("g_total", "g_pixel", "d_enc", "d_dec", "d_loss") if k in vals)
                            rate = count * self.dist.world / max(time.perf_counter() - t0, 1e-9)
                            prog.update(task_id, info=f"{info} {rate:.1f} img/s")
                    if self.progress and task_id is not None:
                        prog.update(task_id, advance=1)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                elapsed = time.perf_counter() - t0
                means = self._reduce_mean(sums, count)
                images = int(means.pop("_count"))
                self.sched_g.step()
                if self.sched_d is not None:
                    self.sched_d.step()
                row: dict[str, Any] = {"epoch": epoch, "step": self.step, "images": images,
                                       "images_per_s": round(images / max(elapsed, 1e-9), 3),
                                       "lr_g": lr_g, "lr_d": lr_d}
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
                        ckpt_io.export_generator(ck, self.out / "checkpoints" / "best.pth")
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
            dist.destroy_process_group()


def train(method: str, data_root: str | Path, out: str | Path, *, config: str | Path | dict | None = None,
          ablation: str | None = None, epochs: int | None = None, batch_size: int | None = None,
          resume: bool = False, device: str | None = None, weights_overrides: dict[str, str] | None = None,
          progress: bool = True, vgg_loader: VGGLoader | None = None) -> TrainResult:
    """Library entry point of ``faceblur-bench train`` (see :class:`Trainer`)."""
    from .config import build_config

    cfg = build_config(method, ablation, config, epochs, batch_size)
    trainer = Trainer(cfg, data_root, out, resume=resume, device=device, weights_overrides=weights_overrides,
                      progress=progress, vgg_loader=vgg_loader, epochs_override=epochs)
    try:
        return trainer.fit()
    finally:
        trainer.close()


__all__ = ["TrainResult", "Trainer", "init_distributed", "train"]
