"""Sharded evaluation with ``torch.distributed``: one run split across the ranks of a torchrun job.

Started by ``torchrun --nproc-per-node N -m faceblur_bench run ...`` (or ``faceblur-bench run
--nproc N``, which launches exactly that through :mod:`torch.distributed.run`). torchrun sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous (``MASTER_ADDR``/``MASTER_PORT``);
without them (a plain ``faceblur-bench run``) every function here is the single-process case.

Protocol of one sharded run (all ranks see the same results directory: a shared filesystem):

1. rank 0 takes the run lock (``.lock`` of the run directory) and holds it for the whole run on
   behalf of every rank; it folds the row shards a killed earlier job left behind into
   ``rows.jsonl`` (:func:`faceblur_bench.results.fold_row_shards`) and broadcasts "go" (or the
   lock error, which every rank then raises);
2. every rank reads the same stored rows, so every rank computes the same pending list; rank
   ``k`` of ``W`` scores ``pending[k::W]`` (deterministic, no padding, each id exactly once);
3. rank ``k`` appends its rows to ``rows.rank<k>.jsonl`` (fsynced per batch) and writes its
   set-metric state as feature files (names hash the ids, so ranks never collide);
4. barrier; rank 0 folds the shards into ``rows.jsonl`` in split order and computes the summary
   and every set metric once over the union; the summary is broadcast so that every rank
   returns the same dict.

A rank killed mid-run loses nothing it stored: its shard's complete lines are rows (a torn last
line is not) and the next invocation, on any number of ranks, folds them and resumes.

Signals: torchrun passes SIGINT/SIGTERM on to every rank; a rank computing stops at its next
bytecode (the CLI's handler), stores, meets the others at the barrier and exits 130/143. A rank
*waiting* in a collective (the rendezvous of ``init_process_group``, a barrier) for a peer that
has already died cannot run its Python handler: the wait is C++ and never returns. A watchdog
thread (:func:`_arm_signal_exit`) sees the signal through :func:`signal.set_wakeup_fd` and ends
such a rank with ``os._exit(128 + signum)`` once it has waited :data:`STOPPED_WAIT_S` seconds
past the signal; its rows are already on disk (fsynced per batch).

A launcher killed with SIGKILL (``run --nproc N``, or torchrun itself) cannot pass anything on:
each rank asks the kernel for SIGTERM when its parent dies (:func:`die_with_launcher`, Linux
``PR_SET_PDEATHSIG``), so it stops as above instead of running on alone, holding the run lock.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..errors import FaceblurError, ResultsLockedError, UsageError
from ..results import RunStore, fold_row_shards

T = TypeVar("T")

#: how long a rank waits at a barrier for the slowest rank (a shard of a large split on CPU)
BARRIER_TIMEOUT = timedelta(hours=6)

#: after SIGINT/SIGTERM, seconds a rank may stay blocked in a collective (waiting for its peers to
#: arrive after storing their rows) before it exits without them; below torchrun's 30 s to SIGKILL
STOPPED_WAIT_S = 5.0

#: collectives the main thread is in now (read by the watchdog thread)
_waiting = 0

#: the pid of the ``run --nproc`` launcher, set by :func:`launch` for its ranks (their parent:
#: torchrun's elastic agent runs inside the launcher and starts the ranks itself)
LAUNCHER_PID_ENV = "FACEBLUR_LAUNCHER_PID"

#: ``prctl`` option of <linux/prctl.h>: the signal this process gets when its parent dies
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` in ``[0, size)``, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def sharded(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The torchrun environment (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``); ``World()`` without it."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise UsageError("RANK / WORLD_SIZE / LOCAL_RANK are not integers",
                         "start sharded runs with torchrun (it sets them), or unset them") from None
    if size < 1 or not 0 <= rank < size:
        raise UsageError(f"RANK={rank} is outside WORLD_SIZE={size}",
                         "start sharded runs with torchrun (it sets them), or unset them")
    return World(rank, size, local)


def die_with_launcher() -> bool:
    """Make this rank get SIGTERM when the process that started it dies, even by SIGKILL.

    Called once at the start of a torchrun rank (``RANK`` set). The kernel sends the signal when
    the parent (the ``run --nproc`` launcher, whose in-process elastic agent forked the rank from
    its main thread; or a hand-started torchrun) exits; the CLI's handler then stores and exits
    143 like any SIGTERM. The launcher may have died before the request was made: when
    :data:`LAUNCHER_PID_ENV` names it and it is no longer this process's parent, the rank sends
    itself the SIGTERM at once. Returns whether the request was made (False: not Linux, or no
    ``prctl``; the rank then lives on until its work or a collective fails).
    """
    expected = os.environ.pop(LAUNCHER_PID_ENV, "")  # not for processes this rank may start
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        done = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if done and expected.isdigit() and os.getppid() != int(expected):  # it died before prctl
        sys.stderr.write(f"rank {os.environ.get('RANK', '?')}: its launcher (pid {expected}) has "
                         "exited: stopping\n")
        os.kill(os.getpid(), signal.SIGTERM)
    return done


def init(device: torch.device) -> World:
    """Join the torchrun job (once per process): NCCL for CUDA devices, gloo otherwise."""
    world = world_from_env()
    if not world.sharded:
        return world
    import torch.distributed as dist

    if not dist.is_initialized():
        _arm_signal_exit(world)
        backend = "nccl" if device.type == "cuda" else "gloo"
        with _collective():  # the rendezvous waits for every rank (one may have died starting)
            dist.init_process_group(backend=backend, timeout=BARRIER_TIMEOUT)
        # the process group's worker threads must be joined before the interpreter tears down:
        # a rank that exits with them alive can die in std::terminate (SIGABRT, "terminate called
        # without an active exception") after its work is done, failing the whole torchrun job
        atexit.register(_leave)
    return world


@contextmanager
def _collective() -> Iterator[None]:
    """Mark the main thread as waiting for the other ranks (see :func:`_arm_signal_exit`)."""
    global _waiting
    _waiting += 1
    try:
        yield
    finally:
        _waiting -= 1


def _arm_signal_exit(world: World) -> None:
    """Start the watchdog that ends this rank when a SIGINT/SIGTERM finds it stuck in a collective.

    The signal's number reaches a pipe from C (``signal.set_wakeup_fd``: written by the
    interpreter's own handler even while the main thread is blocked in C++). From then on, once
    the main thread has been in a collective for :data:`STOPPED_WAIT_S` seconds, the process exits
    ``128 + signum`` (130/143). Only signals with a Python handler reach the pipe (the CLI installs
    one for both); from a thread other than the main one nothing is armed.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # required by set_wakeup_fd; a full pipe drops bytes, not us
    try:
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_fd)
        os.close(write_fd)
        return
    threading.Thread(target=_watch, args=(read_fd, world.rank), name="faceblur-signal-exit",
                     daemon=True).start()


