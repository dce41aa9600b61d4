"""``faceblur-bench run --method sappgan`` on the demo split with a checkpoint trained here for two steps."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch

from faceblur_bench.imageio import quantize, read_image, to_tensor01
from faceblur_bench.methods.dfpg.vggface import save_random_vggface16
from faceblur_bench.metrics.pixel import psnr_u8
from faceblur_bench.registry import methods
from faceblur_bench.results import image_path
from faceblur_bench.train.loop import train
from faceblur_bench.data.training import make_layout

TINY = {
    "model": {"generator": {"widths": [8, 16, 32], "base_blocks": 1, "prior_blocks": 1, "se_reduction": 4},
              "discriminator": {"ch": 4, "attention": False}},
    "data": {"image_size": 32, "crop": 48, "val_images": 1, "num_workers": 0},
}


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["faceblur-bench", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sapp")
    root = make_layout(tmp / "mspl", n_images=5, size=40)
    save_random_vggface16(tmp / "w" / "VGGFace16.pth")
    old = os.environ.get("FACEBLUR_WEIGHTS")
    os.environ["FACEBLUR_WEIGHTS"] = str(tmp / "w")
    try:
        res = train("sappgan", root, tmp / "run", config=TINY, epochs=1, batch_size=2, progress=False)
    finally:
        if old is None:
            os.environ.pop("FACEBLUR_WEIGHTS")
        else:
            os.environ["FACEBLUR_WEIGHTS"] = old
    assert res.steps == 2
    return tmp / "run" / "checkpoints" / "last.pth"


def test_run_sappgan_on_demo_split(checkpoint, demo_data_root, tmp_path):
    env = dict(os.environ, FACEBLUR_DATA=str(demo_data_root))
    out = tmp_path / "results"
    proc = _cli("run", "--method", "sappgan", "--checkpoint", str(checkpoint), "--split", "demo",
                "--out", str(out), "--metrics", "psnr,ssim", "--limit", "2", "--batch-size", "1",
                "--save-images", "--leaderboard", str(tmp_path / "lb.md"), "--device", "cpu", env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summaries = list(out.glob("runs/demo/sappgan/*/summary.json"))
    assert len(summaries) == 1
    s = json.loads(summaries[0].read_text())
    assert s["counts"]["ok"] == 2 and s["checkpoint_sha256"]
    tiny_count = methods.get("sappgan")()
    tiny_count.load(checkpoint, "cpu")
    assert s["num_parameters"] == tiny_count.num_parameters() < 1_000_000  # the tiny trained model, not the paper one
    rows = [json.loads(line) for line in (summaries[0].parent / "rows.jsonl").read_text().splitlines()]
    # the row's PSNR is exactly that of the image the run restored and saved
    saved = torch.from_numpy(np.array(read_image(image_path(summaries[0].parent, rows[0]["id"])))).permute(2, 0, 1)[None]
    from faceblur_bench.engine import open_split

    split = open_split("demo", demo_data_root)
    sample = next(x for x in split.samples() if x.id == rows[0]["id"])
    sharp = torch.from_numpy(np.array(read_image(sample.sharp))).permute(2, 0, 1)[None]
    assert float(psnr_u8(saved, sharp)[0]) == rows[0]["metrics"]["psnr"]
    # and that image is what the library's restore() gives with the same checkpoint, up to float
    # rounding: this process and the CLI's may round a convolution differently in the last bit
    # (allocation alignment, threads), which can move a pixel across an 8-bit step
    blurred = to_tensor01([read_image(sample.blurred)])
    restored = tiny_count.restore(blurred)
    assert restored.shape == blurred.shape and 0.0 <= float(restored.min()) and float(restored.max()) <= 1.0
    diff = (quantize(restored).int() - saved.int()).abs()
    assert int(diff.max()) <= 1 and int((diff > 0).sum()) <= diff.numel() // 1000, (int(diff.max()), int((diff > 0).sum()))
    assert not torch.equal(quantize(blurred), saved)  # it did change the image


def test_run_sappgan_without_checkpoint_refuses(demo_data_root, tmp_path):
    env = dict(os.environ, FACEBLUR_DATA=str(demo_data_root), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("FACEBLUR_CHECKPOINTS", None)
    proc = _cli("run", "--method", "sappgan", "--split", "demo", "--out", str(tmp_path / "r"), "--metrics", "psnr",
                "--limit", "1", "--leaderboard", str(tmp_path / "lb.md"), env=env)
    assert proc.returncode != 0
    msg = proc.stdout + proc.stderr
    assert "sappgan needs trained weights" in msg and "sappgan.pth" in msg
    assert not list((tmp_path / "r").glob("runs/demo/sappgan/*/rows.jsonl"))
