"""CI gate: exit codes (0 / 1 / 2) and the diff report, through the library and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceblur_bench.errors import UsageError
from faceblur_bench.report.check import Tolerance, compare, parse_tolerances
from test_report_helpers import metric_entry, row, write_run
from cli_helpers import main_inprocess as _cli


def _run(results: Path, psnr: list[float], lpips: list[float], status=None, **kw) -> Path:
    status = status or ["ok"] * len(psnr)
    rows = [row(f"img{i}", {"psnr": p, "lpips": lp}, status=s)
            for i, (p, lp, s) in enumerate(zip(psnr, lpips, status))]
    ok = [i for i, s in enumerate(status) if s == "ok"]
    mean = lambda v: sum(v[i] for i in ok) / len(ok)  # noqa: E731
    return write_run(results, "wiener", "demo", {"psnr": mean(psnr), "lpips": mean(lpips)},
                     rows=rows, total=len(psnr), failed=len(psnr) - len(ok), **kw)




def test_identical_results_pass(tmp_path, capsys):
    b = _run(tmp_path / "base", [30.0, 25.0], [0.1, 0.2])
    c = _run(tmp_path / "cur", [30.0, 25.0], [0.1, 0.2])
    res = compare(b, c)
    assert res.exit_code == 0 and res.compared_runs == 1 and res.compared_images == 2
    code, out, _ = _cli(["check", "--baseline", str(tmp_path / "base"),
                         "--current", str(tmp_path / "cur")], capsys)
    assert code == 0
    assert out.startswith("check: OK — 1 run(s), 2 image(s) compared; 0 regression(s)")


def test_regression_beyond_tolerance_exit_1_with_table(tmp_path, capsys):
    _run(tmp_path / "base", [30.0, 25.0], [0.1, 0.2])
    _run(tmp_path / "cur", [30.0, 24.0], [0.1, 0.2])  # img1 PSNR -1 dB, mean -0.5 dB
    code, out, _ = _cli(["check", "--baseline", str(tmp_path / "base"),
                         "--current", str(tmp_path / "cur"), "--tolerance", "psnr=0.1"], capsys)
    assert code == 1
    assert "check: REGRESSION" in out
    assert "| demo | wiener | psnr | 27.5 | 27 | -0.5 | 0.1 | regression |" in out
    assert "| demo | wiener | img1 | psnr | 25 | 24 | -1 | 0.1 |  |" in out
    # within a looser tolerance: pass; relative tolerance in percent
    code, out, _ = _cli(["check", "--baseline", str(tmp_path / "base"),
                         "--current", str(tmp_path / "cur"), "-t", "psnr=5%"], capsys)
    assert code == 0, out


def test_direction_lower_is_better_and_improvements(tmp_path):
    b = _run(tmp_path / "base", [30.0], [0.20])
    c = _run(tmp_path / "cur", [31.0], [0.25])  # PSNR better, LPIPS worse
    res = compare(b, c, parse_tolerances(["*=abs:0.01"]))
    regs = {(ch.metric, ch.image) for ch in res.regressions}
    assert regs == {("lpips", None), ("lpips", "img0")}
    assert [ch.metric for ch in res.improvements] == ["psnr"]


def test_failed_and_missing_images_and_nan(tmp_path):
    b = _run(tmp_path / "base", [30.0, 25.0, 20.0], [0.1, 0.2, 0.3])
    c = _run(tmp_path / "cur", [30.0, 25.0, float("nan")], [0.1, 0.2, 0.3],
             status=["ok", "failed", "ok"])
    res = compare(b, c)
    reasons = {(ch.image, ch.metric): ch.reason for ch in res.regressions}
    assert reasons[("img1", "(image)")].startswith("failed: boom")
    assert reasons[("img2", "psnr")] == "became NaN / missing"
    assert (None, "(failed images)") in reasons


def test_metric_becomes_unavailable(tmp_path):
    b = write_run(tmp_path / "base", "m", "demo", {"psnr": 30.0, "lpips": 0.1})
    c = write_run(tmp_path / "cur", "m", "demo", {
        "psnr": 30.0, "lpips": metric_entry("lpips", None, None, "unavailable", "weights missing")})
    res = compare(b, c)
    assert [(ch.metric, ch.reason) for ch in res.regressions if ch.image is None] == [
        ("lpips", "status unavailable: weights missing")]
    # and per image: every value the baseline had is missing now
    assert {(ch.image, ch.reason) for ch in res.regressions if ch.image is not None} == {
        (f"img{i}", "became NaN / missing") for i in range(4)}


def test_results_dirs_pair_runs_and_missing_run(tmp_path):
    write_run(tmp_path / "base", "a", "demo", {"psnr": 30.0})
    write_run(tmp_path / "base", "b", "demo", {"psnr": 30.0})
    write_run(tmp_path / "cur", "a", "demo", {"psnr": 30.0}, run_key="other")
    write_run(tmp_path / "cur", "c", "demo", {"psnr": 1.0})
    res = compare(tmp_path / "base", tmp_path / "cur")
    assert [(ch.method, ch.reason) for ch in res.regressions] == [
        ("b", "no current run for this baseline run")]
    assert "run only in current (not gated): c on demo" in res.notes


def test_unusable_input_exit_2(tmp_path, capsys):
    code, _, err = _cli(["check", "--baseline", str(tmp_path / "nope"),
                         "--current", str(tmp_path)], capsys)
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    write_run(tmp_path / "cur", "a", "demo", {"psnr": 30.0})
    code, _, err = _cli(["check", "--baseline", str(tmp_path / "empty"),
                         "--current", str(tmp_path / "cur")], capsys)
    assert code == 2 and "no runs" in err
    code, _, err = _cli(["check", "--baseline", str(tmp_path / "cur"),
                         "--current", str(tmp_path / "cur"), "-t", "psnr=abc"], capsys)
    assert code == 2 and "is not a number" in err
    # different data (split fingerprint) cannot be compared
    b = write_run(tmp_path / "b2", "a", "demo", {"psnr": 30.0})
    c = write_run(tmp_path / "c2", "a", "demo", {"psnr": 30.0})
    s = json.loads((c / "summary.json").read_text())
    s["split_fingerprint"] = "different"
    (c / "summary.json").write_text(json.dumps(s))
    with pytest.raises(UsageError, match="different data"):
        compare(b, c)


def test_parse_tolerances():
    t = parse_tolerances(["psnr=0.05", "ssim=0.5%", "lpips=rel:0.01", "*=abs:1e-6"])
    assert t == {"psnr": Tolerance("abs", 0.05), "ssim": Tolerance("rel", 0.005),
                 "lpips": Tolerance("rel", 0.01), "*": Tolerance("abs", 1e-6)}
    for bad in ("psnr", "psnr=", "psnr=-1", "psnr=foo:1"):
        with pytest.raises(UsageError):
            parse_tolerances([bad])


def test_json_output(tmp_path, capsys):
    _run(tmp_path / "base", [30.0], [0.1])
    _run(tmp_path / "cur", [29.0], [0.1])
    code, out, _ = _cli(["check", "--baseline", str(tmp_path / "base"), "--current",
                         str(tmp_path / "cur"), "--json", "--no-images"], capsys)
    data = json.loads(out)
    assert code == 1 and data["exit_code"] == 1
    assert [(c["metric"], c["delta"]) for c in data["changes"]] == [("psnr", -1.0)]


def _mark(run_dir: Path, **fields) -> None:
    p = run_dir / "summary.json"
    s = json.loads(p.read_text())
    s.update(fields)
    p.write_text(json.dumps(s))


def test_limited_current_run_fails_the_gate(tmp_path, capsys):
    """Issue 12.4: a --limit run must not pass on the images it left out (nor on its mean)."""
    _run(tmp_path / "base", [30.0, 20.0, 20.0], [0.1, 0.2, 0.2])
    cur = _run(tmp_path / "cur", [30.0], [0.1])  # the first image only: its mean looks better
    _mark(cur, limit=1, partial=True, complete=True)
    res = compare(tmp_path / "base", tmp_path / "cur")
    missing = sorted(ch.image for ch in res.regressions if ch.reason == "missing in current run")
    assert missing == ["img1", "img2"]
    assert any(ch.metric == "(run)" and "limited (--limit 1)" in ch.reason for ch in res.regressions)
    code, out, _ = _cli(["check", "--baseline", str(tmp_path / "base"),
                         "--current", str(tmp_path / "cur")], capsys)
    assert code == 1 and out.startswith("check: REGRESSION")


def test_partial_or_unfinished_current_run_is_a_regression(tmp_path):
    _run(tmp_path / "base", [30.0, 25.0], [0.1, 0.2])
    cur = _run(tmp_path / "cur", [30.0, 25.0], [0.1, 0.2])
    _mark(cur, complete=False)
    res = compare(tmp_path / "base", tmp_path / "cur")
    assert [ch.reason for ch in res.regressions] == ["current run is partial (2/2)"]
    _mark(cur, complete=True, partial=True)
    assert compare(tmp_path / "base", tmp_path / "cur").exit_code == 1


def test_equally_limited_runs_compare_like_for_like(tmp_path):
    base = _run(tmp_path / "base", [30.0, 25.0], [0.1, 0.2])
    cur = _run(tmp_path / "cur", [30.0, 25.0], [0.1, 0.2])
    for d in (base, cur):
        _mark(d, limit=2, partial=True)
    res = compare(tmp_path / "base", tmp_path / "cur")
    assert res.exit_code == 0 and any("like for like" in n for n in res.notes)
