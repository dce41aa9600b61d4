"""Start-up cost: a command imports only what it uses.

``faceblur-bench run`` with baselines on a finished run must not import the method packages'
networks (torchvision, torch._dynamo), scipy.signal or the trainers; ``train`` still lists and
runs every trainer (its sub-commands are added on first look-up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from faceblur_bench.cli import app

HEAVY = ("torchvision", "torch._dynamo", "scipy.signal", "scipy.interpolate", "faceblur_bench.methods.cfmd",
         "faceblur_bench.methods.dfpg", "faceblur_bench.train", "facenet_pytorch", "dlib", "lpips")

PROBE = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("LOADED=" + json.dumps(
    [m for m in {heavy!r} if m in sys.modules]) + "\\n"))
sys.argv = ["faceblur-bench", *{argv!r}]
from faceblur_bench.cli import main
main()
"""


def probe(argv: list[str]) -> tuple[int, list[str]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY, argv=argv)], env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    line = [x for x in r.stderr.splitlines() if x.startswith("LOADED=")]
    assert line, r.stderr
    return r.returncode, json.loads(line[-1][len("LOADED="):])


def test_run_of_baselines_imports_no_networks(tmp_path, demo_data_root):
    argv = ["run", "-m", "blurred", "-m", "wiener", "--split", "demo", "--metrics", "psnr,ssim",
            "--limit", "4", "--out", str(tmp_path), "--leaderboard", str(tmp_path / "lb.md")]
    rc, loaded = probe(argv)  # scores 4 images (the baselines may use scipy for that)
    assert rc == 0
    assert not [m for m in loaded if not m.startswith("scipy.")]
    rc, loaded = probe(argv)  # nothing to do
    assert rc == 0
    assert loaded == []


def test_finished_run_with_network_metrics_builds_no_network(tmp_path, demo_data_root):
    # detection-rate builds MTCNN (torchvision), identity-dlib dlib: a run with nothing left
    # to compute answers from the store and imports neither
    argv = ["run", "-m", "blurred", "--split", "demo", "--metrics", "psnr,detection-rate,identity-dlib",
            "--limit", "2", "--out", str(tmp_path), "--leaderboard", str(tmp_path / "lb.md")]
    rc, loaded = probe(argv)
    assert rc == 0
    assert {"facenet_pytorch", "dlib"} <= set(loaded)
    summary = next(tmp_path.glob("runs/demo/blurred/*/summary.json"))
    before = summary.read_bytes()
    rc, loaded = probe(argv)
    assert rc == 0
    assert loaded == []
    assert summary.read_bytes() == before


def test_train_lists_and_resolves_trainers_lazily():
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--help"])
    assert r.exit_code == 0, r.output
    for name in ("dfpg", "sappgan", "cfmd", "presets", "export"):
        assert name in r.output
    r = runner.invoke(app, ["train", "dfpg", "--help"])
    assert r.exit_code == 0, r.output
    assert "--data-root" in r.output
    r = runner.invoke(app, ["train", "no-such-trainer"])
    assert r.exit_code != 0
