"""summary_table rendering (Markdown / LaTeX / CSV), ties, missing cells, footnotes; leaderboard."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from faceblur_bench.report import store
from faceblur_bench.report.leaderboard import write_leaderboard
from faceblur_bench.report.render import Cell, Column, Row, Table, marks
from faceblur_bench.report.tables import summary_table
from test_report_helpers import metric_entry, row, write_run


def _summaries(tmp_path: Path) -> list[dict]:
    write_run(tmp_path, "alpha", "mspl-center/ffhq", {"psnr": 25.0, "ssim": 0.9, "lpips": 0.20})
    write_run(tmp_path, "beta", "mspl-center/ffhq", {"psnr": 27.004, "ssim": 0.8, "lpips": 0.20})
    write_run(tmp_path, "gamma", "mspl-center/ffhq", {
        "psnr": 27.001, "ssim": 0.85,
        "lpips": metric_entry("lpips", None, None, status="unavailable",
                              reason="weights missing: alexnet-owt-7be5be79.pth")}, failed=1)
    return store.load_summaries(tmp_path)


def test_markdown_ties_missing_and_footnotes(tmp_path):
    text = summary_table(_summaries(tmp_path), significance=False)  # the value rules
    lines = text.splitlines()
    assert lines[0] == "| Method | PSNR ↑ | SSIM ↑ | LPIPS ↓ | failed |"
    assert lines[1] == "|---|---:|---:|---:|---:|"
    # gamma failed one image: its means are over 3 of 4 images, shown as such and never
    # ranked against the means over all 4 (it would tie for best PSNR); LPIPS ties -> both bold
    assert lines[2] == "| alpha | <u>25.00 (4/4)</u> | **0.9000 (4/4)** | **0.2000** | 0/4 |"
    assert lines[3] == "| beta | **27.00 (4/4)** | <u>0.8000 (4/4)</u> | **0.2000** | 0/4 |"
    assert lines[4] == "| gamma | 27.00 (3/4) | 0.8500 (3/4) | – (a) | 1/4 |"
    assert any(ln.startswith("PSNR: rows were scored on different images") for ln in lines)
    assert "- (a) n/a — weights missing: alexnet-owt-7be5be79.pth" in lines
    assert "- PSNR ↑: uint8 RGB, peak 255, mean over images" in lines
    assert "- LPIPS ↓: AlexNet v0.1 on \\[-1,1\\]" in lines  # Markdown-escaped: renders [-1,1]
    assert any("gamma: 1 of 4 images failed (MethodOutputError: NaN in output ×1)" in ln
               for ln in lines)


def test_latex_rendering(tmp_path):
    text = summary_table(_summaries(tmp_path), metrics=["psnr", "lpips"], fmt="latex", significance=False)
    assert "\\begin{tabular}{lrrr}" in text
    assert "Method & PSNR $\\uparrow$ & LPIPS $\\downarrow$ & failed \\\\" in text
    assert "alpha & \\underline{25.00 (4/4)} & \\textbf{0.2000} & 0/4 \\\\" in text
    assert "gamma & 27.00 (3/4) & --$^{\\mathrm{a}}$ & 1/4 \\\\" in text
    assert "$^{\\mathrm{a}}$ n/a --- weights missing: alexnet-owt-7be5be79.pth" in text
    assert "\\cmidrule" not in text  # no column groups


def test_csv_and_std(tmp_path):
    text = summary_table(_summaries(tmp_path), metrics=["psnr"], fmt="csv", show_std=True, significance=False)
    recs = list(csv.reader(io.StringIO(text)))
    assert recs[0] == ["Method", "PSNR", "PSNR_std", "failed"]
    assert recs[1] == ["alpha", "25.0", "0.5", "0/4"]
    assert recs[2][1] == "27.004"
    md = summary_table(_summaries(tmp_path), metrics=["psnr"], show_std=True, significance=False)
    assert "| alpha | <u>25.00 ± 0.50 (4/4)</u> |" in md


def test_no_failed_column_and_single_row_unmarked(tmp_path):
    write_run(tmp_path, "solo", "demo", {"psnr": 30.0})
    text = summary_table(store.load_summaries(tmp_path))
    assert text.splitlines()[0] == "| Method | PSNR ↑ |"
    assert "| solo | 30.00 |" in text  # one value: nothing to compare, no marks


def test_marks_second_tie_and_unranked_rows():
    col = Column("m", "M", higher_is_better=False, decimals=1)
    rows = [Row("gt", {"m": Cell(0.0)}, ranked=False), Row("a", {"m": Cell(1.0)}),
            Row("b", {"m": Cell(2.0)}), Row("c", {"m": Cell(2.04)}), Row("d", {"m": Cell(3.0)})]
    mk = marks(Table("t", [col], rows))
    assert mk == {(1, "m"): "best", (2, "m"): "second", (3, "m"): "second"}


def test_duplicate_methods_disambiguated(tmp_path):
    write_run(tmp_path, "alpha", "demo", {"psnr": 20.0}, run_key="r1")
    write_run(tmp_path, "alpha", "demo", {"psnr": 21.0}, run_key="r2")
    text = summary_table(store.load_summaries(tmp_path))
    assert "| alpha \\[r1\\] |" in text and "| alpha \\[r2\\] |" in text


def test_incomplete_run_flagged(tmp_path):
    write_run(tmp_path, "alpha", "demo", {"psnr": 20.0}, complete=False, failed=0, total=4)
    text = summary_table(store.load_summaries(tmp_path))
    assert "| alpha † (3/4) |" in text
    assert "† alpha † (3/4): unfinished run: 3 of 4 images scored; not ranked" in text


def test_unknown_format_is_usage_error(tmp_path):
    from faceblur_bench.errors import UsageError

    with pytest.raises(UsageError, match="unknown table format 'rst'"):
        summary_table(_summaries(tmp_path), fmt="rst")  # type: ignore[arg-type]


def test_rows_reader_ignores_truncated_last_line(tmp_path):
    d = write_run(tmp_path, "alpha", "demo", {"psnr": 20.0},
                  rows=[row("a", {"psnr": 20.0}), row("b", {"psnr": float("nan")})])
    with (d / "rows.jsonl").open("a") as fh:
        fh.write('{"id": "c", "status": "ok", "metr')
    rows = store.read_rows(d)
    assert [r["id"] for r in rows] == ["a", "b"]
    df = store.rows_frame(d)
    assert df["metric:psnr"].isna().tolist() == [False, True]
    # a corrupt line in the middle is not data either (the engine re-scores that image)
    lines = (d / "rows.jsonl").read_text().splitlines()
    (d / "rows.jsonl").write_text("\n".join([lines[0], "{oops", lines[1]]) + "\n")
    assert [r["id"] for r in store.read_rows(d)] == ["a", "b"]


def test_leaderboard_sections_protocols_provenance(tmp_path):
    write_run(tmp_path, "alpha", "mspl-center/ffhq", {"psnr": 25.0, "ssim": 0.9},
              date="2024-05-01T12:00:00", device="cuda:0")
    write_run(tmp_path, "beta", "shen-helen", {"psnr": 24.0}, date="2024-06-02T08:00:00")
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / "x.csv").write_text(
        "paper,table,row,method,harness_method,split,subset,scope,kernel_size,n_frames,group,"
        "metric,protocol_id,protocol,value,std,arrow,note\n"
        "sappgan,1,1,MSPL-GAN,,mspl-center,ffhq,main,,,,psnr,matlab-rgb,MATLAB psnr,26.10,,↑,\n"
        "sappgan,1,1,MSPL-GAN,,mspl-center,ffhq,main,,,,ssim,matlab-rgb-volume,MATLAB ssim,"
        "0.9011,,↑,\n"
        "sappgan,3,1,S0,,mspl-center,ffhq,ablation,,,,psnr,matlab-rgb,MATLAB psnr,27.0,,↑,\n")
    import os

    os.environ["FACEBLUR_PUBLISHED"] = str(pub)
    try:
        from faceblur_bench.report import published

        published._load_cached.cache_clear()
        text = write_leaderboard(tmp_path, tmp_path / "leaderboard.md")
    finally:
        del os.environ["FACEBLUR_PUBLISHED"]
    assert (tmp_path / "leaderboard.md").read_text() == text
    assert text.index("## mspl-center/ffhq") < text.index("## shen-helen")
    sec = text.split("## mspl-center/ffhq")[1].split("## shen-helen")[0]
    assert "| Method | PSNR ↑ | SSIM ↑ | Source |" in sec
    # published PSNR goes in the psnr column; its MATLAB-volume SSIM does not match the harness
    # SSIM protocol, so that cell stays empty with a reason
    assert "| MSPL-GAN | **26.10** | – (a) | reported, SAPPGAN (Han et al. 2023), Table 1 |" in sec
    # the leaderboard shows each stored value's 95 % interval (rows all equal: a point interval)
    assert "| alpha | <u>25.00 \\[25.00, 25.00\\]</u> | 0.9000 \\[0.9000, 0.9000\\] | reproduced |" in sec
    assert "S0" not in sec  # ablation rows stay out of the leaderboard
    assert "- PSNR ↑: uint8 RGB, peak 255, mean over images" in sec
    assert "| alpha | k1 | 0.1.0 | 2024-05-01T12:00:00 | cuda:0 | 4/4 | – |" in sec
    assert "2024-06-02T08:00:00" in text.split("## shen-helen")[1]


def test_load_summary_errors(tmp_path):
    with pytest.raises(store.ResultsInputError, match="no summary.json"):
        store.load_summary(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(store.ResultsInputError, match="not valid JSON"):
        store.load_summary(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(store.ResultsInputError, match="not a run summary"):
        store.load_summary(tmp_path)


def test_latest_runs_keeps_one_run_per_method(tmp_path):
    write_run(tmp_path, "alpha", "demo", {"psnr": 20.0}, run_key="old", date="2024-01-01T00:00:00")
    write_run(tmp_path, "alpha", "demo", {"psnr": 21.0}, run_key="new", date="2024-02-01T00:00:00")
    write_run(tmp_path, "alpha", "demo", {"psnr": 22.0}, run_key="newest-incomplete", complete=False,
              date="2024-03-01T00:00:00")
    write_run(tmp_path, "beta", "demo", {"psnr": 19.0}, run_key="b")
    runs = store.latest_runs(store.load_summaries(tmp_path))
    by = {r["method"]: r["metrics"]["psnr"]["value"] for r in runs}
    assert by == {"alpha": 21.0, "beta": 19.0}


def test_failure_reasons_are_shortened_at_word_boundaries():
    from faceblur_bench.report.tables import short_reason, summary_rows

    path = "/data/restored/" + "a" * 60 + "/img_0001_ker01_blur_k13_out.png"
    reason = f"no restoration for img_0001_ker01_blur_k13: expected {path}"
    assert short_reason(reason) == reason  # fits: whole, path included
    long = "ImageError: cannot decode the restored image " + " ".join(["word"] * 40) + " " + path
    short = short_reason(long)
    assert short.endswith(" …") and len(short) <= 162 and short[:-2] in long
    assert path not in short and "/data/rest" not in short  # no path cut in half
    assert short_reason("x" * 300) == "x" * 300  # one long word stays whole
    s = {"method": "m", "split": "demo", "counts": {"total": 2, "ok": 1, "failed": 1},
         "failures": [{"id": "a", "reason": reason}], "metrics": {}}
    _, notes, _ = summary_rows([s], [])
    assert any(path in n for n in notes)
