"""The exit-code rule (docs/exit-codes.md), through the real command line in-process:
0 every image scored; 1 the command ran and its outcome is a failure (failed images, a
regression); 2 it could not start (unknown names, bad options, missing inputs — data, results
path, checkpoint, default or named)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from faceblur_bench.imageio import write_png
from cli_helpers import main_inprocess as _cli




def test_run_where_every_image_fails_exits_1(tmp_path, capsys, demo_data_root):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "res"
    code, _stdout, err = _cli(["run", "-m", "folder", "-o", f"dir={tmp_path / 'empty'}", "--limit", "3",
                              "--metrics", "psnr", "--out", str(out)], capsys)
    assert code == 1, err
    assert "3 of 3 image(s) failed" in err and "exit code 1" in err
    # the results are still written: the failures are stored with their reasons
    (summary,) = [json.loads(p.read_text()) for p in out.glob("runs/demo/folder/*/summary.json")]
    assert summary["counts"]["failed"] == 3 and "no restoration for" in summary["failures"][0]["reason"]
    assert (out / "leaderboard.md").is_file()


def test_score_with_a_failed_image_exits_1(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for d in ("gt", "out"):
        for name in ("a", "b"):
            write_png(tmp_path / d / f"{name}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    (tmp_path / "out" / "b.png").write_bytes(b"not a png")  # unreadable restoration
    code, _stdout, err = _cli(["score", "--restored", str(tmp_path / "out"), "--reference",
                              str(tmp_path / "gt"), "--metrics", "psnr", "--json",
                              str(tmp_path / "s.json")], capsys)
    assert code == 1, err
    assert "1 of 2 image(s) failed" in err
    data = json.loads((tmp_path / "s.json").read_text())  # written before the exit
    assert data["summary"]["counts"] == {"total": 2, "done": 2, "ok": 1, "failed": 1}
    # all readable: 0
    write_png(tmp_path / "out" / "b.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    code, _, err = _cli(["score", "--restored", str(tmp_path / "out"), "--reference",
                         str(tmp_path / "gt"), "--metrics", "psnr"], capsys)
    assert code == 0, err


def test_leaderboard_of_a_missing_results_path_exits_2(tmp_path, capsys):
    target = tmp_path / "lb.md"
    code, _, err = _cli(["leaderboard", "--results", str(tmp_path / "nope"), "-o", str(target)], capsys)
    assert code == 2 and "does not exist" in err
    assert not target.exists()  # no empty leaderboard written


def test_missing_checkpoint_default_or_named_exits_2(tmp_path, capsys, demo_data_root, monkeypatch):
    monkeypatch.setenv("FACEBLUR_CHECKPOINTS", str(tmp_path / "ckpts"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    base = ["run", "-m", "sappgan", "--limit", "1", "--metrics", "psnr", "--out", str(tmp_path / "r")]
    code_default, _, err_default = _cli(base, capsys)
    code_named, _, err_named = _cli([*base, "--checkpoint", str(tmp_path / "nope.pth")], capsys)
    assert (code_default, code_named) == (2, 2), (err_default, err_named)
    assert "sappgan" in err_default.lower() and "nope.pth" in err_named
    assert not list(Path(tmp_path / "r").glob("runs/*/*/*/rows.jsonl"))  # nothing ran
