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
                          env=env, capture_output=True, text=True, timeout=600, check=False)


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


# -- issue 13 item 11: SIGINT and SIGTERM keep what is stored and say so ----------------------------
SLOW_CLI = """
import sys, time
from faceblur_bench.methods.base import Method
from faceblur_bench.registry import methods

@methods.register("slow-identity")
class Slow(Method):
    def restore(self, blurred, meta=None):
        time.sleep(0.3)  # slow enough to be signalled mid-run
        return blurred.clone()

from faceblur_bench.cli import main
sys.argv = ["faceblur-bench", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_signal_keeps_results_prints_what_is_stored_and_exits(tmp_path, demo_data_root, sig, code, word):
    out = tmp_path / "res"
    env = {k: v for k, v in os.environ.items() if k != "FACEBLUR_CRASH_AT"}
    env["COLUMNS"] = "300"  # one message per line
    p = subprocess.Popen([sys.executable, "-c", SLOW_CLI, "run", "--method", "slow-identity", "--split",
                          "demo", "--metrics", "psnr", "--batch-size", "2", "--limit", "30", "--device",
                          "cpu", "--out", str(out), "--leaderboard", str(out / "lb.md")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        rows_path = None
        while time.time() < deadline:  # wait until some rows are stored
            found = list(out.glob("runs/demo/slow-identity/*/rows.jsonl"))
            if found and found[0].read_bytes().count(b"\n") >= 4:
                rows_path = found[0]
                break
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        assert rows_path is not None
        p.send_signal(sig)
        _, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == code, stderr
    assert f"{word} — results stored so far are kept" in stderr
    assert "Traceback" not in stderr
    rows = read_rows(rows_path)
    assert 4 <= len(rows) < 30
    summary = json.loads((rows_path.parent / "summary.json").read_text())
    assert summary["counts"]["done"] == len(rows) and summary["complete"] is False
    assert (f"stored: slow-identity on demo: {len(rows)} of 30 images ({len(rows)} ok, 0 failed) "
            f"in {rows_path.parent}") in stderr


# -- issue 13 item 12: temp files of a killed writer are removed by the next run ---------------------
def test_stale_temp_files_are_removed_on_the_next_run(tmp_path, demo_data_root):
    out = tmp_path / "res"
    assert run_cli(out).returncode == 0
    (run_dir,) = out.glob("runs/demo/blurred/*")
    stale = [run_dir / ".summary.json.k2x9.tmp", run_dir / "features" / "fid" / ".feat.ab12.npz",
             run_dir / "images" / ".img0.png.tmp", out / ".leaderboard.md.q7w1.tmp"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a file")
        os.utime(p, (time.time() - 3600, time.time() - 3600))  # left by a run killed an hour ago
    young = out / ".leaderboard.md.live.tmp"  # another run writing the leaderboard right now
    young.write_bytes(b"")
    r = run_cli(out)
    assert r.returncode == 0, r.stderr
    assert [p for p in stale if p.exists()] == []
    assert young.exists()


# -- issue 13 item 9: a full disk is a clear error; stored rows stay intact --------------------------
def test_disk_full_is_a_clear_error_and_rows_stay_intact(tiny_tmpfs, demo_data_root):
    """``--out`` on a 1 MiB tmpfs with ``--save-images`` (the demo's 72 restored PNGs need ~2 MB):
    exit 1 with "disk full at PATH", stored rows intact, no partial temp files; after freeing
    space the same command resumes without recomputing a stored image."""
    mnt, remount = tiny_tmpfs
    out = mnt / "res"
    args = [sys.executable, "-m", "faceblur_bench", "run", "--method", "blurred", "--split", "demo",
            "--metrics", "psnr", "--batch-size", "8", "--save-images", "--device", "cpu",
            "--out", str(out), "--leaderboard", str(mnt / "lb.md")]
    env = {k: v for k, v in os.environ.items() if k != "FACEBLUR_CRASH_AT"}
    env["COLUMNS"] = "300"
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "disk full at " + str(out) in r.stderr and "Traceback" not in r.stderr
    (run_dir,) = out.glob("runs/*/blurred/*")
    raw = (run_dir / "rows.jsonl").read_bytes()
    assert raw.endswith(b"\n")  # no torn line: the partial batch was cut off
    rows = read_rows(run_dir / "rows.jsonl")
    assert 0 < len(rows) < 72 and all(r_["status"] == "ok" for r_ in rows)
    leftovers = [p for p in out.rglob(".*") if p.is_file() and p.name != ".lock"]
    assert leftovers == []  # partial temp files removed
    if (run_dir / "summary.json").is_file():  # written if it fitted
        assert json.loads((run_dir / "summary.json").read_text())["counts"]["done"] == len(rows)
    else:
        assert "summary.json did not fit" in r.stderr
    kept = stable(rows)
    remount("64m")  # space freed: the same command resumes, nothing stored is recomputed
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    rows2 = read_rows(run_dir / "rows.jsonl")
    assert stable(rows2[: len(kept)]) == kept and len(rows2) == 72
    assert len(list((run_dir / "images").glob("*.png"))) == 72


def test_full_disk_while_appending_rows_or_the_summary_keeps_the_store_intact(tiny_tmpfs, fill_disk):
    """The row appender and the atomic writer (summary, leaderboard) on a full tmpfs: a
    DiskFullError naming the file; the stored rows are exactly what they were; no temp file."""
    from faceblur_bench.errors import DiskFullError
    from faceblur_bench.results import RunStore, atomic_write_text

    mnt, _ = tiny_tmpfs
    rows = [{"id": f"img{i}", "status": "ok", "reason": None, "metrics": {"psnr": 30.0 + i}}
            for i in range(5)]
    with RunStore(mnt / "run") as store:
        store.append_rows(rows)
        before = (mnt / "run" / "rows.jsonl").read_bytes()
        fill_disk(mnt / "filler")  # to the last byte
        big = [{"id": f"new{i}", "status": "ok", "reason": None, "metrics": {"psnr": 1.0},
                "meta": {"pad": "x" * 2000}} for i in range(20)]
        with pytest.raises(DiskFullError, match=r"disk full at .*rows\.jsonl"):
            store.append_rows(big)
        assert (mnt / "run" / "rows.jsonl").read_bytes() == before
        assert [r["id"] for r in read_rows(mnt / "run" / "rows.jsonl")] == [r["id"] for r in rows]
        with pytest.raises(DiskFullError, match=r"disk full at .*summary\.json"):
            store.write_summary({"pad": "x" * 100_000})
        with pytest.raises(DiskFullError, match=r"disk full at .*leaderboard\.md"):
            atomic_write_text(mnt / "leaderboard.md", "x" * 100_000)
    assert sorted(p.name for p in mnt.rglob(".*")) == [".lock"]  # no partial temp file