def _watch(read_fd: int, rank: int) -> None:
    stop = (signal.SIGINT, signal.SIGTERM)
    while True:
        got = [b for b in os.read(read_fd, 64) if b in stop]
        if got:
            break
    signum = got[0]
    blocked_since: float | None = None
    while True:
        now = time.monotonic()
        blocked_since = (blocked_since or now) if _waiting else None
        if blocked_since is not None and now - blocked_since >= STOPPED_WAIT_S:
            name = signal.Signals(signum).name
            os.write(2, (f"rank {rank}: {name} while waiting for the other ranks, which did not come "
                         f"(one stopped or died first): exiting; the rows it stored are kept\n").encode())
            os._exit(128 + signum)
        time.sleep(0.05)


def _leave() -> None:
    """Destroy this process's group at exit (local: no collective, safe after other ranks left)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, world: World) -> torch.device:
    """``cuda`` without an index becomes ``cuda:<local_rank>`` (one GPU per rank on a node)."""
    if world.sharded and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", world.local_rank % max(1, torch.cuda.device_count()))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def shard(items: Sequence[T], world: World) -> list[T]:
    """Rank ``k`` of ``W`` takes ``items[k::W]``: disjoint, covering, no padding, deterministic."""
    return list(items[world.rank::world.size])


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects; gloo and NCCL)."""
    if not world.sharded:
        return obj
    import torch.distributed as dist

    box = [obj]
    with _collective():
        dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.sharded:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world.size
    with _collective():
        dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.sharded:
        import torch.distributed as dist

        with _collective():
            dist.barrier()


