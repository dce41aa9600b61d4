"""End to end through the real command line on the demo split (subprocess, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import main_inprocess





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
    # landmark distance (dlib's 68-point model, genuine weights): the blurred input's landmarks
    # are further from the ground truth's than Richardson-Lucy's (measured 3.27 vs 1.95 px)
    lmd = {k: v["metrics"]["lmd-dlib"] for k, v in summaries.items()}
    assert all(m["status"] == "ok" and m["value"] is not None for m in lmd.values()), lmd
    assert lmd["richardson-lucy"]["value"] < lmd["blurred"]["value"]
    found = {k: v["metrics"]["lmd-dlib-found"] for k, v in summaries.items()}
    for k in summaries:  # every image is scored or recorded as "no face on the restored image"
        assert lmd[k]["count"] + lmd[k]["extra"].get("unscored", 0) == summaries[k]["counts"]["ok"]
        assert lmd[k]["count"] == round(found[k]["value"] * found[k]["count"])
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


def test_help_everywhere(capsys):
    # in-process (the real entry point, exit handling included): a fresh interpreter per command
    # costs seconds of imports and tests nothing more; --version covers the installed script
    for cmd in ([], ["run"], ["score"], ["methods"], ["splits"], ["metrics"], ["train"], ["table"], ["check"]):
        code, out, _ = main_inprocess([*cmd, "--help"], capsys)
        assert code == 0 and "Usage" in out, cmd


def test_output_files_follow_the_umask(tmp_path, demo_data_root, capsys):
    """Every written file gets 0o666 & ~umask (0640 here), not mkstemp's 0600."""
    from faceblur_bench.engine import open_split

    res, lb = tmp_path / "results", tmp_path / "lb.md"
    s0 = open_split("demo", demo_data_root).samples()[0]
    for sub, src in (("gt", s0.sharp), ("out", s0.blurred)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "a.png").write_bytes(Path(src).read_bytes())
    old = os.umask(0o027)
    try:
        code, _, err = main_inprocess(["run", "-m", "blurred", "--metrics", "psnr", "--limit", "3",
                                       "--out", str(res), "--leaderboard", str(lb)], capsys)
        assert code == 0, err
        code, _, err = main_inprocess(["table", "--split", "demo", "--results", str(res),
                                       "-o", str(tmp_path / "t.md")], capsys)
        assert code == 0, err
        code, _, err = main_inprocess(["score", "--restored", str(tmp_path / "out"), "--reference",
                                       str(tmp_path / "gt"), "--metrics", "psnr",
                                       "--json", str(tmp_path / "s.json")], capsys)
        assert code == 0, err
    finally:
        os.umask(old)
    summary = next(res.glob("runs/demo/blurred/*/summary.json"))
    for f in [summary, lb, res / "demo.md", tmp_path / "t.md", tmp_path / "s.json"]:
        assert (f.stat().st_mode & 0o777) == 0o640, (f, oct(f.stat().st_mode & 0o777))


@pytest.mark.parametrize("args,needle", [
    (["--option", "balanse=0.1"], "unknown option 'balanse' for wiener; did you mean 'balance'"),
    (["--option", "balance=abc"], "option 'balance' for wiener must be float, got 'abc'"),
    (["--option", "balance=-1"], "must be >= 0"),
    (["--weights", "vggface=/x"], "unknown weight file 'vggface'; did you mean 'vggface16'"),
    (["--weights", "foo=/x"], "unknown weight file 'foo'"),
])
def test_bad_method_options_and_weight_names_exit_2_before_any_run(tmp_path, args, needle, capsys):
    code, out, err = main_inprocess(["run", "-m", "wiener", "--out", str(tmp_path / "res"),
                                     "--leaderboard", str(tmp_path / "lb.md"), *args], capsys)
    assert code == 2, (out, err)
    assert needle in err
    assert not (tmp_path / "res").exists()  # nothing ran, no separate run stored


def test_methods_name_lists_options_with_types_and_defaults(capsys):
    code, out, err = main_inprocess(["methods", "richardson-lucy"], capsys)
    assert code == 0, err
    row = next(line for line in out.splitlines() if "num_iter" in line)
    assert "int" in row and "10" in row
    code, out, _ = main_inprocess(["methods", "folder", "--json"], capsys)
    opts = {o["option"]: o for o in json.loads(out)[0]["options"]}
    assert opts["pattern"]["type"] == "str" and opts["pattern"]["default"] == "{stem}.png"
    code, _, err = main_inprocess(["methods", "wienr"], capsys)
    assert code == 2 and "did you mean 'wiener'" in err


def test_learned_method_without_data_or_checkpoint_names_both(tmp_path):
    r = cli("run", "--method", "sappgan", "--split", "mspl-center", "--data-root", str(tmp_path / "none"),
            "--out", str(tmp_path / "res"), "--leaderboard", str(tmp_path / "lb.md"))
    err = " ".join(r.stderr.split())
    assert r.returncode == 2, err
    assert "sappgan needs trained weights" in err and "split 'mspl-center' not found" in err
    assert "G_*_best.pth" in err and "Test_data_center" in err


def test_train_help_cites_papers_not_seed_numbers(capsys):
    code, out, _ = main_inprocess(["train", "--help"], capsys)
    assert code == 0 and "seed 00" not in out, out
    for m in ("sappgan", "dfpg"):
        code, out, _ = main_inprocess(["train", m, "--help"], capsys)
        assert code == 0 and "seed 00" not in out and "et al." in out


def test_version_and_score_progress_label(tmp_path, demo_data_root):
    from faceblur_bench import __version__
    from faceblur_bench.engine import open_split

    r = cli("--version")  # a fresh interpreter: the installed entry point's answer
    assert r.returncode == 0 and r.stdout.strip() == f"faceblur-bench {__version__}"
    s0 = open_split("demo", demo_data_root).samples()[0]
    for sub, src in (("gt", s0.sharp), ("out", s0.blurred)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "a.png").write_bytes(Path(src).read_bytes())
    r = cli("score", "--restored", str(tmp_path / "out"), "--reference", str(tmp_path / "gt"),
            "--metrics", "psnr")
    assert r.returncode == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "scoring" in err and "blurred on" not in err and "folders:" not in err
