"""A real `faceblur-bench run` subprocess is SIGKILLed at several points; running the same command
again recomputes no stored image and ends with results identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceblur_bench.results import read_rows

N = 24  # demo samples used (--limit): 3 batches of 8
ARGS = ["run", "--method", "blurred", "--split", "demo", "--metrics", "psnr,ssim", "--batch-size", "8",
        "--limit", str(N)]


def run_cli(out: Path, crash: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("FACEBLUR_CRASH_AT", None)
    if crash:
        env["FACEBLUR_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "faceblur_bench", *ARGS, "--out", str(out),
                           "--leaderboard", str(out / "leaderboard.md")],
                          env=env, capture_output=True, text=True, timeout=600)


def stable(rows: list[dict]) -> list[tuple]:
    """Rows without their timing field, in order."""
    return [(r["id"], r["status"], json.dumps(r["metrics"], sort_keys=True)) for r in rows]


@pytest.fixture(scope="module")
def reference_rows(tmp_path_factory, demo_data_root) -> list[dict]:
    out = tmp_path_factory.mktemp("uninterrupted")
    r = run_cli(out)
    assert r.returncode == 0, r.stderr
    (rows_path,) = out.glob("runs/demo/blurred/*/rows.jsonl")
    return read_rows(rows_path)


@pytest.mark.parametrize("crash", ["restore:2", "metrics:3", "rows-write:2", "summary-write:1"])
def test_sigkill_then_resume(crash, tmp_path, reference_rows):
    out = tmp_path / "res"
    r = run_cli(out, crash)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-2000:])
    run_dirs = list(out.glob("runs/demo/blurred/*"))
    assert len(run_dirs) == 1
    rows_path = run_dirs[0] / "rows.jsonl"
    survived = read_rows(rows_path)
    raw = rows_path.read_bytes() if rows_path.exists() else b""
    if crash.startswith("rows-write"):
        assert not raw.endswith(b"\n")  # the kill tore a line ...
        assert len(survived) == 8 + 7  # ... which is not read as data (the batch's complete rows are)
    assert stable(survived) == stable(reference_rows[: len(survived)])

    r = run_cli(out)
    assert r.returncode == 0, r.stderr
    rows = read_rows(rows_path)
    # zero recomputation: every surviving row is kept, each id is stored exactly once
    assert stable(rows[: len(survived)]) == stable(survived)
    assert [x["id"] for x in rows] == [x["id"] for x in reference_rows]
    assert stable(rows) == stable(reference_rows)
    summary = json.loads((run_dirs[0] / "summary.json").read_text())
    assert summary["complete"] and summary["counts"]["ok"] == N


def test_second_run_on_same_directory_refuses(tmp_path, demo_data_root):
    """While one run holds a run directory, a second one refuses with a clear message."""
    out = tmp_path / "res"
    first = run_cli(out)  # create the run directory
    assert first.returncode == 0
    (run_dir,) = out.glob("runs/demo/blurred/*")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock\n"
        f"l = FileLock({str(run_dir / '.lock')!r}); l.acquire(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t = time.time()
        r = run_cli(out)
        assert r.returncode == 2
        assert "another faceblur-bench run is writing" in r.stderr and "--wait" in r.stderr
        assert time.time() - t < 60
    finally:
        holder.kill()
        holder.wait()
