"""Runs of the shen methods sit beside the published rows of the papers' tables."""

from __future__ import annotations

from test_report_helpers import row, write_run

from faceblur_bench.report import store
from faceblur_bench.report.layouts import build_layout, get_layout, render_layout


def _rows(tables):
    return [(r.label, r.source) for t in tables for r in t.rows]


def test_shen_and_cvpr18_runs_beside_their_published_rows(tmp_path):
    rows = [row("a", {"psnr": 25.0, "ssim": 0.8}, kernel_size=13)]
    write_run(tmp_path, "shen", "shen-helen", {"psnr": 25.0, "ssim": 0.8}, rows=rows)
    write_run(tmp_path, "shen-cvpr18", "shen-helen", {"psnr": 24.0, "ssim": 0.7}, rows=rows,
              run_key="k2")
    summaries = store.load_summaries(tmp_path)
    for name in ("shen-t9", "shen-t10"):
        got = _rows(build_layout(get_layout(name), summaries, split="shen-helen",
                                 methods=["shen"]))
        assert any(lab == "Ours" and src != "reproduced" for lab, src in got)
        assert ("shen", "reproduced") in got
        assert not any(lab == "Shen et al. (2018)" for lab, _ in got)
        got = _rows(build_layout(get_layout(name), summaries, split="shen-helen",
                                 methods=["shen-cvpr18"]))
        labels = [lab for lab, _ in got]
        assert "Shen et al. (2018)" in labels and ("shen-cvpr18", "reproduced") in got
        assert "Ours" not in labels
    text = render_layout(get_layout("shen-t9"), summaries, split="shen-helen")
    # per-kernel cells come from the rows (both runs hold the same one here)
    assert "| shen | 25.00 | 0.8000 |" in text and "| shen-cvpr18 | 25.00 | 0.8000 |" in text
    assert text.index("| Shen et al. (2018) |") < text.index("| shen |")


def test_cvpr18_release_maps_to_the_other_papers_rows(tmp_path):
    write_run(tmp_path, "shen-cvpr18", "shen-celeba", {"psnr": 24.0, "ssim": 0.7})
    got = _rows(build_layout(get_layout("shen-t11"), store.load_summaries(tmp_path),
                             methods=["shen-cvpr18"]))
    assert [lab for lab, _ in got].count("Shen et al. (2018)") == 1
    for layout in ("sappgan-t1", "sappgan-t2"):
        labels = [lab for lab, _ in _rows(build_layout(get_layout(layout), [],
                                                       methods=["shen-cvpr18"]))]
        assert labels and all(lab == "Shen et al. [16]" for lab in labels), (layout, labels)
