"""Sharded runs with torch.distributed (gloo on CPU): real torchrun processes on the demo split.

A run on 2 and 3 ranks, and on two "nodes" meeting through a localhost c10d rendezvous, stores
the same rows (same ids, same order, same values) and the same summary values as one process; a
rank SIGKILLed mid-run loses none of its stored rows and the run finishes on one process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from faceblur_bench.engine.distributed import World, shard, strip_nproc
from faceblur_bench.results import fold_row_shards, read_rows, row_shard_path

N = 12  # demo samples (--limit)
ARGS = ["run", "--method", "blurred", "--split", "demo", "--metrics", "psnr,ssim", "--batch-size", "2",
        "--limit", str(N)]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def env_for(crash: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FACEBLUR_CRASH_AT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    if crash:
        env["FACEBLUR_CRASH_AT"] = crash
    return env


def cli(out: Path, *extra: str, crash: str | None = None, prefix: list[str] | None = None,
        ) -> subprocess.CompletedProcess:
    cmd = (prefix or [sys.executable]) + ["-m", "faceblur_bench", *ARGS, "--out", str(out),
                                          "--leaderboard", str(out / "leaderboard.md"), *extra]
    return subprocess.run(cmd, check=False, env=env_for(crash), capture_output=True, text=True, timeout=600)


def run_dir(out: Path) -> Path:
    (d,) = out.glob("runs/demo/blurred/*/")
    return d


def stable(rows: list[dict]) -> list[tuple]:
    """Rows without their timing field, in order."""
    return [(r["id"], r["status"], json.dumps(r["metrics"], sort_keys=True)) for r in rows]


def summary_values(out: Path) -> dict:
    s = json.loads((run_dir(out) / "summary.json").read_text())
    return {"counts": s["counts"], "complete": s["complete"], "run_key": s["run_key"],
            "metrics": {k: (v["value"], v["std"], v["count"]) for k, v in s["metrics"].items()}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def single(tmp_path_factory, demo_data_root) -> tuple[list[tuple], dict]:
    out = tmp_path_factory.mktemp("single")
    r = cli(out)
    assert r.returncode == 0, r.stderr
    return stable(read_rows(run_dir(out) / "rows.jsonl")), summary_values(out)


# -- no processes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n,size", [(12, 2), (12, 3), (7, 3), (2, 4), (0, 2)])
def test_shards_are_disjoint_cover_and_unpadded(n, size):
    items = list(range(n))
    parts = [shard(items, World(rank, size)) for rank in range(size)]
    flat = sorted(x for p in parts for x in p)
    assert flat == items  # each item exactly once, nothing added
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_strip_nproc_keeps_everything_else():
    assert strip_nproc(["run", "--nproc", "2", "-m", "x", "--nproc=3", "--limit", "4"]) == \
        ["run", "-m", "x", "--limit", "4"]


def test_shards_are_read_after_rows_and_folded_in_split_order(tmp_path):
    (tmp_path / "rows.jsonl").write_text(json.dumps({"id": "a", "status": "failed", "metrics": {}}) + "\n")
    row_shard_path(tmp_path, 1).write_text(
        json.dumps({"id": "c", "status": "ok", "metrics": {}}) + "\n" + '{"id": "torn", "sta')
    row_shard_path(tmp_path, 0).write_text(
        json.dumps({"id": "a", "status": "ok", "metrics": {}}) + "\n"
        + json.dumps({"id": "b", "status": "ok", "metrics": {}}) + "\n")
    # rows.jsonl, then rank 0, then rank 1; the torn last line is not a row
    assert [(r["id"], r["status"]) for r in read_rows(tmp_path / "rows.jsonl")] == \
        [("a", "failed"), ("a", "ok"), ("b", "ok"), ("c", "ok")]
    assert fold_row_shards(tmp_path, order=["c", "b", "a"]) == 3
    assert not list(tmp_path.glob("rows.rank*.jsonl"))
    assert [(r["id"], r["status"]) for r in read_rows(tmp_path / "rows.jsonl")] == \
        [("a", "failed"), ("c", "ok"), ("b", "ok"), ("a", "ok")]


def test_set_metric_state_of_every_rank_is_read_as_one(tmp_path):
    import numpy as np

    from faceblur_bench.results import RunStore, read_features

    with RunStore(tmp_path, rank=0, lock=False) as r0, RunStore(tmp_path, rank=1, lock=False) as r1:
        r0.write_features("fid", ["a", "c"], np.array([[1.0], [3.0]]))
        r1.write_features("fid", ["b"], np.array([[2.0]]))
    assert read_features(tmp_path, "fid", ["a", "b", "c"]).ravel().tolist() == [1.0, 2.0, 3.0]
    assert read_features(tmp_path, "fid", ["a", "d"]) is None  # a missing id is not invented


# -- real torchrun jobs ------------------------------------------------------------------------------
def test_nproc_2_equals_one_process(tmp_path, single):
    out = tmp_path / "res"
    r = cli(out, "--nproc", "2")
    assert r.returncode == 0, r.stderr
    assert "| blurred" in r.stdout  # rank 0 published the table once
    assert r.stdout.count("| blurred") == 1
    assert stable(read_rows(run_dir(out) / "rows.jsonl")) == single[0]
    assert summary_values(out) == single[1]
    assert not list(run_dir(out).glob("rows.rank*.jsonl"))  # folded into rows.jsonl
    assert json.loads((run_dir(out) / "summary.json").read_text())["world_size"] == 2
    # sealed to the folded rows.jsonl (it was sealed to rank 0's emptied shard: every reader
    # then called it edited and withheld it from the ranking)
    assert "does not match" not in r.stdout + r.stderr, r.stdout
    r = cli(out)  # a no-op rerun on one process leaves it as it is
    assert r.returncode == 0 and "does not match" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_torchrun_3_ranks_equals_one_process(tmp_path, single):
    out = tmp_path / "res"
    r = cli(out, prefix=TORCHRUN + ["--standalone", "--nproc-per-node", "3", "--max-restarts", "0"])
    assert r.returncode == 0, r.stderr
    assert stable(read_rows(run_dir(out) / "rows.jsonl")) == single[0]
    assert summary_values(out) == single[1]


def test_two_nodes_localhost_rendezvous_equals_one_process(tmp_path, single):
    out = tmp_path / "res"
    port = free_port()
    procs = []
    for node in (0, 1):
        prefix = TORCHRUN + ["--nnodes", "2", "--node-rank", str(node), "--nproc-per-node", "1",
                             "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
                             "--rdzv-id", "faceblur-test", "--max-restarts", "0"]
        cmd = prefix + ["-m", "faceblur_bench", *ARGS, "--out", str(out),
                        "--leaderboard", str(out / "leaderboard.md")]
        procs.append(subprocess.Popen(cmd, env=env_for(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    assert stable(read_rows(run_dir(out) / "rows.jsonl")) == single[0]
    assert summary_values(out) == single[1]


def test_killed_rank_loses_nothing_and_resumes_on_one_process(tmp_path, single):
    out = tmp_path / "res"
    # rank 1 (6 samples, 3 batches of 2) dies half-way through writing its second batch of rows
    r = cli(out, "--nproc", "2", crash="rows-write:2@1")
    assert r.returncode != 0
    d = run_dir(out)
    shard1 = read_rows(row_shard_path(d, 1))
    # its first batch, and the first row of the second (the write is torn inside its last line)
    assert [row["id"] for row in shard1] == [t[0] for t in single[0][1::2][:3]]
    stored = {row["id"]: row for row in read_rows(d / "rows.jsonl") if row["status"] == "ok"}
    assert 3 <= len(stored) < N  # rank 1's rows at least; not everything
    assert not (d / "summary.json").exists()
    r = cli(out)  # resume on one process: world size 1 after 2
    assert r.returncode == 0, r.stderr
    rows = read_rows(d / "rows.jsonl")
    # the same rows, one per id (nothing stored was recomputed); stored rows come first in the file
    assert len(rows) == N and sorted(stable(rows)) == sorted(single[0])
    by_id = {row["id"]: row for row in rows}
    assert all(by_id[i]["restore_s"] == row["restore_s"] for i, row in stored.items())
    assert summary_values(out) == single[1]


def test_lock_held_elsewhere_fails_every_rank(tmp_path, single):
    out = tmp_path / "res"
    assert cli(out).returncode == 0  # creates the run directory
    with FileLock(str(run_dir(out) / ".lock")):
        r = cli(out, "--nproc", "2")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("another faceblur-bench run is writing") == 2  # both ranks refused


def test_set_and_network_metrics_sharded_equal_one_process(tmp_path, demo_data_root):
    # verification-dlib is a set metric (per-image descriptors stored by each rank, the LFW
    # 10-fold accuracy aggregated once by rank 0 over the union); detection-rate and
    # identity-dlib run MTCNN and dlib on every rank
    # 10 images: 20 verification pairs, enough for the 10 folds
    extra = ["--metrics", "psnr,detection-rate,identity-dlib,verification-dlib", "--limit", "10"]
    one, two = tmp_path / "one", tmp_path / "two"
    r = cli(one, *extra)
    assert r.returncode == 0, r.stderr
    r = cli(two, "--nproc", "2", *extra)
    assert r.returncode == 0, r.stderr
    assert stable(read_rows(run_dir(two) / "rows.jsonl")) == stable(read_rows(run_dir(one) / "rows.jsonl"))
    s1, s2 = summary_values(one), summary_values(two)
    assert s2 == s1
    assert s1["metrics"]["verification-dlib"][0] is not None  # a value, not an n/a on both sides
    d = run_dir(two)
    assert not list(d.glob("rows.rank*.jsonl")) and not list(d.glob("**/*.rank*.*"))


# -- signals: exit 130/143, no rank left behind, nothing stored lost ------------------------------
def _ranks_of(out: Path) -> list[int]:
    """Pids of live processes whose command line names ``out`` (the launcher and its ranks; the
    ranks run in sessions of their own, so their process group is not the launcher's)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                cmd, stat = (d / "cmdline").read_bytes(), (d / "stat").read_text()
            except OSError:
                continue
            if str(out).encode() in cmd and stat.rsplit(")", 1)[1].split()[0] != "Z":
                pids.append(int(d.name))
    return pids


def _start(out: Path, *extra: str, env: dict | None = None, ignore_sigint: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "faceblur_bench", *ARGS, "--out", str(out), *extra]
    # ignore_sigint: what a shell's `cmd &` / nohup does to the process it starts
    pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    return subprocess.Popen(cmd, env=env or env_for(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=pre)


def _wait_for(cond, what: str, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def _cleanup(p: subprocess.Popen, out: Path) -> None:
    """Kill whatever a failed test left: the launcher's group and every rank naming ``out``."""
    for pid in [p.pid, *_ranks_of(out)]:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    p.communicate(timeout=60)


def _stopped(p: subprocess.Popen, out: Path, code: int, said: str) -> None:
    """The launcher exits ``code`` saying ``said`` (no traceback), and no rank outlives it."""
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert said in err and "Traceback" not in err and "SignalException" not in err, err
    _wait_for(lambda: not _ranks_of(out), "the ranks to be gone", timeout=10)


def _sig_bits(pid: int, field: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field))
    return int(line.split()[1], 16)


def test_sigterm_during_rank_start_up_exits_143_and_leaves_no_rank(tmp_path):
    out = tmp_path / "res"
    p = _start(out, "--nproc", "2")
    try:
        _wait_for(lambda: len(_ranks_of(out)) >= 3, "the two ranks to start")  # launcher + 2 ranks
        os.kill(p.pid, signal.SIGTERM)  # the ranks are importing, or meeting in the rendezvous
        _stopped(p, out, 143, "terminated (SIGTERM)")
    finally:
        _cleanup(p, out)


def test_sigint_mid_run_exits_130_keeps_rows_and_resumes_to_the_same_rows(tmp_path, single):
    """Started like `nohup ... &` (SIGINT inherited as ignored): the ranks still take SIGINT."""
    out = tmp_path / "res"
    p = _start(out, "--nproc", "2", "--batch-size", "1", ignore_sigint=True)
    try:
        _wait_for(lambda: any(b"\n" in f.read_bytes() for f in out.glob("runs/demo/blurred/*/rows.rank*.jsonl")),
                  "a rank's first row")
        ranks = [pid for pid in _ranks_of(out) if pid != p.pid]
        for pid in ranks:  # freeze them mid-run, so the signal finds rows still to compute
            os.kill(pid, signal.SIGSTOP)
        assert len(ranks) == 2
        for pid in ranks:  # their SIGINT has a handler (the CLI's), is not ignored as the launcher's was
            assert _sig_bits(pid, "SigCgt") & (1 << (signal.SIGINT - 1)), pid
            assert not _sig_bits(pid, "SigIgn") & (1 << (signal.SIGINT - 1)), pid
        d = run_dir(out)
        before = {row["id"]: row for k in (0, 1) for row in read_rows(row_shard_path(d, k))}
        os.kill(p.pid, signal.SIGINT)
        for pid in ranks:
            os.kill(pid, signal.SIGCONT)
        _stopped(p, out, 130, "interrupted")
    finally:
        _cleanup(p, out)
    fold_row_shards(d, [t[0] for t in single[0]])
    stored = {row["id"]: row for row in read_rows(d / "rows.jsonl")}
    assert before and set(before) <= set(stored) and len(stored) < N  # nothing lost, not finished
    assert all(stored[i] == row for i, row in before.items())
    r = cli(out, "--nproc", "2")
    assert r.returncode == 0, r.stderr
    rows = read_rows(d / "rows.jsonl")
    assert sorted(stable(rows)) == sorted(single[0])  # one row per id; the stored ones come first
    assert all({row["id"]: row for row in rows}[i] == row for i, row in stored.items())  # not recomputed
    assert summary_values(out) == single[1]


def test_rank_waiting_for_a_peer_that_never_comes_exits_on_sigterm(tmp_path):
    """A rank blocked in the rendezvous (its peer died starting) cannot run a Python handler: the
    watchdog ends it, 143, within distributed.STOPPED_WAIT_S of the signal."""
    from faceblur_bench.engine.distributed import STOPPED_WAIT_S

    out = tmp_path / "res"
    port = free_port()
    env = {**env_for(), "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    p = _start(out, env=env)  # rank 0 of 2; rank 1 is never started

    def listening() -> bool:  # rank 0 serves the rendezvous store: it is inside init_process_group
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        _wait_for(listening, "rank 0's rendezvous store")
        time.sleep(0.5)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        waited = time.monotonic() - t0
        assert p.returncode == 143, err
        assert "rank 0: SIGTERM while waiting for the other ranks" in err and "Traceback" not in err, err
        assert STOPPED_WAIT_S <= waited < STOPPED_WAIT_S + 30, waited
        assert not list(out.glob("runs/*/*/*/rows*.jsonl"))
    finally:
        _cleanup(p, out)


def _children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``: the ranks torchrun's in-process agent forked."""
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                state, ppid = (d / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            if int(ppid) == pid and state != "Z":
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkilled_launcher_takes_its_ranks_with_it_and_the_run_resumes(tmp_path, single):
    """SIGKILL reaches no handler of the launcher: the ranks (its children, in sessions of their
    own) get SIGTERM from the kernel (PR_SET_PDEATHSIG), store, and exit; none runs on alone."""
    out = tmp_path / "res"
    p = _start(out, "--nproc", "2", "--batch-size", "1")
    try:
        _wait_for(lambda: any(b"\n" in f.read_bytes() for f in out.glob("runs/demo/blurred/*/rows.rank*.jsonl")),
                  "a rank's first row")
        ranks = _children(p.pid)
        assert len(ranks) == 2, ranks
        for pid in ranks:  # frozen, so the kill finds rows still to compute (and they cannot finish)
            os.kill(pid, signal.SIGSTOP)
        d = run_dir(out)
        before = {row["id"]: row for k in (0, 1) for row in read_rows(row_shard_path(d, k))}
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)  # not communicate(): the ranks hold its output pipes open
        for pid in ranks:  # the parent-death SIGTERM is pending; it is taken on resuming
            os.kill(pid, signal.SIGCONT)
        _wait_for(lambda: not any(_alive(pid) for pid in ranks), "the ranks to be gone", timeout=15)
    finally:
        _cleanup(p, out)
    fold_row_shards(d, [t[0] for t in single[0]])
    stored = {row["id"]: row for row in read_rows(d / "rows.jsonl")}
    assert before and all(stored[i] == row for i, row in before.items())  # intact
    assert len(stored) < N  # they stopped: they did not run the split to its end without a launcher
    r = cli(out)  # the lock is free: the rerun (one process) resumes
    assert r.returncode == 0, r.stderr
    rows = read_rows(d / "rows.jsonl")
    assert sorted(stable(rows)) == sorted(single[0])
    assert all({row["id"]: row for row in rows}[i] == row for i, row in stored.items())  # not recomputed
    assert summary_values(out) == single[1]


def test_rank_whose_launcher_died_before_it_started_stops_at_once(tmp_path):
    """The launcher can die between forking a rank and the rank's prctl: the rank checks that its
    parent is still the launcher named in its environment, and stops (143) when it is not."""
    from faceblur_bench.engine.distributed import LAUNCHER_PID_ENV

    env = {**env_for(), "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", LAUNCHER_PID_ENV: "1"}
    r = subprocess.run([sys.executable, "-m", "faceblur_bench", *ARGS, "--out", str(tmp_path / "res")],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 143, r.stderr
    assert "its launcher (pid 1) has exited" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "res").exists()  # stopped before any work
