"""`faceblur-bench make-split`, `data verify`, `data status` through the real CLI app."""

from __future__ import annotations

import json

import numpy as np
from cli_helpers import main_inprocess
from typer.testing import CliRunner

from faceblur_bench.cli import app
from faceblur_bench.imageio import write_png

runner = CliRunner()


def test_make_split_then_verify_and_tamper(tmp_path):
    rng = np.random.default_rng(0)
    write_png(tmp_path / "sharp" / "me.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    out = tmp_path / "data"
    r = runner.invoke(app, ["make-split", "--sharp", str(tmp_path / "sharp"), "--protocol", "mspl",
                            "--out", str(out), "--seed", "3", "--subset", "ffhq"])
    assert r.exit_code == 0, r.output
    assert "mspl-center/ffhq" in r.output
    r = runner.invoke(app, ["data", "verify", "mspl-center/ffhq", "--data-root", str(out), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["created"] and res["ok"] and res["counts"] == {"sharp": 1, "blurred": 80}
    victim = out / "Test_data_center/Test_data_FFHQ/FFHQ_blur/me_ker25_blur_k17.png"
    victim.write_bytes(victim.read_bytes() + b"\0")
    r = runner.invoke(app, ["data", "verify", "mspl-center/ffhq", "--data-root", str(out), "--json"])
    assert r.exit_code == 1
    assert json.loads(r.output)["changed"] == ["Test_data_center/Test_data_FFHQ/FFHQ_blur/me_ker25_blur_k17.png"]
    r = runner.invoke(app, ["data", "status", "--data-root", str(out), "--json"])
    recs = {x["name"]: x for x in json.loads(r.output)}
    # the folder is there, but only the FFHQ subset: the split and its other subsets are not usable
    assert recs["mspl-center"]["located"] and not recs["mspl-center"]["found"] and recs["mspl-center"]["error"]
    assert recs["mspl-center/ffhq"]["found"] and recs["mspl-center/ffhq"]["samples"] == 80
    assert not recs["mspl-center/celeba"]["found"] and not recs["shen-helen"]["found"]
    r = runner.invoke(app, ["data", "status", "--data-root", str(out)], env={"COLUMNS": "250"})
    table = {ln.split("│")[1].strip(): ln.split("│")[2].strip() for ln in r.output.splitlines()
             if ln.startswith("│") and ln.split("│")[1].strip()}
    assert table["mspl-center/ffhq"] == "yes" and table["mspl-center/celeba"] == "incomplete"
    assert table["shen-helen"] == "no" and "True" not in r.output and "False" not in r.output
    assert r.output.count("expected layout") == len({n.split("/")[0] for n, v in table.items() if v != "yes"}) - 1


def test_make_split_bad_input_exit_code(tmp_path):
    write_png(tmp_path / "sharp" / "wide.png", np.zeros((128, 160, 3), np.uint8))
    r = runner.invoke(app, ["make-split", "--sharp", str(tmp_path / "sharp"), "--protocol", "shen",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "160x128" in str(r.exception) or "160x128" in r.output


def _main(capsys, *args: str) -> tuple[int, str]:
    """The real entry point with its error handling, in this process: (exit code, stderr)."""
    code, _, err = main_inprocess(list(args), capsys)
    return code, err


def _sharp(tmp_path, n=2):
    rng = np.random.default_rng(1)
    for i in range(n):
        write_png(tmp_path / "sharp" / f"f{i}.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    return tmp_path / "sharp"


def test_make_split_bad_device_and_protocol_exit_2_without_traceback_or_files(tmp_path, capsys):
    import torch

    sharp = _sharp(tmp_path, 1)
    cases = [("--device", "tpu", "unknown --device 'tpu'"), ("--protocol", "mspll", "did you mean 'mspl'")]
    if not torch.cuda.is_available():
        cases.append(("--device", "cuda", "no CUDA device is available"))
    for opt, val, needle in cases:
        args = {"--protocol": "mspl", "--device": "cpu", opt: val}
        code, err = _main(capsys, "make-split", "--sharp", str(sharp), "--out", str(tmp_path / "o"),
                          *[x for kv in args.items() for x in kv])
        assert code == 2, (val, err)
        assert "Traceback" not in err and needle in err, err
        assert "0/?" not in err  # no progress bar before the names are checked
        assert not (tmp_path / "o").exists()


def test_make_split_interrupted_leaves_no_half_written_folder(tmp_path):
    import pytest

    from faceblur_bench.data.synth import make_split

    sharp = _sharp(tmp_path, 3)

    def stop(i, n):
        if i == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_split(sharp, "mspl", tmp_path / "new", progress=stop)
    assert not (tmp_path / "new").exists()
    keep = tmp_path / "existing"
    (keep / "mine.txt").parent.mkdir()
    (keep / "mine.txt").write_text("x")
    with pytest.raises(KeyboardInterrupt):
        make_split(sharp, "shen", keep, progress=stop)
    assert sorted(p.name for p in keep.iterdir()) == ["mine.txt"]
    man = make_split(sharp, "shen", keep)  # and a complete one lands where the loaders look
    assert (keep / "Test_data_Helen" / "final_Helen_gt" / "f2.png").is_file()
    assert len(man["files"]) == 3 + 3 * 80 + 8 and not list(keep.glob(".make-split-*"))


def test_run_unknown_device_exit_2_without_traceback(tmp_path, capsys):
    code, err = _main(capsys, "run", "-m", "blurred", "--device", "tpu", "--out", str(tmp_path / "r"),
                      "--leaderboard", str(tmp_path / "lb.md"))
    assert code == 2 and "Traceback" not in err
    assert "unknown --device 'tpu'" in err and "auto, cpu, cuda or cuda:N" in err


def test_splits_layouts_once_per_split(tmp_path):
    r = runner.invoke(app, ["splits", "--layouts", "--data-root", str(tmp_path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    heads = [ln for ln in r.output.splitlines() if ln.endswith("expected layout:")]
    assert heads.count("mspl-center expected layout:") == 1
    assert not any("/" in h.split()[0] for h in heads)  # no per-subset repeats
    assert len(heads) == len(set(heads)) >= 5


def test_make_split_killed_stage_removed_by_next_run(tmp_path):
    # a SIGKILLed make-split cannot clean up: the next one into the same folder removes the
    # staging folder of the dead process (and leaves a live one's alone)
    import os
    import signal
    import subprocess
    import sys
    import time

    sharp = _sharp(tmp_path, 6)
    out = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "faceblur_bench", "make-split", "--sharp", str(sharp), "--protocol",
                             "shen", "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob(".make-split-*/**/*.png")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (dead,) = out.glob(".make-split-*")
    assert (dead / ".owner").read_text().split()[1] == str(proc.pid)
    live = out / ".make-split-live"
    live.mkdir()
    (live / ".owner").write_text(f"{__import__('socket').gethostname()} {os.getpid()}\n")
    from faceblur_bench.data.synth import make_split

    man = make_split(sharp, "shen", out)
    assert not dead.exists() and live.is_dir()
    assert len(man["files"]) == 6 + 6 * 80 + 8
    assert not list((out / "Test_data_Helen").rglob(".owner"))
