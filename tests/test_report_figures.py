"""Qualitative figure grid and plots, from a small on-disk Shen-layout split and runs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceblur_bench.errors import UsageError
from faceblur_bench.report import plots, store
from faceblur_bench.report.figures import qualitative_figure
from test_report_helpers import row, write_run

IDS = ["img1_ker01_blur_k13", "img1_ker01_blur_k15", "img2_ker01_blur_k13"]


def _png(path, value: int, size: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    a = np.clip(rng.normal(value, 10, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(path)


@pytest.fixture()
def setup(tmp_path):
    data = tmp_path / "data"
    top = data / "Test_data_Helen"
    for img in ("img1", "img2"):
        _png(top / "final_Helen_gt" / f"{img}.png", 200)
    for i in IDS:
        _png(top / "final_Helen_blur" / f"{i}.png", 100)
    results = tmp_path / "results"
    rows = [row(IDS[0], {"psnr": 20.0}, kernel_size=13), row(IDS[1], {"psnr": 24.0}, kernel_size=15),
            row(IDS[2], {"psnr": 22.0}, kernel_size=13)]
    for m, v in (("m1", 60), ("m2", 160)):
        d = write_run(results, m, "shen-helen", {"psnr": 22.0},
                      rows=[dict(r, metrics={"psnr": r["metrics"]["psnr"] + (v == 160)})
                            for r in rows])
        for i in IDS:
            _png(d / "images" / f"{i}.png", v)
    return data, results


def test_figure_grid(setup, tmp_path):
    data, results = setup
    out = qualitative_figure("shen-helen", ["m1", "m2"], tmp_path / "f.png", results_dir=results,
                             data_root=data, max_images=2, dpi=50)
    im = np.asarray(Image.open(out).convert("RGB"))
    # 4 columns (input, m1, m2, GT) x 2 rows of 2-inch panels at 50 dpi
    assert im.shape[:2] == (2 * 2 * 50, 4 * 2 * 50)
    z = qualitative_figure("shen-helen", ["m1"], tmp_path / "z.png", results_dir=results,
                           data_root=data, ids=[IDS[2]], zoom=(10, 10, 30, 20), dpi=50)
    zi = np.asarray(Image.open(z).convert("RGB")).astype(int)
    assert zi.shape[:2] == (2 * 2 * 50, 3 * 2 * 50)  # image row + zoom row
    red = (zi[..., 0] > 200) & (zi[..., 1] < 60) & (zi[..., 2] < 60)
    assert red.sum() > 20  # the zoom box is drawn


def test_figure_errors(setup, tmp_path):
    data, results = setup
    with pytest.raises(UsageError, match="no run of 'm3'"):
        qualitative_figure("shen-helen", ["m3"], tmp_path / "f.png", results_dir=results,
                           data_root=data)
    with pytest.raises(UsageError, match="unknown sample id"):
        qualitative_figure("shen-helen", ["m1"], tmp_path / "f.png", results_dir=results,
                           data_root=data, ids=["nope"])
    with pytest.raises(UsageError, match="outside the 128x128 image"):
        qualitative_figure("shen-helen", ["m1"], tmp_path / "f.png", results_dir=results,
                           data_root=data, ids=[IDS[0]], zoom=(100, 100, 50, 50))
    import shutil

    for d in (results / "runs" / "shen-helen" / "m1").glob("*/images"):
        shutil.rmtree(d)
    with pytest.raises(UsageError, match="has no saved images"):
        qualitative_figure("shen-helen", ["m1"], tmp_path / "f.png", results_dir=results,
                           data_root=data)


def test_plots(setup, tmp_path):
    _, results = setup
    summaries = store.load_summaries(results)
    series = plots.kernel_size_series(summaries, "psnr")
    assert series == {"m1": {13: 21.0, 15: 24.0}, "m2": {13: 22.0, 15: 25.0}}
    out = plots.metric_vs_kernel_size(summaries, "psnr", tmp_path / "k.png")
    assert Image.open(out).size[0] > 300
    out = plots.metric_distribution(summaries, "psnr", tmp_path / "d.png")
    assert Image.open(out).format == "PNG"
    with pytest.raises(UsageError, match="no per-image 'lpips' values"):
        plots.metric_distribution(summaries, "lpips", tmp_path / "x.png")