@contextmanager
def open_store(run_dir: Path, wait: float, world: World, order: list[str]) -> Iterator[RunStore]:
    """The run's store for this rank, with the run lock held by rank 0 for every rank.

    Single process: ``RunStore(run_dir)`` (lock, ``rows.jsonl``), after folding shards a killed
    sharded job left. Sharded: rank 0 takes the lock and folds, then every rank writes its own
    ``rows.rank<k>.jsonl``; a lock that cannot be taken fails every rank with the same error.
    """
    if not world.sharded:
        with RunStore(run_dir, wait=wait) as store:
            fold_row_shards(run_dir, order)
            yield store
        return
    main = RunStore(run_dir, wait=wait) if world.is_main else None
    failure: tuple[str, str | None] | None = None
    if main is not None:
        try:
            main.__enter__()
            fold_row_shards(run_dir, order)
        except FaceblurError as exc:
            failure = (exc.message, exc.hint)
    failure = broadcast(failure, world)
    if failure is not None:
        raise ResultsLockedError(*failure)
    try:
        with RunStore(run_dir, wait=wait, rank=world.rank, lock=False) as store:
            yield store
    finally:
        if main is not None:
            main.__exit__(None, None, None)


def sum_timings(timings: dict[str, float], world: World) -> dict[str, float]:
    """Per-stage seconds summed over the ranks (what the run cost, not its wall time)."""
    total: dict[str, float] = {}
    for t in gather(timings, world):
        for k, v in t.items():
            total[k] = total.get(k, 0.0) + v
    return total


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (the children are started by torchrun)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def launch(nproc: int, argv: Sequence[str]) -> int:
    """``torchrun --standalone --nproc-per-node nproc -m faceblur_bench <argv>``; its exit code.

    ``argv`` is the command line after the program name (``run ...``), ``--nproc`` removed.
    Raises :class:`~faceblur_bench.errors.Terminated` (SIGTERM) or
    :class:`~faceblur_bench.errors.Interrupted` (SIGINT, SIGHUP, SIGQUIT) when torchrun's handler
    took the signal (it stops the ranks before).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    from ..errors import Interrupted, Terminated

    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0",
         "-m", "faceblur_bench", *strip_nproc(argv)])
    stop_with = signal.SIGTERM  # for ranks still running when torchrun returns (none, normally)
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # inherited by the ranks: die_with_launcher
    try:
        run(args)
    except SignalException as exc:  # torchrun's own handler: the ranks got the signal and stored
        stop_with = exc.sigval
        raise (Terminated() if exc.sigval == signal.SIGTERM else Interrupted()) from None
    except Interrupted as exc:  # ours, before torchrun had installed its handlers
        stop_with = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        raise
    except ChildFailedError as exc:  # a rank failed; its own message is already on stderr
        failures = exc.failures
        codes = [f.exitcode for f in failures.values() if getattr(f, "exitcode", 0) > 0]
        sys.stderr.write(f"sharded run failed: {len(failures) or 'a'} rank(s) failed "
                         f"(their messages are above)\n")
        return max(codes) if codes else 1  # a rank's usage error (2) stays 2; a killed rank is 1
    finally:
        os.environ.pop(LAUNCHER_PID_ENV, None)
        _stop_ranks(stop_with)
    return 0


def _rank_pids() -> list[int]:
    """Live child processes of this one that run ``faceblur_bench`` (the ranks torchrun started;
    they run in sessions of their own, so no signal to our process group reaches them)."""
    me, pids = str(os.getpid()), []
    proc = Path("/proc")
    for d in proc.iterdir() if proc.is_dir() else ():
        if not d.name.isdigit():
            continue
        try:
            state, ppid = (d / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = (d / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if ppid == me and state != "Z" and b"faceblur_bench" in cmdline:
            pids.append(int(d.name))
    return pids


def _stop_ranks(sig: int, timeout: float = 30.0) -> None:
    """Stop the ranks torchrun left running: ``sig``, then SIGKILL after ``timeout`` seconds.

    torchrun signals its workers when it takes a signal, except when the signal lands while it
    is still starting them (between their fork and its bookkeeping): they would live on after
    the launcher, waiting forever for a rendezvous store that has gone.
    """
    pids = _rank_pids()
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
    end = time.monotonic() + timeout
    while pids and time.monotonic() < end:
        time.sleep(0.05)
        pids = [p for p in pids if p in _rank_pids()]
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
