"""``faceblur-bench train shen``: the four stages on CPU, exact resume, single stages with
--init-from, and ``run --method shen`` on the demo split with a checkpoint trained here."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch

from faceblur_bench.errors import UsageError
from faceblur_bench.imageio import quantize, read_image, to_tensor01
from faceblur_bench.methods import checkpoint as ckpt_io
from faceblur_bench.methods.shen import data as D
from faceblur_bench.methods.shen.training import ShenTask
from faceblur_bench.methods.shen.vggface import save_random_dag
from faceblur_bench.metrics.pixel import psnr_u8
from faceblur_bench.registry import methods
from faceblur_bench.train.config import build_config
from faceblur_bench.train.loop import train

#: 4 training images, batch 2 -> 2 steps per epoch -> each epoch is one stage
OVER = {"schedule": {"iterations": [2, 2, 2, 2]}, "keep_every": 1, "loss": {"lambda_vgg": 1e-5}}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shen_train")
    root = ShenTask.write_smoke_data(tmp)
    dag = save_random_dag(tmp / "w" / "vgg_face_dag.pth")
    weights = {"vgg-face-dag": str(dag)}
    res = train("shen", root, tmp / "full", tiny=True, epochs=4, overrides=OVER,
                weights_overrides=weights, progress=False)
    return tmp, root, weights, res


def _modules(path):
    return ckpt_io.load(path)["modules"]


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_four_stages_train_the_right_networks(setup):
    tmp, _, _, res = setup
    assert res.steps == 8 and [h["stage"] for h in res.history] == [1.0, 2.0, 3.0, 4.0]
    h = res.history
    assert "l_c" in h[0] and "l_p" not in h[0]  # stage 1: L_c only
    assert set(h[1]) >= {"l_p"} and "l_c" not in h[1]  # stage 2: L_p only
    assert {"l_c", "l_s", "l_vgg", "l_adv", "d_loss"} <= set(h[2]) and "l_p" not in h[2]
    assert {"l_c", "l_s", "l_vgg", "l_adv", "l_p"} <= set(h[3])  # stage 4: eq. 11
    assert all(np.isfinite(v) for row in h for v in row.values() if isinstance(v, float))
    ck = [_modules(tmp / "full" / "checkpoints" / f"epoch_{e:04d}.pth") for e in range(1, 5)]
    # stage 2 changes only P; stage 3 only G_f and D; stage 4 everything
    assert _same(ck[0]["coarse"], ck[1]["coarse"]) and not _same(ck[0]["parsing"], ck[1]["parsing"])
    assert _same(ck[0]["fine"], ck[1]["fine"])
    assert _same(ck[1]["coarse"], ck[2]["coarse"]) and _same(ck[1]["parsing"], ck[2]["parsing"])
    assert not _same(ck[1]["fine"], ck[2]["fine"])
    assert not _same(ck[1]["discriminator"], ck[2]["discriminator"])
    assert not _same(ck[2]["coarse"], ck[3]["coarse"]) and not _same(ck[2]["parsing"], ck[3]["parsing"])
    # P's batch-norm statistics stay put while it is frozen (eval mode)
    assert torch.equal(ck[1]["parsing"]["encoder.0.bn.running_mean"],
                       ck[2]["parsing"]["encoder.0.bn.running_mean"])


def test_resume_reproduces_the_next_losses_exactly(setup):
    tmp, root, weights, full = setup
    part = train("shen", root, tmp / "part", tiny=True, epochs=2, overrides=OVER,
                 weights_overrides=weights, progress=False)
    assert part.steps == 4
    resumed = train("shen", root, tmp / "part", tiny=True, epochs=4, resume=True,
                    weights_overrides=weights, progress=False)
    assert resumed.steps == 8
    for a, b in zip(full.history[2:], resumed.history):
        for k in ("l_c", "l_s", "l_vgg", "l_adv", "d_loss", "total", "val_psnr"):
            if k in a:
                assert a[k] == b[k], (k, a[k], b[k])


def test_single_stage_with_init_from(setup, tmp_path):
    root = setup[1]
    with pytest.raises(UsageError, match="--init-from"):
        build_config("shen", tiny=True, overrides={"schedule": {"stage": 2}})
    s1 = train("shen", root, tmp_path / "s1", tiny=True, overrides={
        "schedule": {"stage": 1, "iterations": [4, 1, 1, 1], "auto_epochs": True}},
        progress=False)
    assert s1.epochs_done == 2 and s1.steps == 4  # auto epochs: 4 iterations / 2 steps per epoch
    first = tmp_path / "s1" / "checkpoints" / "last.pth"
    s2 = train("shen", root, tmp_path / "s2", tiny=True, epochs=1, overrides={
        "schedule": {"stage": 2, "init_from": str(first)}}, progress=False)
    assert [h["stage"] for h in s2.history] == [2.0]
    a, b = _modules(first), _modules(tmp_path / "s2" / "checkpoints" / "last.pth")
    assert _same(a["coarse"], b["coarse"]) and not _same(a["parsing"], b["parsing"])


def test_helen_layout_and_augmentation(tmp_path):
    root = D.make_smoke_layout(tmp_path / "h", n_images=3, size=64, per_class=True)
    files, val = D.training_files(root, 1)
    assert len(files) == 2 and len(val) == 1
    src = D.label_source(root, files[0].stem)
    assert isinstance(src, list) and len(src) == 11
    lab = D.read_labels(src)
    assert set(np.unique(lab)) <= set(range(11)) and (lab == 6).any()  # the nose is there
    cfg = dict(D.DATA_DEFAULTS, image_size=64)
    ds = D.HelenTrainSet(root, files, cfg, seed=3)
    a, b = ds[0], ds[0]
    assert a["sharp"].shape == (3, 64, 64) and a["labels"].shape == (64, 64)
    assert torch.equal(a["sharp"], b["sharp"])  # deterministic per (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["sharp"], a["sharp"])
    # identity warp leaves the pair unchanged; the warp moves labels with the image
    still = dict(cfg, scale=[1.0, 1.0], shift_px=0.0, rotate_deg=0.0)
    ds0 = D.HelenTrainSet(root, files, still)
    raw = np.asarray(read_image(files[0]))
    assert np.array_equal(ds0[0]["sharp"].numpy().transpose(1, 2, 0) * 255, raw.astype(np.float32))
    assert np.array_equal(ds0[0]["labels"].numpy(), lab)
    bl = D.Blurrer(D.kernel_bank(dict(cfg, kernel_bank_size=2, kernel_sizes=[13])), 0.01)
    x = a["sharp"][None].repeat(2, 1, 1, 1)
    y1, y2 = bl(x, (0, 1)), bl(x, (0, 1))
    assert torch.equal(y1, y2) and not torch.equal(y1, bl(x, (0, 2)))
    assert 0.005 < float((y1 - x).std()) and y1.shape == x.shape


def _cli(*args, env):
    return subprocess.run(["faceblur-bench", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_run_shen_on_the_demo_split(setup, demo_data_root, tmp_path):
    tmp, _, _, _ = setup
    ck = tmp / "full" / "checkpoints" / "last.pth"
    env = dict(os.environ, FACEBLUR_DATA=str(demo_data_root))
    out = tmp_path / "results"
    proc = _cli("run", "--method", "shen", "--checkpoint", str(ck), "--split", "demo", "--out",
                str(out), "--metrics", "psnr", "--limit", "2", "--leaderboard",
                str(tmp_path / "lb.md"), "--device", "cpu", env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = next(out.glob("runs/demo/shen/*/summary.json"))
    s = json.loads(summary.read_text())
    assert s["counts"]["ok"] == 2 and s["checkpoint_sha256"]
    m = methods.get("shen")()
    m.load(ck, "cpu")
    assert s["num_parameters"] == m.num_parameters() < 200_000  # the tiny trained model
    row = json.loads((summary.parent / "rows.jsonl").read_text().splitlines()[0])
    from faceblur_bench.engine import open_split

    sample = next(x for x in open_split("demo", demo_data_root).samples() if x.id == row["id"])
    restored = m.restore(to_tensor01([read_image(sample.blurred)]))
    sharp = torch.from_numpy(np.array(read_image(sample.sharp))).permute(2, 0, 1)[None]
    assert float(psnr_u8(quantize(restored), sharp)[0]) == pytest.approx(row["metrics"]["psnr"],
                                                                          abs=1e-6)
    # the n2 method refuses this (one fine net) checkpoint, naming the right method
    with pytest.raises(UsageError, match="--method shen"):
        methods.get("shen-n2")().load(ck, "cpu")
