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
    # 4 columns (input, m1, m2, GT) of 2 inches + 1 inch for the row labels; 2 rows of 2.3 inches
    # (panel + caption) at 50 dpi
    assert im.shape[:2] == (round(2 * 2.3 * 50), (4 * 2 + 1) * 50)
    z = qualitative_figure("shen-helen", ["m1"], tmp_path / "z.png", results_dir=results,
                           data_root=data, ids=[IDS[2]], zoom=(10, 10, 30, 20), dpi=50)
    zi = np.asarray(Image.open(z).convert("RGB")).astype(int)
    assert zi.shape[:2] == (round(2 * 2.3 * 50), (3 * 2 + 1) * 50)  # image row + zoom row
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


def test_figure_captions_and_row_labels_do_not_overlap(setup, tmp_path, monkeypatch):
    """Each restored panel carries its stored PSNR; long ids are horizontal, wrapped, and stay
    within their row (checked on the drawn figure's text extents)."""
    import matplotlib.figure

    data, results = setup
    write_run(results, "blurred", "shen-helen", {"psnr": 10.0},
              rows=[row(i, {"psnr": 10.5, "ssim": 0.25}) for i in IDS], run_key="kb")
    seen, boxes = [], []
    orig = matplotlib.figure.Figure.savefig

    def keep(self, *a, **kw):  # text extents as laid out, before saving at another dpi
        r = self.canvas.get_renderer()
        for ax in self.axes[::4]:
            boxes.append((ax.yaxis.label.get_window_extent(r), ax.get_window_extent(r)))
        seen.append(self)
        return orig(self, *a, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    qualitative_figure("shen-helen", ["m1", "m2"], tmp_path / "f.png", results_dir=results,
                       data_root=data, ids=[IDS[0], IDS[2]], dpi=50)
    fig = seen[0]
    axes = np.array(fig.axes).reshape(2, 4)
    assert axes[0, 1].get_xlabel() == "PSNR 20.00 dB"  # m1's stored row value for IDS[0]
    assert axes[1, 2].get_xlabel() == "PSNR 23.00 dB"  # m2: 22 + 1
    assert axes[0, 0].get_xlabel() == "PSNR 10.50 dB / SSIM 0.2500"  # the stored blurred run
    assert axes[0, 3].get_xlabel() == ""  # ground truth: no caption
    for k in range(2):
        lab = axes[k, 0].yaxis.label
        assert lab.get_rotation() == 0 and max(len(x) for x in lab.get_text().split("\n")) <= 16
        box, cell = boxes[k]
        assert box.y0 >= cell.y0 - 1 and box.y1 <= cell.y1 + 1 and box.x0 >= 0  # not clipped


def test_plot_axes_name_unit_and_mean_marker(setup, tmp_path, monkeypatch):
    import matplotlib.figure

    _, results = setup
    summaries = store.load_summaries(results)
    assert plots.axis_label("psnr", summaries) == "PSNR (dB), higher is better"
    assert plots.axis_label("lpips") == "LPIPS, lower is better"
    seen = []
    orig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda self, *a, **kw: (seen.append(self), orig(self, *a, **kw))[1])
    plots.metric_distribution(summaries, "psnr", tmp_path / "d.png")
    ax = seen[-1].axes[0]
    assert "(dB)" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["mean", "median"]
    plots.metric_vs_kernel_size(summaries, "psnr", tmp_path / "k.png")
    assert "(dB)" in seen[-1].axes[0].get_ylabel()


def test_figure_finds_saved_images_of_ids_with_a_slash(tmp_path):
    """MSPL and 300VW ids contain '/' ("celeba/img_ker01_blur_k13"): `run --save-images` stores them
    under results.image_path, and `figure` must find them there (it used to look for "<id>.png")."""
    from faceblur_bench.data.synth import make_split
    from faceblur_bench.engine import open_split
    from faceblur_bench.results import image_path

    faces = tmp_path / "faces"
    _png(faces / "face1.png", 150)
    data = tmp_path / "data"
    make_split(faces, "mspl", data, seed=0, subset="celeba")
    split = open_split("mspl-center/celeba", data, allow_partial=True)
    ids = [s.id for s in split.samples()][:2]
    assert all("/" in i for i in ids)
    results = tmp_path / "results"
    d = write_run(results, "m1", "mspl-center/celeba", {"psnr": 22.0},
                  rows=[row(i, {"psnr": 20.0}, kernel_size=13) for i in ids])
    for i in ids:
        _png(image_path(d, i), 90)
    out = qualitative_figure("mspl-center/celeba", ["m1"], tmp_path / "f.png", results_dir=results,
                             data_root=data, dpi=40)
    assert out.is_file() and np.asarray(Image.open(out)).shape[0] > 100
