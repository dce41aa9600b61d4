"""A trainable third-party method in one file: ``residual-cnn`` and its trainer.

- Method ``residual-cnn``: a 3-layer residual CNN (``x + f(x)``, widths from the checkpoint),
  loaded from a checkpoint written by ``faceblur-bench train residual-cnn``.
- Trainer ``residual-cnn``: L1 between restored and sharp on the ``example-pairs`` layout
  (``<data-root>/blur/<name>.png`` -> ``sharp/<name>.png``), Adam, random 32 px crops; the last
  image is held out for validation.

Both register through entry points (``faceblur_bench.methods`` and ``faceblur_bench.trainers``
in this distribution's ``pyproject.toml``), exactly as a built-in method package does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from faceblur_bench.methods import checkpoint as ckpt_io
from faceblur_bench.methods.base import Method
from faceblur_bench.methods.training import StepContext, TrainTask, ValidationData


class ResidualCNN(nn.Module):
    """``(N, 3, H, W)`` in [0, 1] -> ``x + conv(relu(conv(relu(conv(x)))))``."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualCNNMethod(Method):
    description = "3-layer residual CNN trained by `faceblur-bench train residual-cnn` (example plugin)"
    contract_options = {"width": 4}

    def load(self, checkpoint, device) -> None:
        super().load(checkpoint, device)
        if checkpoint is None:
            raise ValueError("residual-cnn needs --checkpoint (train one with `faceblur-bench train residual-cnn`)")
        ck = ckpt_io.load_trained(checkpoint, trainers=("residual-cnn",))
        self.net = ResidualCNN(int(ck["config"]["model"]["width"]))
        self.net.load_state_dict(ck["modules"]["generator"])
        self.net.to(self.device).eval()

    def init_untrained(self, device, *, tiny: bool = False) -> None:
        super().load(None, device)
        self.net = ResidualCNN(int(self.contract_options["width"]) if tiny else 16).to(self.device).eval()

    @torch.no_grad()
    def restore(self, blurred, meta=None):
        return self.net(blurred.to(self.device)).clamp(0, 1)

    def num_parameters(self):
        return sum(p.numel() for p in self.net.parameters()) if getattr(self, "net", None) else None


def _read(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


class Pairs(torch.utils.data.Dataset):
    """Random ``crop`` px crops of (blurred, sharp) pairs; crop positions from (seed, epoch, index)."""

    def __init__(self, pairs: list[tuple[Path, Path]], crop: int, seed: int):
        self.pairs, self.crop, self.seed, self.epoch = pairs, crop, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        b, s = (_read(p) for p in self.pairs[i])
        rng = np.random.default_rng([self.seed, self.epoch, i])
        h, w = b.shape[-2:]
        y, x = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
        sl = (slice(None), slice(y, y + self.crop), slice(x, x + self.crop))
        return {"blurred": b[sl], "sharp": s[sl]}


class ResidualCNNTask(TrainTask):
    method = "residual-cnn"
    description = "3-layer residual CNN, L1 loss, Adam (example third-party trainer)"
    data_help = "blur/<name>.png and sharp/<name>.png (the example-pairs layout)"
    defaults = {"epochs": 2, "batch_size": 2, "model": {"width": 16}, "optim": {"lr": 1e-3},
                "data": {"crop": 32}}
    presets = {"small": {"model": {"width": 8}}, "wide": {"model": {"width": 32}}}
    preset_descriptions = {"small": "width 8", "wide": "width 32"}
    smoke_config = {"model": {"width": 4}, "batch_size": 1, "log_every": 1, "data": {"num_workers": 0}}

    def __init__(self, cfg, device, *, weights_overrides=None):
        super().__init__(cfg, device, weights_overrides=weights_overrides)
        self.modules["generator"] = ResidualCNN(int(cfg["model"]["width"])).to(device)
        self.optimizers["generator"] = torch.optim.Adam(self.modules["generator"].parameters(),
                                                        lr=float(cfg["optim"]["lr"]))

    @classmethod
    def write_smoke_data(cls, root: Path) -> Path:
        rng = np.random.default_rng(0)
        for sub in ("blur", "sharp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            sharp = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(sharp).save(root / "sharp" / f"f{i}.png")
            Image.fromarray((sharp * 0.5 + 64).astype(np.uint8)).save(root / "blur" / f"f{i}.png")
        return root

    def build_data(self, data_root: Path, *, rank: int, world: int):
        pairs = [(p, data_root / "sharp" / p.name) for p in sorted((data_root / "blur").glob("*.png"))]
        if len(pairs) < 2:
            raise ValueError(f"{data_root}: need at least 2 pairs in blur/ and sharp/")
        train, (vb, vs) = pairs[:-1], pairs[-1]
        val = ValidationData((_read(vb)[None] * 255).round().to(torch.uint8),
                             (_read(vs)[None] * 255).round().to(torch.uint8), f"{vb.name} (held out)")
        return Pairs(train, int(self.cfg["data"]["crop"]), int(self.cfg["seed"])), val

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        with ctx.autocast():
            out = ctx.nets["generator"](batch["blurred"].to(ctx.device))
        loss = F.l1_loss(out.float(), batch["sharp"].to(ctx.device))
        opt = self.optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"l1": loss.detach()}

    @torch.no_grad()
    def restore(self, blurred01, meta=None):
        return self.modules["generator"](blurred01.to(self.device)).clamp(0, 1)
