"""Two-process gloo DistributedDataParallel smoke run through ``torchrun -m faceblur_bench.train``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import torch

from faceblur_bench.methods.dfpg.vggface import save_random_vggface16
from faceblur_bench.methods import checkpoint as ckpt_io
from faceblur_bench.data.training import make_layout

TINY = {
    "model": {"generator": {"widths": [8, 16, 32], "base_blocks": 1, "prior_blocks": 1, "se_reduction": 4},
              "discriminator": {"ch": 4, "attention": False}},
    "data": {"image_size": 32, "crop": 48, "val_images": 1, "num_workers": 0},
    "log_every": 1,
}


def test_two_process_gloo_ddp_run(tmp_path):
    root = make_layout(tmp_path / "mspl", n_images=5, size=40)  # 4 train + 1 held out
    save_random_vggface16(tmp_path / "w" / "VGGFace16.pth")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    env = dict(os.environ, FACEBLUR_WEIGHTS=str(tmp_path / "w"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "faceblur_bench.train", "sappgan", "--data-root", str(root), "--out", str(tmp_path / "run"),
           "--config", str(cfg), "--epochs", "1", "--batch-size", "1", "--device", "cpu", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cpu x2" in proc.stdout  # both processes joined one group
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # 4 training images, 2 processes, batch 1 per process: 2 steps each, 4 images in the epoch
    assert len(rows) == 1 and int(rows[0]["images"]) == 4 and int(rows[0]["step"]) == 2
    with open(tmp_path / "run" / "steps.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2  # only rank 0 writes step lines
    ck = ckpt_io.load(tmp_path / "run" / "checkpoints" / "last.pth")
    best = ckpt_io.load(tmp_path / "run" / "checkpoints" / "best.pth")  # exported generator
    gen = ck["modules"]["generator"]
    assert ck["epoch"] == 1 and "module." not in next(iter(gen))
    assert all(torch.isfinite(v).all() for v in gen.values())
    assert "optimizers" not in best and set(best["modules"]) == {"generator"}
    assert all(torch.equal(best["modules"]["generator"][k], v) for k, v in gen.items())
