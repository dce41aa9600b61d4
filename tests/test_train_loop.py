"""Shared GAN trainer: configuration layers, MSPL layout / labels / kernels, on-the-fly blur,
two CPU training steps with save -> resume reproducing the next loss exactly, DFPG step."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from faceblur_bench.errors import DataLayoutError, DataNotFoundError, UsageError
from faceblur_bench.methods.dfpg.vggface import save_random_vggface16
from faceblur_bench.methods import checkpoint as ckpt_io
from faceblur_bench.train.config import build_config
from faceblur_bench.data.training import (
    CLS19_TO_CLS4,
    Degrader,
    MSPLTrainSet,
    load_kernel_mat,
    read_label,
)
from faceblur_bench.train.loop import train
from faceblur_bench.data.training import make_layout, write_kernel_mat

TINY = {
    "model": {"generator": {"widths": [8, 16, 32], "base_blocks": 1, "prior_blocks": 1, "se_reduction": 4},
              "discriminator": {"ch": 4, "attention": False}},
    "data": {"image_size": 32, "crop": 48, "val_images": 2, "num_workers": 0, "rotate_deg": 30.0},
    "log_every": 1,
}
TINY_DFPG = {**TINY, "model": {"generator": TINY["model"]["generator"], "discriminator": {"width": 4, "se_reduction": 8}}}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("mspl")
    make_layout(root, n_images=4, size=48, labels="cls19")
    weights = tmp_path_factory.mktemp("weights")
    save_random_vggface16(weights / "VGGFace16.pth")
    return root, weights


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_config_layers_and_errors(tmp_path):
    cfg = build_config("sappgan")
    assert cfg["preset"] == "S5" and cfg["trainer"] == "sappgan" and cfg["epochs"] == 300 and cfg["batch_size"] == 16
    assert cfg["optim"]["lr_g"] == 1e-4 and cfg["optim"]["betas"] == [0.9, 0.999] and cfg["optim"]["lr_decay"] == 0.99
    assert cfg["loss"]["lambda_adv"] == 0.06
    d = build_config("dfpg")
    assert d["preset"] == "B6" and d["optim"]["lr_d"] == 1e-5 and d["loss"]["lambda_adv"] == 0.05
    f = tmp_path / "c.toml"
    f.write_text("epochs = 7\n[model.generator]\nwidths = [8, 16, 32]\n")
    c = build_config("sappgan", "S2", f, batch_size=3)
    assert (c["epochs"], c["batch_size"], c["model"]["generator"]["widths"]) == (7, 3, [8, 16, 32])
    assert c["loss"]["prediction_weighted"] and not c["model"]["discriminator"]["conditional"]
    with pytest.raises(UsageError, match="did you mean"):
        build_config("sappgan", file={"loss": {"lamda_adv": 1}})
    with pytest.raises(UsageError, match="multiple of 32"):
        build_config("sappgan", file={"data": {"image_size": 40}})
    with pytest.raises(UsageError):
        build_config("sappgan", file=tmp_path / "missing.json")


def test_labels_kernels_and_dataset(tmp_path):
    assert CLS19_TO_CLS4[0] == 0 and CLS19_TO_CLS4[1] == 1 and CLS19_TO_CLS4[13] == 2
    assert CLS19_TO_CLS4[2] == 3 and CLS19_TO_CLS4[12] == 3 and CLS19_TO_CLS4[18] == 0 and CLS19_TO_CLS4[8] == 1
    lab = np.array([[0, 1, 2, 13], [4, 8, 17, 18]], np.uint8)
    p = tmp_path / "l.png"
    Image.fromarray(lab, mode="L").save(p)
    assert read_label(p, "cls19").tolist() == lab.tolist()
    assert read_label(p, "cls19to4").tolist() == [[0, 1, 3, 2], [3, 1, 0, 0]]
    with pytest.raises(DataLayoutError, match="expected 0..3"):
        read_label(p, "cls4")
    k = load_kernel_mat(write_kernel_mat(tmp_path / "blur_k13.mat", 13, 5))
    assert k.shape == (5, 13, 13) and np.allclose(k.sum(axis=(1, 2)), 1.0) and (k >= 0).all()
    from scipy.io import savemat

    savemat(str(tmp_path / "blur_k15.mat"), {"wrong": np.ones((15, 15, 2))})
    with pytest.raises(DataLayoutError, match="blurs_k15"):
        load_kernel_mat(tmp_path / "blur_k15.mat")
    root = make_layout(tmp_path / "root", n_images=3, size=40)
    cfg = build_config("sappgan", file={"data": TINY["data"]})["data"]
    ds = MSPLTrainSet(root, cfg, seed=1, need_labels=True)
    a = ds[0]
    assert a["sharp"].shape == (3, 32, 32) and a["labels"].shape == (32, 32) and ds.n_classes == 19
    assert 0.0 <= float(a["sharp"].min()) and float(a["sharp"].max()) <= 1.0
    assert torch.equal(ds[0]["sharp"], a["sharp"])  # same (seed, epoch, index) -> same augmentation
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["sharp"], a["sharp"])
    with pytest.raises(DataNotFoundError, match="train_img"):
        MSPLTrainSet(tmp_path, cfg)


def test_degrader_is_seeded_and_blurs():
    bank = {13: np.stack([np.eye(13) / 13.0] * 3)}
    deg = Degrader(bank, noise_sigma=0.0, no_blur_option=False)
    x = torch.rand(2, 3, 32, 32)
    y1, k1 = deg(x, (0, 0, 0, 0))
    y2, _ = deg(x, (0, 0, 0, 0))
    assert k1 == 13 and torch.equal(y1, y2) and not torch.allclose(y1, x)
    noisy = Degrader(bank, noise_sigma=0.01, no_blur_option=False)
    a, _ = noisy(x, (0, 0, 0, 0))
    b, _ = noisy(x, (0, 0, 1, 0))
    assert not torch.equal(a, b) and (a - y1).std() == pytest.approx(0.01, rel=0.1)
    sharp_only = Degrader(bank, 0.0, no_blur_option=True)
    ks = {sharp_only(x, (s,))[1] for s in range(40)}
    assert ks == {0, 13}  # "k0" (no blur) is one of the per-batch options


def test_two_steps_then_resume_reproduces_next_loss(layout, tmp_path, monkeypatch):
    root, weights = layout
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(weights))
    # 2 of the 4 images are held out for validation -> 1 step per epoch with batch 2
    full = train("sappgan", root, tmp_path / "full", config=TINY, epochs=2, batch_size=2, progress=False)
    assert full.epochs_done == 2 and full.steps == 2
    half = train("sappgan", root, tmp_path / "half", config=TINY, epochs=1, batch_size=2, progress=False)
    assert half.steps == 1
    ck = ckpt_io.load(tmp_path / "half" / "checkpoints" / "last.pth")
    assert ck["epoch"] == 1 and ck["optimizers"]["generator"]["state"] and "numpy" in ck["rng"]
    assert ck["schedulers"]["generator"]["last_epoch"] == 1
    with pytest.raises(UsageError, match="--resume"):
        train("sappgan", root, tmp_path / "half", config=TINY, epochs=2, batch_size=2, progress=False)
    resumed = train("sappgan", root, tmp_path / "half", epochs=2, resume=True, progress=False)
    assert resumed.epochs_done == 2
    a, b = _rows(tmp_path / "full" / "steps.csv"), _rows(tmp_path / "half" / "steps.csv")
    assert len(a) == len(b) == 2
    for key in ("g_total", "g_pixel", "g_feat", "g_adv", "d_enc", "d_dec", "alpha", "kernel"):
        assert a[1][key] == b[1][key], key
    assert float(a[1]["alpha"]) == 0.5 and float(a[0]["alpha"]) == 1.0  # C2F over 2 epochs
    ga = ckpt_io.load(tmp_path / "full" / "checkpoints" / "last.pth")["modules"]["generator"]
    gb = ckpt_io.load(tmp_path / "half" / "checkpoints" / "last.pth")["modules"]["generator"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    log = _rows(tmp_path / "full" / "log.csv")
    assert [r["epoch"] for r in log] == ["0", "1"]
    assert float(log[1]["lr_generator"]) == pytest.approx(1e-4 * 0.99)
    assert np.isfinite(float(log[1]["val_psnr"])) and 0 < float(log[1]["val_ssim"]) < 1
    assert json.loads((tmp_path / "full" / "config.json").read_text())["model"]["discriminator"]["n_classes"] == 19
    assert (tmp_path / "full" / "samples" / "epoch_0001.png").is_file()


def test_dfpg_step_uses_prior_and_channel_attention(layout, tmp_path, monkeypatch):
    root, weights = layout
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(weights))
    res = train("dfpg", root, tmp_path / "d", config=TINY_DFPG, epochs=1, batch_size=2, progress=False)
    row = res.history[0]
    for key in ("g_pixel", "g_prior", "g_adv", "d_loss"):
        assert np.isfinite(row[key]), key
    assert row["lr_discriminator"] == pytest.approx(1e-5)
    ck = ckpt_io.load(tmp_path / "d" / "checkpoints" / "last.pth")
    assert any(k.startswith("ca.0.") for k in ck["modules"]["discriminator"])
    assert ck["trainer"] == ck["method"] == "dfpg" and ck["preset"] == "B6"


def test_missing_vgg_weights_name_the_file(layout, tmp_path, monkeypatch):
    root, _ = layout
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(tmp_path / "empty"))
    from faceblur_bench.errors import WeightsMissingError

    with pytest.raises(WeightsMissingError, match="VGGFace16.pth"):
        train("sappgan", root, tmp_path / "x", config=TINY, epochs=1, batch_size=2, progress=False)


def test_csv_log_widens_its_header_when_a_stage_adds_losses(tmp_path):
    """Losses differ between stages: a new key widens the header, old rows keep their columns."""
    from types import SimpleNamespace

    from faceblur_bench.train.loop import Trainer

    fake = SimpleNamespace(out=tmp_path)
    Trainer._append_csv(fake, "steps.csv", {"step": 1, "l_c": 0.5})
    Trainer._append_csv(fake, "steps.csv", {"step": 2, "l_c": 0.4, "l_s": 0.3})
    Trainer._append_csv(fake, "steps.csv", {"step": 3, "l_s": 0.2})
    rows = _rows(tmp_path / "steps.csv")
    assert list(rows[0]) == ["step", "l_c", "l_s"]
    assert [(r["step"], r["l_c"], r["l_s"]) for r in rows] == [("1", "0.5", ""), ("2", "0.4", "0.3"), ("3", "", "0.2")]
