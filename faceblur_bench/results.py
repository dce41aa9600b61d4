"""Results store: per-image rows appended as they complete, set-metric state, run summary.

Layout of a results directory (default ``results/``)::

    runs/<split-slug>/<method>/<run_key>/
        rows.jsonl            one JSON object per image, appended + fsynced batch by batch
        rows.rank<k>.jsonl    rows of rank k of a sharded run (torchrun) not yet folded into
                              rows.jsonl; every reader reads them after rows.jsonl
        features/<metric>/    set-metric per-image state, one atomically written .npz per batch
        images/<id>.png       restored images (``--save-images``)
        summary.json          run summary with provenance, rewritten atomically
        .lock                 held while a run writes here

``<split-slug>`` is the split name with ``/`` replaced by ``__``; ``<run_key>`` hashes what makes
two runs comparable (method, options, checkpoint sha256, split and its fingerprint), so a re-run
with the same key resumes and a run on different data or weights never mixes with it.

Readers for tables and checks live in :mod:`faceblur_bench.report.store`.

Crash safety: a row line is only data once its trailing newline is on disk; a truncated last
line (killed mid-write) is discarded and cut off before the next append. Rows are written after
the batch's feature files and images, so a stored row always has its state.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from filelock import FileLock, Timeout

from .errors import ResultsLockedError
from .faults import crash_point

SCHEMA = 1


def split_slug(split_full_name: str) -> str:
    """Folder name of a split under ``runs/``: ``mspl-center/ffhq`` -> ``mspl-center__ffhq``."""
    return split_full_name.replace("/", "__")


def split_parts(split_full_name: str) -> tuple[str, str | None]:
    """``"mspl-center/ffhq"`` -> ``("mspl-center", "ffhq")``; ``"demo"`` -> ``("demo", None)``."""
    name, _, subset = str(split_full_name).partition("/")
    return name, subset or None


def config_key(summary: dict[str, Any]) -> tuple[str, str, str, str]:
    """What makes two stored runs "the same method configuration": ``(method, checkpoint
    identity, options, protocol)`` — the checkpoint's sha256 (its path when no hash was
    recorded), the method options as sorted JSON and the evaluation protocol (``s2s`` unless the
    run was single-to-video). The leaderboard, the tables, ``check`` and ``figure`` all pair
    and pick runs with this key (plus the split)."""
    ck = summary.get("checkpoint_sha256") or summary.get("checkpoint") or ""
    return (str(summary.get("method")), str(ck),
            json.dumps(summary.get("method_options") or {}, sort_keys=True, default=str),
            str(summary.get("protocol") or "s2s"))


def run_dir(results_dir: str | Path, split_full_name: str, method: str, key: str) -> Path:
    """Where a run lives: ``<results>/runs/<split-slug>/<method>/<run_key>/``."""
    safe_method = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in method)
    return Path(results_dir) / "runs" / split_slug(split_full_name) / safe_method / key


def image_name(sample_id: str) -> str:
    """File name of a sample's saved restoration, injective over ids.

    Ids made only of ``[A-Za-z0-9-_.+]`` are kept as they are; any other id is escaped (other
    characters -> ``_``) and gets ``~`` plus 12 hex digits of its sha256 — ``~`` never occurs in a
    kept id, so ``a b`` and ``a_b`` (or ``celeba/001`` and ``celeba_001``) never share a file.
    """
    safe = "".join(c if c.isalnum() and c.isascii() or c in "-_.+" else "_" for c in sample_id)
    if safe != sample_id or safe in ("", ".", ".."):
        safe += "~" + hashlib.sha256(sample_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return safe + ".png"


def image_path(run_dir: str | Path, sample_id: str) -> Path:
    """``<run_dir>/images/<image_name(id)>`` (written by ``run --save-images``, read by ``figure``)."""
    return Path(run_dir) / "images" / image_name(sample_id)


def run_key(identity: dict[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.name == "summary.json":
            crash_point("summary-write")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_rows(path: Path) -> list[dict]:
    """Complete, valid rows of a ``rows.jsonl`` (a truncated or corrupt line is skipped).

    For a file named ``rows.jsonl`` the rank shards beside it (``rows.rank<k>.jsonl``, a sharded
    run in progress or killed) follow its rows, in rank order: shards are always newer than
    ``rows.jsonl`` (they are folded into it at the start and the end of every run), so "the
    latest row of an id wins" stays true over the union.
    """
    path = Path(path)
    rows, _ = _scan_rows(path)
    if path.name == "rows.jsonl":
        for shard in row_shard_paths(path.parent):
            rows.extend(_scan_rows(shard)[0])
    return rows


def row_shard_path(directory: Path, rank: int) -> Path:
    """Where rank ``rank`` of a sharded run appends its rows: ``rows.rank<rank>.jsonl``."""
    return Path(directory) / f"rows.rank{rank}.jsonl"


def row_shard_paths(directory: Path) -> list[Path]:
    """The row shards present in a run directory, in rank order."""
    found = []
    for p in Path(directory).glob("rows.rank*.jsonl"):
        num = p.name[len("rows.rank"):-len(".jsonl")]
        if num.isdigit():
            found.append((int(num), p))
    return [p for _, p in sorted(found)]


def fold_row_shards(directory: Path, order: list[str] | None = None) -> int:
    """Append the complete rows of every rank shard to ``rows.jsonl`` (fsynced), then delete the
    shards; returns the number of rows moved. Call only while holding the run lock.

    ``order`` (sample ids in split order) sorts the moved rows, so a sharded run leaves the same
    ``rows.jsonl`` as one process (ids not in ``order`` keep their place at the end). A crash
    between the append and the deletes leaves rows twice: identical duplicates, and the reader's
    "latest row wins" gives the same result.
    """
    directory = Path(directory)
    shards = row_shard_paths(directory)
    if not shards:
        return 0
    rows: list[dict] = []
    for p in shards:
        rows.extend(_scan_rows(p)[0])
    if order is not None and rows:
        pos = {i: k for k, i in enumerate(order)}
        rows.sort(key=lambda r: pos.get(r["id"], len(pos)))  # stable: retries of an id keep order
    main = directory / "rows.jsonl"
    if rows:
        _cut_torn_tail(main)
        blob = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        with open(main, "a", encoding="utf-8") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
    for p in shards:
        p.unlink(missing_ok=True)
    return len(rows)


def _cut_torn_tail(path: Path) -> None:
    """Truncate a half-written last line so the next append starts on a clean line."""
    if not path.exists():
        return
    _, good_end = _scan_rows(path)
    if good_end < path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())


def _scan_rows(path: Path) -> tuple[list[dict], int]:
    """(valid rows, byte offset just past the last valid complete line)."""
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    rows: list[dict] = []
    good_end = 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # truncated last line: not data
        line = data[pos:nl]
        pos = nl + 1
        if not line.strip():
            good_end = pos
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # corrupt line (e.g. torn write in the middle): skipped
        if isinstance(row, dict) and "id" in row and "status" in row:
            rows.append(row)
            good_end = pos
    return rows, good_end


class RunStore:
    """Writer for one run directory. Use as a context manager (takes the directory lock).

    A rank of a sharded run passes ``rank``: its rows go to ``rows.rank<rank>.jsonl``; only rank 0
    takes the lock (``lock=True``, it holds it for every rank), the others pass ``lock=False``
    and enter only after rank 0 has it (see :mod:`faceblur_bench.engine.distributed`).
    """

    def __init__(self, directory: Path, wait: float = 0.0, rank: int | None = None, lock: bool = True):
        self.dir = Path(directory)
        self.rows_path = self.dir / "rows.jsonl" if rank is None else row_shard_path(self.dir, rank)
        self.summary_path = self.dir / "summary.json"
        self.wait = wait
        self._lock = FileLock(str(self.dir / ".lock")) if lock else None

    def __enter__(self) -> "RunStore":
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._lock is not None:
            try:
                self._lock.acquire(timeout=self.wait)
            except Timeout:
                raise ResultsLockedError(
                    f"another faceblur-bench run is writing {self.dir}",
                    "wait for it to finish (or pass --wait SECONDS), or use a different --out directory",
                ) from None
        self._repair()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            self._lock.release()

    def _repair(self) -> None:
        """Cut a half-written last line so the next append starts on a clean line."""
        if not self.rows_path.exists():
            return
        _, good_end = _scan_rows(self.rows_path)
        size = self.rows_path.stat().st_size
        if good_end < size:
            with open(self.rows_path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())

    # rows ---------------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """Every stored row of the run (``rows.jsonl`` and the rank shards)."""
        return read_rows(self.dir / "rows.jsonl")

    def append_rows(self, rows: Iterable[dict]) -> None:
        blob = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        if not blob:
            return
        with open(self.rows_path, "a", encoding="utf-8") as f:
            half = len(blob) - (len(blob) - blob.rfind("\n", 0, len(blob) - 1)) // 2  # inside the last line
            f.write(blob[:half])
            f.flush()
            os.fsync(f.fileno())
            crash_point("rows-write")  # a crash here leaves a torn line: the reader must discard it
            f.write(blob[half:])
            f.flush()
            os.fsync(f.fileno())

    # set-metric state -----------------------------------------------------------------------------
    def write_features(self, metric: str, ids: list[str], feats: np.ndarray) -> None:
        d = self.dir / "features" / metric
        d.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256("\0".join(ids).encode()).hexdigest()[:16]
        path = d / f"{h}.npz"
        fd, tmp = tempfile.mkstemp(prefix=".feat.", suffix=".npz", dir=d)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, ids=np.array(ids, dtype=object).astype(str), features=np.asarray(feats))
            f.flush()
            os.fsync(f.fileno())
        crash_point("features-write")
        os.replace(tmp, path)

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.summary_path, summary)


def read_features(run_dir: Path, metric: str, ids: list[str]) -> np.ndarray | None:
    d = Path(run_dir) / "features" / metric
    found: dict[str, np.ndarray] = {}
    if d.is_dir():
        for p in sorted(d.glob("*.npz")):
            try:
                with np.load(p, allow_pickle=False) as z:
                    for i, f in zip(z["ids"].tolist(), z["features"]):
                        found.setdefault(i, f)
            except Exception:  # a torn feature file: its rows were never written
                continue
    if not ids:
        return np.zeros((0, 0))
    if any(i not in found for i in ids):
        return None
    return np.stack([found[i] for i in ids])
