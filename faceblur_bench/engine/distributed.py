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
"""

from __future__ import annotations

import atexit

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


def init(device: torch.device) -> World:
    """Join the torchrun job (once per process): NCCL for CUDA devices, gloo otherwise."""
    world = world_from_env()
    if not world.sharded:
        return world
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=BARRIER_TIMEOUT)
        # the process group's worker threads must be joined before the interpreter tears down:
        # a rank that exits with them alive can die in std::terminate (SIGABRT, "terminate called
        # without an active exception") after its work is done, failing the whole torchrun job
        atexit.register(_leave)
    return world


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
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.sharded:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.sharded:
        import torch.distributed as dist

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
    """
    import signal

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    from ..errors import Interrupted, Terminated

    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0",
         "-m", "faceblur_bench", *strip_nproc(argv)])
    try:
        run(args)
    except SignalException as exc:  # torchrun's own handler: the ranks got the signal and stored
        raise (Terminated() if exc.sigval == signal.SIGTERM else Interrupted()) from None
    except ChildFailedError as exc:  # a rank failed; its own message is already on stderr
        failures = exc.failures
        codes = [f.exitcode for f in failures.values() if getattr(f, "exitcode", 0) > 0]
        sys.stderr.write(f"sharded run failed: {len(failures) or 'a'} rank(s) failed "
                         f"(their messages are above)\n")
        return max(codes) if codes else 1  # a rank's usage error (2) stays 2; a killed rank is 1
    return 0
