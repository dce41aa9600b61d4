"""End to end through the real command line on the demo split (subprocess, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faceblur_bench", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=dict(os.environ), check=False)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, demo_data_root):
    """The README's main command: every built-in baseline x every metric on the demo split."""
    work = tmp_path_factory.mktemp("e2e")
    r = cli("run", "--out", str(work / "results"), "--leaderboard", str(work / "leaderboard.md"), cwd=work)
    return work, r


def test_main_command_prints_table_and_writes_results(demo_run):
    work, r = demo_run
    assert r.returncode == 0, r.stderr[-3000:]
    summaries = {json.loads(p.read_text())["method"]: json.loads(p.read_text())
                 for p in (work / "results").glob("runs/demo/*/*/summary.json")}
    assert set(summaries) == {"blurred", "wiener", "richardson-lucy"}
    for s in summaries.values():
        assert s["complete"] and s["counts"]["failed"] == 0 and s["counts"]["ok"] == s["counts"]["total"] > 0
        assert s["split_fingerprint"] and s["provenance"]["torch"]
        # every registered metric appears: with a value, or with the reason it is unavailable
        for name, m in s["metrics"].items():
            assert (m["status"] == "ok" and m["value"] is not None) or m["reason"], (name, m)
    # the oracle deconvolutions must beat doing nothing on PSNR (real numbers, could fail)
    psnr = {k: v["metrics"]["psnr"]["value"] for k, v in summaries.items()}
    assert psnr["wiener"] > psnr["blurred"] and psnr["richardson-lucy"] > psnr["blurred"]
    # identity with genuine weights in the default run (dlib, installed from PyPI): real values;
    # the true-kernel deconvolutions keep more faces recognisable than the blurred input
    for s in summaries.values():
        for name in ("identity-dlib", "identity-kept-dlib", "verification-dlib"):
            assert s["metrics"][name]["status"] == "ok" and s["metrics"][name]["value"] is not None
    kept = {k: v["metrics"]["identity-kept-dlib"]["value"] for k, v in summaries.items()}
    assert kept["wiener"] > kept["blurred"] and kept["richardson-lucy"] > kept["blurred"]
    # the Markdown table was printed and written; the leaderboard regenerated
    assert "PSNR ↑" in r.stdout and "| blurred" in r.stdout and "| wiener" in r.stdout
    # the file keeps the full table; the terminal shows the columns with values and names the
    # others once below it (issue 12.13)
    full = (work / "results" / "demo.md").read_text()
    shown = r.stdout.splitlines()[0]
    assert full.splitlines()[0].count("|") > shown.count("|") and "PSNR ↑" in shown
    assert "Not shown — no value on this machine" in r.stdout
    lb = (work / "leaderboard.md").read_text()
    assert "demo" in lb and "richardson-lucy" in lb


def test_rerun_resumes_without_recomputation(demo_run):
    work, _ = demo_run
    rows_before = {p: p.read_bytes() for p in (work / "results").glob("runs/demo/*/*/rows.jsonl")}
    r = cli("run", "--method", "blurred", "--out", str(work / "results"), "--leaderboard",
            str(work / "leaderboard.md"), cwd=work)
    assert r.returncode == 0, r.stderr
    for p, before in rows_before.items():
        assert p.read_bytes() == before  # nothing appended: every image was already stored


def test_score_pairs_files_by_pattern(tmp_path, demo_data_root):
    """`score` on folders written by another code base (SAPPGAN-style '<name>_out.png')."""
    from PIL import Image

    from faceblur_bench.engine import open_split

    samples = open_split("demo", demo_data_root).samples()[:5]
    (tmp_path / "gt").mkdir()
    (tmp_path / "out").mkdir()
    for s in samples:
        Image.open(s.sharp).save(tmp_path / "gt" / f"{s.id}.png")
        Image.open(s.blurred).save(tmp_path / "out" / f"{s.id}_out.png")
    r = cli("score", "--restored", str(tmp_path / "out"), "--reference", str(tmp_path / "gt"),
            "--pattern", "{stem}_out.png", "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["summary"]["counts"]["ok"] == 5 and len(data["rows"]) == 5
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio

    s0 = samples[0]
    ref = peak_signal_noise_ratio(np.asarray(Image.open(s0.sharp).convert("RGB")),
                                  np.asarray(Image.open(s0.blurred).convert("RGB")))
    row = next(r for r in data["rows"] if r["id"] == s0.id)
    assert row["metrics"]["psnr"] == pytest.approx(ref, abs=1e-9)
    # a wrong pattern names the missing file and the fix
    r = cli("score", "--restored", str(tmp_path / "out"), "--reference", str(tmp_path / "gt"))
    assert r.returncode == 2 and "--pattern" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["run", "--method", "wienr"], "did you mean 'wiener'"),
    (["run", "--split", "mspl-centre"], "did you mean 'mspl-center'"),
    (["run", "--method", "blurred", "--metrics", "psnr,ssmi"], "did you mean 'ssim'"),
])
def test_unknown_names_exit_2_with_suggestions(args, needle):
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr


def test_missing_split_data_names_the_layout(tmp_path):
    r = cli("run", "--method", "blurred", "--split", "mspl-center", "--data-root", str(tmp_path))
    assert r.returncode == 2
    assert "not found" in r.stderr and "Test_data_center" in r.stderr


def test_help_everywhere():
    for cmd in ([], ["run"], ["score"], ["methods"], ["splits"], ["metrics"]):
        r = cli(*cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout, cmd
