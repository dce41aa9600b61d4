"""Runs on a split without ground truth (lai-real layout): the table and the leaderboard put
them under their own heading without the not-applicable reference columns, and the figure
writes each panel's no-reference scores under it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from faceblur_bench import engine
from faceblur_bench.methods.base import Method
from faceblur_bench.report.figures import _image_scores, _score_text, qualitative_figure
from faceblur_bench.report.leaderboard import REAL_BLUR_TITLE, build_leaderboard
from faceblur_bench.report.tables import NO_REFERENCE_HEADING
from test_report_helpers import write_lai_real


class Unsharp(Method):
    """Unsharp masking (3x3 box): a real, if crude, restoration for the runs below."""

    name = "unsharp"

    def restore(self, blurred, meta=None):
        k = torch.full((3, 1, 3, 3), 1 / 9.0, device=blurred.device)
        low = F.conv2d(F.pad(blurred, (1, 1, 1, 1), mode="replicate"), k, groups=3)
        return (blurred + 1.5 * (blurred - low)).clamp(0, 1)


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """lai-real (partial: 'face' and 'face2') runs of blurred and unsharp, images saved."""
    root = tmp_path_factory.mktemp("real")
    write_lai_real(root / "data" / "lai-real")
    results = root / "results"
    for method in ("blurred", Unsharp()):
        engine.evaluate(engine.RunConfig(
            method=method, split="lai-real", data_root=root / "data", results_dir=results,
            metrics=["psnr", "ssim", "detection-rate"], allow_partial=True, save_images=True,
            device="cpu"))
    return root / "data", results


def test_table_and_leaderboard_put_real_blur_under_its_own_heading(real_runs, tmp_path, monkeypatch, capsys):
    import sys

    from faceblur_bench.cli import main

    _, results = real_runs
    monkeypatch.setattr(sys, "argv", ["faceblur-bench", "table", "--split", "lai-real", "--results",
                                      str(results)])
    with pytest.raises(SystemExit) as ex:
        main()
    out = capsys.readouterr().out
    assert ex.value.code in (0, None)
    assert f"lai-real — {NO_REFERENCE_HEADING}" in out
    header = next(line for line in out.splitlines() if line.startswith("| Method"))
    assert "Det. rate" in header and "PSNR" not in header and "SSIM" not in header
    assert "not applicable without ground truth (left out): psnr, ssim" in out

    text = build_leaderboard(results, include_published=False)
    assert text.index(f"# {REAL_BLUR_TITLE}") < text.index("## lai-real")
    sec = text.split("## lai-real")[1]
    assert "unsharp" in sec and "| PSNR" not in sec


def test_figure_writes_no_reference_scores_under_each_panel(real_runs, tmp_path):
    data, results = real_runs
    run_dirs = {p.parent.parent.name: p.parent for p in results.glob("runs/lai-real/*/*/summary.json")}
    scores = _image_scores(run_dirs["unsharp"], None)
    assert set(scores) == {"face", "face2"}
    assert set(scores["face"]) == {"detection-rate"}  # psnr/ssim need a reference: never shown
    assert _score_text(scores["face"], ["detection-rate"]) == f"Det. rate {scores['face']['detection-rate']:.3g}↑"
    kw = {"results_dir": results, "data_root": data, "dpi": 50}
    with_scores = qualitative_figure("lai-real", ["unsharp"], tmp_path / "a.png", **kw)
    without = qualitative_figure("lai-real", ["unsharp"], tmp_path / "b.png", scores=False, **kw)
    a = np.asarray(Image.open(with_scores).convert("L")).astype(int)
    b = np.asarray(Image.open(without).convert("L")).astype(int)
    # input | unsharp (no ground-truth column): 2 rows of 2-inch panels + 0.3 inch of caption each,
    # plus 1 inch for the horizontal row labels
    assert a.shape == b.shape == (round(2 * 2.3 * 50), (2 * 2 + 1) * 50)
    assert (np.abs(a - b) > 60).sum() > 30  # the score text is drawn


def test_cli_figure_and_run_table_on_real_blur(real_runs, tmp_path, monkeypatch, capsys):
    import sys

    from faceblur_bench.cli import main
    from faceblur_bench.report.leaderboard import publish_split
    from faceblur_bench.report.store import load_summaries

    data, results = real_runs
    out = tmp_path / "fig.png"
    monkeypatch.setattr(sys, "argv", ["faceblur-bench", "figure", "--split", "lai-real", "-m", "unsharp",
                                      "--results", str(results), "--data-root", str(data), "-o", str(out),
                                      "--score-metrics", "detection-rate"])
    with pytest.raises(SystemExit) as ex:
        main()
    assert ex.value.code in (0, None) and out.is_file()
    md = publish_split("lai-real", results, tmp_path / "lb.md", fallback=load_summaries(results, split="lai-real"))
    assert NO_REFERENCE_HEADING in md and "PSNR" not in md.split("\n\n")[1]
