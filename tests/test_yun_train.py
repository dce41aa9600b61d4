"""``faceblur-bench train yun``: two CPU steps on a tiny tree in the release layout with exact
resume, staged D_l, synthesis from sharp faces, and ``run --method yun`` on a checkpoint trained
here. Networks are tiny and images synthetic: no number from here is a result."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceblur_bench.errors import UsageError
from faceblur_bench.methods import checkpoint as ckpt_io
from faceblur_bench.methods.yun import data as D
from faceblur_bench.methods.yun.training import SMOKE, YunTask
from faceblur_bench.methods.yun.vgg19 import VGG19Features, save_random_vgg19
from faceblur_bench.train.loop import train

LAYERS = ["relu1_1", "relu2_1"]
TINY = {**SMOKE, "loss": {"lambda_vgg": 10.0, "vgg_layers": LAYERS, "vgg_weights": [1 / 32, 1 / 16]}}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def release_tree(tmp_path_factory):
    return YunTask.write_smoke_data(tmp_path_factory.mktemp("yun_release"))


@pytest.fixture(scope="module")
def vgg_loader(tmp_path_factory):
    # format-faithful random torchvision file, read by the real loader (registry hash check aside)
    path = save_random_vgg19(tmp_path_factory.mktemp("w") / "vgg19-dcbb9e9d.pth", upto="relu2_1")

    def load(layers, overrides=None, device="cpu"):
        return VGG19Features(layers).load_torchvision(path).to(device)

    return load


def test_release_layout_items(release_tree):
    names = D.release_names(release_tree)
    assert names == ["00000", "00001", "00002", "00003"]
    it = D.load_item(release_tree, "release", names[0])
    assert it["lr"].shape == (3, 32, 32) and it["blurred_hr"].shape == it["sharp"].shape == (3, 256, 256)
    assert it["mask"].shape == (1, 256, 256) and set(it["mask"].unique().tolist()) == {0.0, 1.0}
    (release_tree / "fmask" / "00003.png").rename(release_tree / "fmask" / "x.png")
    try:
        with pytest.raises(Exception, match="fmask/00003.png"):
            D.release_names(release_tree)
    finally:
        (release_tree / "fmask" / "x.png").rename(release_tree / "fmask" / "00003.png")


def test_two_steps_then_resume_reproduces_next_loss(release_tree, vgg_loader, tmp_path):
    kw = {"vgg_loader": vgg_loader}
    # 4 images, 2 held out for validation -> 1 step per epoch at batch 2
    full = train("yun", release_tree, tmp_path / "full", config=TINY, epochs=2, progress=False, task_kwargs=kw)
    assert full.epochs_done == 2 and full.steps == 2
    half = train("yun", release_tree, tmp_path / "half", config=TINY, epochs=1, progress=False, task_kwargs=kw)
    ck = ckpt_io.load(tmp_path / "half" / "checkpoints" / "last.pth")
    assert set(ck["modules"]) == {"generator", "d_global", "d_local"}
    assert set(ck["optimizers"]) == {"generator", "discriminators"} and ck["optimizers"]["generator"]["state"]
    assert half.steps == 1
    resumed = train("yun", release_tree, tmp_path / "half", epochs=2, resume=True, progress=False, task_kwargs=kw)
    assert resumed.epochs_done == 2
    a, b = _rows(tmp_path / "full" / "steps.csv"), _rows(tmp_path / "half" / "steps.csv")
    assert len(a) == len(b) == 2
    for key in ("g_total", "g_pix", "g_vgg", "g_adv_global", "g_adv_local", "d_loss"):
        assert a[1][key] == b[1][key], key
    assert float(a[0]["g_vgg"]) > 0 and float(a[0]["local"]) == 1.0
    # eq. 6 from the logged terms: adv + 100 pix + 10 vgg
    r = {k: float(v) for k, v in a[0].items()}
    assert r["g_total"] == pytest.approx(r["g_adv_global"] + r["g_adv_local"] + 100 * r["g_pix"]
                                         + 10 * r["g_vgg"], rel=1e-5)
    ga = ckpt_io.load(tmp_path / "full" / "checkpoints" / "last.pth")["modules"]["generator"]
    gb = ckpt_io.load(tmp_path / "half" / "checkpoints" / "last.pth")["modules"]["generator"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    log = _rows(tmp_path / "full" / "log.csv")
    assert np.isfinite(float(log[1]["val_psnr"])) and 0 < float(log[1]["val_ssim"]) < 1
    assert float(log[1]["lr_generator"]) == pytest.approx(2e-4)  # no schedule
    assert json.loads((tmp_path / "full" / "config.json").read_text())["preset"] == "notebooks"


def test_paper_preset_stages_the_local_discriminator(release_tree, tmp_path):
    cfg = {"model": {"generator": {"ngf": 4, "upscale_width": 4}, "discriminator": {"ndf": 4}},
           "loss": {"lambda_vgg": 0.0, "local_from_epoch": 1}, "data": {"val_images": 2, "num_workers": 0,
                                                                          "hflip": True}}
    out = tmp_path / "paper"
    train("yun", release_tree, out, preset="paper", config=cfg, epochs=1, batch_size=2, progress=False)
    ck = ckpt_io.load(out / "checkpoints" / "last.pth")
    assert ck["config"]["model"]["discriminator"]["layers"] == 7 and ck["config"]["batch_size"] == 2
    assert ck["config"]["loss"]["vgg_layers"][0] == "pool1"
    rows = _rows(out / "steps.csv")
    assert float(rows[0]["local"]) == 0.0 and float(rows[0]["g_adv_local"]) == 0.0
    # D_l untouched in the first stage: equal to a fresh one built from the same seed
    torch.manual_seed(0)
    np.random.seed(0)
    fresh = YunTask(ck["config"], torch.device("cpu"))
    for k, v in fresh.modules["d_local"].state_dict().items():
        assert torch.equal(v, ck["modules"]["d_local"][k]), k
    assert not all(torch.equal(v, ck["modules"]["d_global"][k])
                   for k, v in fresh.modules["d_global"].state_dict().items())
    resumed = train("yun", release_tree, out, epochs=2, resume=True, progress=False)
    assert float(_rows(out / "steps.csv")[1]["local"]) == 1.0 and resumed.epochs_done == 2


def test_batch_norm_needs_two_images():
    from faceblur_bench.train.config import build_config

    with pytest.raises(UsageError, match="instance"):
        build_config("yun", None, {"batch_size": 1})
    cfg = build_config("yun", None, {"batch_size": 1, "model": {"generator": {"norm": "instance"}}})
    assert cfg["model"]["generator"]["norm"] == "instance"


def test_synthesis_blurs_inside_the_mask_only():
    torch.manual_seed(0)
    sharp = torch.rand(2, 3, 256, 256)
    mask = torch.from_numpy(D.ellipse_mask())[None, None].expand(2, 1, 256, 256)
    k = torch.zeros(2, 9, 9)
    k[:, 4, :] = 1 / 9
    bhr, lr = D.synthesise(sharp, mask, k)
    out = mask[:, 0] == 0
    assert torch.equal(bhr[:, 0][out], sharp[:, 0][out])
    inside = mask[:, 0] == 1
    assert (bhr[:, 0][inside] - sharp[:, 0][inside]).abs().mean() > 0.05
    assert lr.shape == (2, 3, 32, 32)
    want = torch.nn.functional.interpolate(bhr, size=(32, 32), mode="bicubic", antialias=True)
    assert torch.allclose(lr, want.clamp(0, 1))


def test_sharp_faces_with_celebamask_labels(tmp_path):
    from faceblur_bench.data.training import make_layout

    root = make_layout(tmp_path / "sharp", n_images=4, size=64, labels="cls19")  # resized to 256
    lab = np.asarray(Image.open(root / "train_label" / "00000.png"))
    m = D.label_mask(root / "train_label" / "00000.png")
    assert m.shape == (256, 256)
    big = np.asarray(Image.fromarray(lab).resize((256, 256), Image.NEAREST))
    assert np.array_equal(m > 0, np.isin(big, D.FACE_LABELS)) and 0 < m.mean() < 1
    cfg = {**SMOKE, "data": {**SMOKE["data"], "kernel_sizes": [13, 15], "kernel_bank_size": 2}}
    out = tmp_path / "run"
    r = train("yun", root, out, config=cfg, epochs=1, progress=False)
    assert r.steps == 1
    log = _rows(out / "log.csv")
    assert np.isfinite(float(log[0]["val_psnr"]))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faceblur_bench", *args], check=False, capture_output=True,
                          text=True,
                          timeout=600, env=dict(os.environ))


def test_run_method_yun_on_a_checkpoint_trained_here(release_tree, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_yun_run import write_sr8_tree

    r = cli("train", "yun", "--data-root", str(release_tree), "--out", str(tmp_path / "t"), "--tiny",
            "--epochs", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    ck = tmp_path / "t" / "checkpoints" / "best.pth"
    assert ck.is_file()
    data = write_sr8_tree(tmp_path / "data", n=2)
    r = cli("run", "--method", "yun", "--split", "celebahq-sr8", "--data-root", str(data), "--checkpoint",
            str(ck), "--metrics", "psnr,ssim,psnr-yun,ssim-yun", "--out", str(tmp_path / "res"),
            "--allow-partial", "--device", "cpu", "--leaderboard", str(tmp_path / "lb.md"))
    assert r.returncode == 0, r.stderr[-3000:]
    (summary,) = [json.loads(p.read_text()) for p in (tmp_path / "res").glob("runs/*/yun/*/summary.json")]
    assert summary["counts"]["ok"] == 2 and summary["counts"]["failed"] == 0
    assert summary["method"] == "yun" and summary["num_parameters"] < 1e6  # the tiny trained net
    for m in ("psnr", "ssim", "psnr-yun", "ssim-yun"):
        assert summary["metrics"][m]["status"] == "ok" and summary["metrics"][m]["value"] is not None
    # the checkpoint's generator restores exactly what the method scored: reload and compare
    from faceblur_bench.registry import methods

    meth = methods.get("yun")()
    meth.load(ck, "cpu")
    assert meth.trained["preset"] == "notebooks" and meth.generator_config.ngf == 4
    r = cli("methods", "--json")
    assert r.returncode == 0
    rec = next(x for x in json.loads(r.stdout) if x["name"] == "yun")
    assert rec["scale"] == 8 and rec["params_M"] == pytest.approx(58.295, abs=1e-3)


def test_two_process_gloo_ddp_run(tmp_path):
    # every parameter must get a gradient under DDP (incl. conv8 before the 1x1 instance norm)
    root = D.write_release_tree(tmp_path / "data", n_images=6)  # 4 train + 2 held out
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "faceblur_bench.train", "yun", "--data-root", str(root), "--out", str(tmp_path / "run"),
           "--tiny", "--epochs", "1", "--batch-size", "1", "--device", "cpu", "--no-progress"]
    proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cpu x2" in proc.stdout
    (row,) = _rows(tmp_path / "run" / "log.csv")
    assert int(row["images"]) == 4 and int(row["step"]) == 2
    gen = ckpt_io.load(tmp_path / "run" / "checkpoints" / "last.pth")["modules"]["generator"]
    assert "module." not in next(iter(gen)) and all(torch.isfinite(v).all() for v in gen.values())


def test_release_validation_folders_are_used_when_present(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_yun_run import write_sr8_tree

    root = D.write_release_tree(tmp_path / "rel", n_images=3)
    top = write_sr8_tree(tmp_path / "sr", n=2) / "celebahq-sr8"
    for d in ("valx8", "val_GT"):
        (top / d).rename(root / d)
    from faceblur_bench.train.config import build_config

    task = YunTask(build_config("yun", None, SMOKE), torch.device("cpu"))
    ds, val = task.build_data(root, rank=0, world=1)
    assert len(ds) == 3  # nothing held out: the release's valx8/ + val_GT/ validate
    assert "valx8" in val.source and val.blurred.shape == (2, 3, 32, 32) and val.sharp.shape == (2, 3, 256, 256)
    assert val.blurred.dtype == torch.uint8


def test_train_yun_without_vgg19_weights_exits_2_naming_the_file_and_the_fix(release_tree, tmp_path):
    # the perceptual loss on (--tiny alone switches it off): VGG-19 is needed, and every place the
    # registry looks is an empty directory
    empty = tmp_path / "no-weights"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEBLUR_WEIGHTS")}
    env.update(TORCH_HOME=str(empty), XDG_CACHE_HOME=str(empty), FACEBLUR_WEIGHTS=str(empty))
    out = tmp_path / "t"
    r = subprocess.run([sys.executable, "-m", "faceblur_bench", "train", "yun", "--data-root", str(release_tree),
                        "--out", str(out), "--tiny", "--epochs", "1", "--set", "loss.lambda_vgg=1",
                        "--no-progress"], check=False, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 2, r.stderr[-3000:]
    err = " ".join(r.stderr.split())  # rich wraps long paths
    assert "error: vgg19-dcbb9e9d.pth not found" in err and str(empty / "vgg19-dcbb9e9d.pth") in err, err
    assert "fix: run `faceblur-bench weights fetch vgg19`" in err and "FACEBLUR_WEIGHTS_VGG19=PATH" in err, err
    assert "Traceback" not in r.stderr
    assert not out.exists()  # refused before the run folder was made
