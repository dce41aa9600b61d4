"""``yun`` on a tiny ``celebahq-sr8`` tree: 32x32 in, 256x256 scored; Yun's notebook PSNR/SSIM;
the yun-t1 layout. Weights are random (format-faithful notebook file): no number is reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceblur_bench import engine
from faceblur_bench.imageio import read_image, write_png
from faceblur_bench.methods.yun import checkpoint as nb
from faceblur_bench.methods.yun.networks import YunGenerator, YunGeneratorConfig
from faceblur_bench.metrics.pixel import PSNR
from faceblur_bench.metrics.pixel_yun import psnr_yun, ssim_yun
from faceblur_bench.report.layouts import build_layout, get_layout
from faceblur_bench.report.render import render


def write_sr8_tree(root, n: int = 3, seed: int = 0):
    """``<root>/celebahq-sr8/{valx8/NNNN.png (32x32), val_GT/NNNN.jpg (256x256)}``: smooth faces-like
    gradients, the LR image a box-downsampled GT (the split's layout; values are arbitrary)."""
    rng = np.random.default_rng(seed)
    top = root / "celebahq-sr8"
    (top / "valx8").mkdir(parents=True)
    (top / "val_GT").mkdir(parents=True)
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    for i in range(n):
        a, b, c = rng.uniform(0.2, 0.8, 3)
        gt = np.stack([a * xx + (1 - a) * yy, b * yy, c * (1 - xx)], -1)
        gt = np.clip(gt + rng.normal(0, 0.03, gt.shape), 0, 1)
        gt8 = (gt * 255).round().astype(np.uint8)
        Image.fromarray(gt8).save(top / "val_GT" / f"{i:04d}.jpg", quality=95)
        lr = gt.reshape(32, 8, 32, 8, 3).mean((1, 3))
        write_png(top / "valx8" / f"{i:04d}.png", (lr * 255).round().astype(np.uint8))
    return root


@pytest.fixture
def sr8_root(tmp_path):
    return write_sr8_tree(tmp_path / "data")


@pytest.fixture
def notebook_ckpt(tmp_path):
    torch.manual_seed(0)
    return nb.save_notebook_state(YunGenerator(YunGeneratorConfig(ngf=4, upscale_width=4)),
                                  tmp_path / "generator-551.pkl", data_parallel=True)


def test_notebook_psnr_ssim_match_skimage_directly():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (2, 3, 40, 36)).astype(np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-40, 40, gt.shape), 5, 240).astype(np.uint8)
    a, b = torch.from_numpy(pred).double() / 255, torch.from_numpy(gt).double() / 255
    p, s = psnr_yun(a, b).numpy(), ssim_yun(a, b).numpy()
    for i in range(2):
        P, G = pred[i].transpose(1, 2, 0) / 255.0, gt[i].transpose(1, 2, 0) / 255.0
        dr = P.max() - P.min()
        assert p[i] == pytest.approx(peak_signal_noise_ratio(G, P, data_range=dr), abs=1e-9)
        assert s[i] == pytest.approx(structural_similarity(G, P, data_range=dr, channel_axis=2), abs=1e-9)
        # the range of the prediction (235/255 here) is below 1, so the value is below standard PSNR
        assert p[i] < peak_signal_noise_ratio(gt[i], pred[i], data_range=255)
    flat = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
    assert np.isnan(psnr_yun(flat, b[:1, :, :8, :8]).item())


def test_run_yun_on_celebahq_sr8_scores_256_outputs(tmp_path, sr8_root, notebook_ckpt, monkeypatch):
    # a metric that needs the same-size blurred input is "not applicable" for x8, not an error
    monkeypatch.setattr(PSNR, "needs_blurred", True, raising=False)
    # a release of these 3 faces: the run counts as on the official layout and counts (issue
    # 12.3), so the yun-t1 layout below places it beside the paper's row
    from faceblur_bench.data.sr import CelebAHQSR8

    monkeypatch.setattr(CelebAHQSR8, "EXPECTED_IMAGES", 3)
    cfg = engine.RunConfig(method="yun", split="celebahq-sr8", data_root=sr8_root,
                           metrics=("psnr", "ssim", "psnr-yun", "ssim-yun"), results_dir=tmp_path / "res",
                           device="cpu", batch_size=2, checkpoint=notebook_ckpt, allow_partial=True,
                           save_images=True)
    s = engine.evaluate(cfg)
    assert s["counts"] == {"total": 3, "done": 3, "ok": 3, "failed": 0}
    assert s["data_origin"]["kind"] == "official", s["data_origin"]
    assert s["metrics"]["psnr"]["status"] == "not-applicable"
    assert "x8" in s["metrics"]["psnr"]["reason"]
    assert s["num_parameters"] == sum(p.numel() for p in YunGenerator(YunGeneratorConfig(4, 4)).parameters())
    # calibrate the harness's notebook metrics on the saved 256x256 outputs directly
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rows = [json.loads(line) for line in Path(s["run_dir"], "rows.jsonl").read_text().splitlines()]
    gt_dir = sr8_root / "celebahq-sr8" / "val_GT"
    for r in rows:
        out = read_image(f"{s['run_dir']}/images/{r['id']}.png")
        assert out.shape == (256, 256, 3)
        P, G = out / 255.0, read_image(gt_dir / f"{r['id']}.jpg") / 255.0
        dr = P.max() - P.min()
        assert r["metrics"]["psnr-yun"] == pytest.approx(peak_signal_noise_ratio(G, P, data_range=dr), abs=1e-6)
        assert r["metrics"]["ssim-yun"] == pytest.approx(
            structural_similarity(G, P, data_range=dr, channel_axis=2), abs=1e-6)
        assert np.isclose(r["metrics"]["ssim"], structural_similarity(
            G * 255, P * 255, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False), atol=1e-6)

    # yun-t1: the reproduced column sits beside the published "Ours", on the notebook protocol
    s["_run_dir"] = s["run_dir"]
    (table,) = build_layout(get_layout("yun-t1"), [s])
    labels = [row.label for row in table.rows]
    assert "Ours" in labels and "yun" in labels
    rep = next(row for row in table.rows if row.label == "yun")
    assert rep.cells["psnr"].value == pytest.approx(s["metrics"]["psnr-yun"]["value"])
    assert rep.cells["ssim"].value == pytest.approx(s["metrics"]["ssim-yun"]["value"])
    text = render(table, "md")
    assert "27.75" in text and "psnr-yun" in text
