"""Issue 23: nothing misleads — partial runs never win, summaries are never trusted over rows.

Each test here fails on the code before the issue: a partial/limited/subset run was marked best,
a forged summary value was printed, an Infinity typed into a row was not reflected, values
scored on different images were ranked against each other."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from test_report_helpers import metric_entry, row, write_run

from faceblur_bench.aggregates import summary_digest
from faceblur_bench.errors import ResultsWarning
from faceblur_bench.report import coverage, store
from faceblur_bench.report.tables import split_table, summary_table


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, allow_nan=True))


def _table_lines(results: Path, **kw) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResultsWarning)
        runs = store.latest_runs(store.load_summaries(results))
    return split_table(runs, **kw).splitlines()


def test_partial_run_is_labelled_and_never_marked(tmp_path):
    # a complete run on 8 images and an interrupted one (7 of 8) with a better value
    write_run(tmp_path, "wiener", "demo", {"psnr": 24.27}, total=8)
    write_run(tmp_path, "richardson-lucy", "demo", {"psnr": 29.21}, total=8, complete=False)
    lines = _table_lines(tmp_path)
    rl = next(ln for ln in lines if ln.startswith("| richardson-lucy"))
    assert rl == "| richardson-lucy † (7/8) | 29.21 |"
    assert "**" not in "\n".join(lines)  # one complete run: nothing to rank, no marks
    assert not any(ln.startswith("Best in") for ln in lines)  # and no legend for marks
    assert any("unfinished run: 7 of 8 images scored; not ranked" in ln for ln in lines)


def test_limited_run_says_what_it_is_part_of(tmp_path):
    write_run(tmp_path, "wiener", "demo", {"psnr": 24.0}, total=8)
    write_run(tmp_path, "blurred", "demo", {"psnr": 20.0}, total=8)
    d = write_run(tmp_path, "richardson-lucy", "demo", {"psnr": 30.0}, total=2)
    _edit(d / "summary.json", lambda s: s.update(limit=2, partial=True, split_images=8))
    lines = _table_lines(tmp_path)
    assert "| richardson-lucy † (2/8, --limit 2) | 30.00 |" in lines
    assert "| wiener | 24.00 |" in lines  # the only complete restoration: unmarked
    cov = coverage.coverage(store.load_run(d))
    assert (cov.state, cov.rankable) == ("limited", False)


def test_subset_run_is_labelled_and_ranked_only_with_its_subset(tmp_path):
    write_run(tmp_path, "wiener", "demo", {"psnr": 24.0}, total=8)
    write_run(tmp_path, "richardson-lucy", "demo", {"psnr": 25.0}, total=8)
    write_run(tmp_path, "unsharp", "demo/insightface", {"psnr": 40.0}, total=2)
    lines = _table_lines(tmp_path)
    sub = next(ln for ln in lines if ln.startswith("| unsharp"))
    assert "(demo/insightface)" in sub and "subset insightface, 2 images" in sub and "**" not in sub
    assert any(ln.startswith("| richardson-lucy (demo) | **25.00") for ln in lines)


def test_forged_summary_value_is_never_shown(tmp_path):
    d = write_run(tmp_path, "wiener", "demo", {"psnr": 24.0, "ssim": 0.7}, total=4)
    write_run(tmp_path, "blurred", "demo", {"psnr": 20.0, "ssim": 0.6}, total=4)
    _edit(d / "summary.json", lambda s: s["metrics"]["psnr"].update(value=99.0))
    with pytest.warns(ResultsWarning, match=r"psnr is 99\.0 over 4 image\(s\), the rows give 24\.0"):
        run = store.load_run(d)
    assert run.metrics["psnr"].value == pytest.approx(24.0)
    assert not coverage.rankable(run)
    text = "\n".join(_table_lines(tmp_path))
    assert "99.00" not in text and "| wiener † (unverified) | 24.00 | 0.7000 |" in text


def test_infinity_typed_into_a_row_gets_the_rule_of_a_computed_one(tmp_path):
    d = write_run(tmp_path, "wiener", "demo", {"psnr": 24.0}, total=4)
    lines = (d / "rows.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["metrics"]["psnr"] = float("inf")
    (d / "rows.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    with pytest.warns(ResultsWarning):
        run = store.load_run(d)
    entry = run.metrics["psnr"]
    assert (entry.value, entry.count, entry.extra["infinite"]) == (24.0, 3, 1)
    assert "24.00 (1×∞)" in "\n".join(_table_lines(tmp_path))


def test_sealed_summary_withholds_set_values_its_rows_cannot_confirm(tmp_path):
    d = write_run(tmp_path, "wiener", "demo",
                  {"psnr": 24.0, "fid": {**metric_entry("fid", 12.5), "kind": "set"}}, total=4)
    rows = store.read_rows(d)
    _edit(d / "summary.json", lambda s: s.update(digest=summary_digest(s, rows)))
    assert store.load_run(d).metrics["fid"].value == 12.5  # sealed and matching: shown
    lines = (d / "rows.jsonl").read_text().splitlines()  # a row edited by hand
    lines[0] = json.dumps(row("img0", {"psnr": 20.0}))
    (d / "rows.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.warns(ResultsWarning, match="does not match rows.jsonl"):
        run = store.load_run(d)
    assert run.metrics["fid"].value is None and run.metrics["fid"].reason == store.WITHHELD
    assert run.metrics["psnr"].value == pytest.approx(23.0) and run.metrics["psnr"].count == 4
    assert not coverage.rankable(run)


def test_values_on_different_images_show_counts_and_rank_only_full_ones(tmp_path):
    nan = float("nan")
    full = [row(f"i{k}", {"idc": 0.4}) for k in range(4)]
    write_run(tmp_path, "richardson-lucy", "demo", {"idc": 0.4}, rows=full)
    write_run(tmp_path, "wiener", "demo", {"idc": 0.1},
              rows=[row("i0", {"idc": nan}), *[row(f"i{k}", {"idc": 0.1}) for k in (1, 2, 3)]])
    write_run(tmp_path, "other", "demo", {"idc": 0.5}, rows=[row(f"i{k}", {"idc": 0.5}) for k in range(4)])
    text = summary_table(store.load_summaries(tmp_path))
    assert "| wiener | 0.1000 (3/4) |" in text  # the best number, on fewer images: not marked
    # 4 units cannot make a difference significant: the two full rows tie under the default marks
    assert "| other | **0.5000 (4/4)** |" in text and "| richardson-lucy | **0.4000 (4/4)** |" in text
    text = summary_table(store.load_summaries(tmp_path), significance=False)
    assert "| wiener | 0.1000 (3/4) |" in text
    assert "| other | **0.5000 (4/4)** |" in text and "| richardson-lucy | <u>0.4000 (4/4)</u> |" in text
    assert "idc: rows were scored on different images" in text


def test_noop_run_rebuilds_a_forged_summary(tmp_path, demo_data_root, capsys):
    from cli_helpers import main_inprocess as cli

    out = tmp_path / "res"
    args = ["run", "-m", "blurred", "--limit", "3", "--metrics", "psnr", "--out", str(out)]
    code, stdout, err = cli(args, capsys)
    assert code == 0, err
    (path,) = out.glob("runs/demo/blurred/*/summary.json")
    true = json.loads(path.read_text())
    assert len(true["digest"]) == 64 and true["split_images"] == 72
    assert "| blurred † (3/72, --limit 3) |" in stdout  # a limited run says so in its row
    _edit(path, lambda s: s["metrics"]["psnr"].update(value=99.0))
    code, stdout, err = cli(args, capsys)
    assert code == 0, err
    assert "99.00" not in stdout and "99.00" not in (out / "leaderboard.md").read_text()
    assert "summary.json did not match the stored rows: rebuilt from them" in err
    assert "left as it was" not in err
    assert json.loads(path.read_text())["metrics"]["psnr"] == true["metrics"]["psnr"]


# -- the gate (check) ---------------------------------------------------------------------------
def _gate_run(results: Path, method: str, psnr: list[float | None], **kw) -> Path:
    rows = [row(f"img{i}", {"psnr": v}) for i, v in enumerate(psnr)]
    return write_run(results, method, "demo", {"psnr": 0.0}, rows=rows, **kw)


def test_gate_refuses_a_current_without_runs_of_its_own(tmp_path, capsys):
    from cli_helpers import main_inprocess as cli

    x = tmp_path / "x"
    _gate_run(x / "ci-baseline", "wiener", [30.0, 25.0])
    code, _, err = cli(["check", "--baseline", str(x / "ci-baseline"), "--current", str(x)], capsys)
    assert code == 2 and "holds no runs of its own" in err
    code, _, err = cli(["check", "--baseline", str(x), "--current", str(x / "ci-baseline")], capsys)
    assert code == 2 and "is inside the baseline" in err
    code, _, err = cli(["check", "--baseline", str(x), "--current", str(x)], capsys)
    assert code == 2 and "is the baseline" in err


def test_gate_unknown_tolerance_names_and_bad_max_images(tmp_path, capsys):
    from cli_helpers import main_inprocess as cli

    _gate_run(tmp_path / "b", "wiener", [30.0, 25.0])
    _gate_run(tmp_path / "c", "wiener", [30.0, 25.0])
    base = ["check", "--baseline", str(tmp_path / "b"), "--current", str(tmp_path / "c")]
    code, _, err = cli(base + ["-t", "PSNR=100"], capsys)
    assert code == 2 and "unknown --tolerance metric 'PSNR'; did you mean 'psnr'?" in err
    code, _, err = cli(base + ["-t", "nosuch=1"], capsys)
    assert code == 2 and "unknown --tolerance metric 'nosuch'" in err
    code, _, err = cli(base + ["--max-images", "-1"], capsys)
    assert code == 2 and "--max-images" in err
    assert cli(base + ["-t", "psnr=0.5", "-t", "*=1%"], capsys)[0] == 0


def test_gate_pairs_only_the_same_method(tmp_path, capsys):
    from cli_helpers import main_inprocess as cli

    b = _gate_run(tmp_path / "b", "blurred", [20.0, 21.0])
    c = _gate_run(tmp_path / "c", "wiener", [30.0, 25.0])
    code, _, err = cli(["check", "--baseline", str(b), "--current", str(c)], capsys)
    assert code == 2 and "not the same configuration" in err
    assert "baseline is blurred on demo, current is wiener on demo" in err


def test_gate_value_became_null_or_fewer_images_is_a_regression(tmp_path):
    from faceblur_bench.report.check import compare

    _gate_run(tmp_path / "b", "wiener", [30.0, 20.0, 25.0])
    _gate_run(tmp_path / "c", "wiener", [30.0, None, 25.0])  # the hard image lost its score
    res = compare(tmp_path / "b", tmp_path / "c", per_image=False)
    assert [(ch.metric, ch.verdict, ch.reason) for ch in res.changes] == [
        ("psnr", "regression", "scored on fewer images (3 -> 2)")]
    assert res.exit_code == 1 and not res.improvements
    res = compare(tmp_path / "b", tmp_path / "c")
    assert ("img1", "became NaN / missing") in {(ch.image, ch.reason) for ch in res.regressions}


def test_default_methods_are_those_that_can_run_on_the_split(tmp_path, demo_data_root):
    import numpy as np
    from PIL import Image

    from faceblur_bench.engine import default_method_names

    assert default_method_names("demo", demo_data_root) == ["blurred", "richardson-lucy", "wiener"]
    top = tmp_path / "lai-real"  # real blur: no kernels, so no deconvolution with the true kernel
    top.mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(top / "face.png")
    assert default_method_names("lai-real", tmp_path) == ["blurred"]


def test_table_metrics_are_validated(tmp_path, capsys):
    from cli_helpers import main_inprocess as cli

    write_run(tmp_path, "wiener", "demo", {"psnr": 24.0})
    code, _, err = cli(["table", "--split", "demo", "--results", str(tmp_path), "--metrics", "psnr,psnrr"], capsys)
    assert code == 2 and "unknown metric 'psnrr'; did you mean" in err
    code, out, _ = cli(["table", "--split", "demo", "--results", str(tmp_path), "--metrics", "psnr"], capsys)
    assert code == 0 and "| wiener | 24.00 |" in out


def test_footnote_names_the_protocol_a_paper_reported_under(tmp_path):
    from faceblur_bench.report import published

    write_run(tmp_path, "wiener", "mspl-center/celeba", {"psnr": 24.0, "ssim": 0.7})
    pub = published.rows_for_split("mspl-center", "celeba", ["psnr", "ssim"])
    text = split_table(store.load_summaries(tmp_path), published=pub, split="mspl-center/celeba")
    # both papers print SSIM, under MATLAB's volume SSIM: not "not reported", and not in the column
    assert "reported under another protocol in SAPPGAN (Han et al. 2023), Table 1: matlab-rgb-volume" in text
    assert "not reported" not in text


def test_a_truncated_300vw_file_list_is_not_official(tmp_path):
    from test_data_layouts import make_300vw

    from faceblur_bench.data import vw300
    from faceblur_bench.data.base import open_split
    from faceblur_bench.data.origin import split_origin

    make_300vw(tmp_path, {5: [("009", 1)], 7: [("037", 1)]})
    (tmp_path / "300vw" / vw300.FILE_LIST).write_text(
        "009 blur005 000003 000005 000004 000003 000002 000001\n"
        "037 blur007 000004 000002 000001 000003 000004 000007 000006 000005\n")
    split = open_split("300vw/n7", tmp_path)
    origin = split_origin(split, split.samples())
    assert origin["kind"] == "custom"
    assert origin["reason"] == "subset of the release: 1 of 2,677 windows"


def test_plot_and_figure_titles_say_a_run_is_not_complete(tmp_path):
    from faceblur_bench.report.figures import _column_title

    full = write_run(tmp_path, "wiener", "demo", {"psnr": 24.0}, total=4)
    cut = write_run(tmp_path, "richardson-lucy", "demo", {"psnr": 29.0}, total=4, complete=False)
    runs = store.load_summaries(tmp_path)
    assert coverage.title_suffix(runs) == " — not complete: richardson-lucy 3/4"
    assert (_column_title("wiener", full), _column_title("richardson-lucy", cut)) == (
        "wiener", "richardson-lucy (3/4)")
