"""Results store: per-image rows appended as they complete, set-metric state, run summary.

Layout of a results directory (default ``results/``)::

    runs/<split-slug>/<method>/<run_key>/
        rows.jsonl            one JSON object per image, appended + fsynced batch by batch
        rows.rank<k>.jsonl    rows of rank k of a sharded run (torchrun) not yet folded into
                              rows.jsonl; every reader reads them after rows.jsonl
        features/<metric>/    set-metric per-image state, one atomically written .npz per batch
        images/<id>.png       restored images (``--save-images``)
        summary.json          run summary with provenance, rewritten atomically
        sessions.jsonl        one provenance record per invocation that computed something
                              (rows carry its index as ``session``)
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
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Self

import numpy as np
from filelock import FileLock, Timeout

from .errors import (
    DiskFullError,
    FaceblurError,
    ResultsLockedError,
    ResultsPathError,
    UsageError,
    is_disk_full,
    warn_stored,
)
from .faults import crash_point
from .files import file_kind, link_target, open_regular, outside_link, read_regular
from .text import printable

SCHEMA = 1


def split_slug(split_full_name: str) -> str:
    """Folder (and ``<out>/<slug>.md``) name of a split: ``mspl-center/ffhq`` ->
    ``mspl-center__ffhq``; escape codes and control characters are removed
    (:func:`~faceblur_bench.text.printable`), so no file name holds a newline or ESC."""
    return printable(split_full_name).replace("/", "__")


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


def current_umask() -> int:
    """The process umask (read without changing it where ``/proc`` tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: read by setting, then restore at once
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Mode a plain ``open(path, "w")`` would give a new file: ``0o666 & ~umask``.

    ``tempfile.mkstemp`` creates 0600 files; an output renamed into place keeps that mode, and
    CI artifact viewers or other users could not read it. Every atomic writer chmods to this.
    """
    return 0o666 & ~current_umask()


def check_write_inside(root: str | Path, path: str | Path) -> None:
    """The writers' containment rule (:func:`faceblur_bench.files.outside_link`, the same rule
    every reader applies): raise :class:`ResultsPathError` when ``path`` — a file or directory
    about to be written under the results root ``root`` — leads out of it through a symlink."""
    link = outside_link(root, path)
    if link is not None:
        raise ResultsPathError(
            f"{link} is a symlink to {link_target(link)}, outside the results directory {root}: "
            "nothing is written through it",
            f"remove the link (or pass another --out); results are only written inside {root}")


def results_os_error(exc: OSError, path: str | Path, detail: str = "") -> FaceblurError | None:
    """The typed error for an ``OSError`` met while writing ``path`` under a results root, or
    None for one that is not about the path (let it propagate): a full disk is a
    :class:`DiskFullError` (exit 1), a read-only file system, a permission, a file where a
    directory belongs (or the reverse) or a symlink refused by ``O_NOFOLLOW`` a
    :class:`ResultsPathError` (exit 2)."""
    import errno

    if is_disk_full(exc):
        return DiskFullError(path, detail)
    where = exc.filename or path
    why = {errno.EROFS: "is on a read-only file system",
           errno.EACCES: "is not writable (permission denied)",
           errno.EPERM: "is not writable (operation not permitted)",
           errno.ENOTDIR: "has a file where a directory belongs",
           errno.EISDIR: "is a directory, not a file",
           errno.EEXIST: "exists and is not a directory",
           errno.ELOOP: "is a symlink (stored files are never written through a link)"}.get(exc.errno)
    if why is None:
        return None
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):  # name the file that is in the way
        blocker = next((a for a in (Path(where), *Path(where).parents)
                        if a.exists() and not a.is_dir()), None)
        if blocker is not None:
            where, why = blocker, "is a file where a directory belongs"
    return ResultsPathError(f"cannot write {path}: {where} {why}",
                            "pass --out on a writable directory (or remove what is in the way); "
                            "results already stored there are kept")


def _raise_typed(exc: BaseException, path: str | Path, detail: str = "") -> None:
    """Raise :func:`results_os_error`'s typed error for ``exc`` (an OSError) when there is one."""
    if isinstance(exc, OSError):
        typed = results_os_error(exc, path, detail)
        if typed is not None:
            raise typed from None


def _append(path: Path, blob: bytes, detail: str, crash: str | None = None) -> None:
    """Append ``blob`` to ``path`` (created 0o666 & ~umask) and fsync; never through a symlink
    (``O_NOFOLLOW``). On failure the file is cut back to its previous size — rows and sessions
    already stored stay intact — and the error is typed (:func:`results_os_error`).
    ``crash``: a fault-injection point half-way through the last line."""
    start = None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "ab") as f:
            start = os.fstat(fd).st_size
            half = len(blob) - (len(blob) - blob.rfind(b"\n", 0, len(blob) - 1)) // 2 if crash else len(blob)
            f.write(blob[:half])
            f.flush()
            os.fsync(f.fileno())
            if crash is not None:
                crash_point(crash)  # a crash here leaves a torn line: the reader must discard it
                f.write(blob[half:])
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        if start is not None:
            try:
                os.truncate(path, start)
            except OSError:
                pass
        _raise_typed(exc, path, detail)
        raise


#: a temp file of an atomic write older than this was left by a killed writer (a live write
#: takes milliseconds; concurrent runs may share a leaderboard, so younger ones are left alone)
STALE_TEMP_S = 60.0


def remove_stale_temps(path: Path, older_than: float = STALE_TEMP_S) -> list[Path]:
    """Remove ``.<name>.*.tmp`` siblings of ``path`` older than ``older_than`` seconds (left by a
    writer killed just before its rename); returns what was removed."""
    import time

    removed = []
    now = time.time()
    for p in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        try:
            if now - p.lstat().st_mtime >= older_than:
                p.unlink()
                removed.append(p)
        except OSError:  # gone already (another run cleaned it) or not ours to remove
            pass
    return removed


def atomic_write_text(path: str | Path, text: str, root: str | Path | None = None) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory + fsync + rename.

    ``root``: the results root ``path`` must stay inside (:func:`check_write_inside`): a write
    under ``--out`` passes it, a file the user named explicitly (``--leaderboard``, ``--json``,
    ``table --output``) is the user's choice. The rename replaces a symlink at ``path`` itself,
    never the file it points to.

    The file gets the mode a plain write would (``0o666 & ~umask``, see :func:`new_file_mode`),
    not the 0600 of the temp file. Stale temp files of earlier writes of ``path`` are removed
    first (:func:`remove_stale_temps`); on failure the temp file is removed, and a full disk is
    a :class:`DiskFullError` naming ``path``. The one text writer for every output
    (summary.json, tables, leaderboard, ``score --json``).
    """
    path = Path(path)
    if root is not None:
        check_write_inside(root, path)
    if path.is_dir():
        raise ResultsPathError(f"cannot write {path}: it is a directory",
                               "name a file (or remove the directory)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _raise_typed(exc, path.parent)
        raise
    remove_stale_temps(path)
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")), f".{path.name}.", ".tmp",
                  crash="summary-write" if path.name == "summary.json" else None)


def _atomic_write(path: Path, write: Callable[[BinaryIO], Any], prefix: str, suffix: str,
                  crash: str | None = None, detail: str = "") -> None:
    """``write(f)`` into a temp file ``<prefix>*<suffix>`` beside ``path``, fsync, chmod to a plain
    write's mode, rename onto ``path``; on any failure the temp file is removed and a full disk
    is a :class:`DiskFullError` naming ``path`` (and ``detail``). ``crash``: the fault-injection
    point just before the rename (:mod:`faceblur_bench.faults`)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as exc:
        _raise_typed(exc, path, detail)
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), new_file_mode())
            os.fsync(f.fileno())
        if crash is not None:
            crash_point(crash)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _raise_typed(exc, path, detail)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n")


def json_default(o: Any) -> Any:
    """JSON form of the non-JSON values the store accepts (numpy scalars/arrays, paths)."""
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
    """Complete, valid rows of a ``rows.jsonl`` (a truncated, corrupt or malformed line is
    skipped; malformed complete lines are reported with a :class:`ResultsWarning`).

    For a file named ``rows.jsonl`` the rank shards beside it (``rows.rank<k>.jsonl``, a sharded
    run in progress or killed) follow its rows, in rank order: shards are always newer than
    ``rows.jsonl`` (they are folded into it at the start and the end of every run), so "the
    latest row of an id wins" stays true over the union.
    """
    path = Path(path)
    rows = scan_rows(path).rows
    if path.name == "rows.jsonl":
        for shard in row_shard_paths(path.parent):
            rows.extend(scan_rows(shard).rows)
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
        rows.extend(scan_rows(p, warn=False).rows)
    if order is not None and rows:
        pos = {i: k for k, i in enumerate(order)}
        rows.sort(key=lambda r: pos.get(r["id"], len(pos)))  # stable: retries of an id keep order
    main = directory / "rows.jsonl"
    if rows:
        _cut_torn_tail(main)
        blob = "".join(json.dumps(r, default=json_default) + "\n" for r in rows)
        _append(main, blob.encode("utf-8"), "folding the rows of the ranks")
    for p in shards:
        p.unlink(missing_ok=True)
    return len(rows)


def _cut_torn_tail(path: Path) -> None:
    """Truncate a half-written last line so the next append starts on a clean line."""
    if not path.exists():
        return
    good_end = scan_rows(path, warn=False).good_end
    if good_end < path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())


@dataclass
class RowScan:
    """What :func:`scan_rows` found in a ``rows.jsonl``."""

    rows: list[dict]
    #: byte offset just past the last valid complete line
    good_end: int = 0
    #: ``(line number, why)`` of every complete line that is not a valid row
    discarded: list[tuple[int, str]] = field(default_factory=list)


#: ``meta`` fields of a row that readers group by: integers (or null) when present
META_INTEGERS = ("kernel_size", "n_frames", "frame_index")


def row_problem(row: Any) -> str | None:
    """Why ``row`` is not a valid stored row, or None.

    A row is an object with a string ``id``, a string ``status``, ``metrics`` an object of
    numbers (or null: unscored), ``reason`` a string or null, ``meta`` / ``metric_errors``
    objects, ``restore_s`` a number, ``warnings`` a list, ``session`` an integer >= 0 and
    ``added_metrics`` an object of session indices when present, and ``meta``'s
    :data:`META_INTEGERS` integers >= 0 or null. Anything else (a hand edit, a foreign tool) is
    discarded like a torn line, so one bad line can never make every resume or ``check`` crash.
    """
    if not isinstance(row, dict):
        return f"not an object ({type(row).__name__})"
    if not isinstance(row.get("id"), str):
        return f"'id' is not a string ({type(row.get('id')).__name__})"
    if not isinstance(row.get("status"), str):
        return f"'status' is not a string ({type(row.get('status')).__name__})"
    metrics = row.get("metrics", {})
    if not isinstance(metrics, dict):
        return f"'metrics' is not an object ({type(metrics).__name__})"
    for k, v in metrics.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"metric {k!r} is not a number ({type(v).__name__} {str(v)[:20]!r})"
    if row.get("reason") is not None and not isinstance(row["reason"], str):
        return f"'reason' is not a string ({type(row['reason']).__name__})"
    for k in ("meta", "metric_errors"):
        if k in row and row[k] is not None and not isinstance(row[k], dict):
            return f"{k!r} is not an object ({type(row[k]).__name__})"
    meta = row.get("meta") or {}
    for k in META_INTEGERS:  # tables and plots group rows by them
        v = meta.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            return f"'meta.{k}' is not an integer >= 0 ({type(v).__name__} {str(v)[:20]!r})"
    rs = row.get("restore_s")
    if rs is not None and (isinstance(rs, bool) or not isinstance(rs, (int, float))):
        return f"'restore_s' is not a number ({type(rs).__name__})"
    if "warnings" in row and not isinstance(row["warnings"], list):
        return f"'warnings' is not a list ({type(row['warnings']).__name__})"
    sess = row.get("session")
    if sess is not None and (isinstance(sess, bool) or not isinstance(sess, int) or sess < 0):
        return f"'session' is not an integer >= 0 ({type(sess).__name__} {str(sess)[:20]!r})"
    added = row.get("added_metrics")
    if added is not None and (not isinstance(added, dict) or any(
            isinstance(v, bool) or not isinstance(v, int) for v in added.values())):
        return "'added_metrics' is not an object of session indices"
    return None


def scan_rows(path: Path, warn: bool = True) -> RowScan:
    """Valid rows of ``path`` in file order, the end of the last valid complete line, and the
    discarded lines (each reported with a :class:`ResultsWarning` naming the file and line)."""
    path = Path(path)
    if not path.exists():
        return RowScan([])
    try:
        data = read_regular(path)
    except OSError as exc:  # a directory or FIFO named rows.jsonl: no row is readable
        if warn:
            warn_stored(f"{path}: not read ({exc.strerror or exc}); no row of it is used",
                          stacklevel=2)
        return RowScan([])
    scan = RowScan([])
    pos = 0
    line_no = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # truncated last line: not data (a crash mid-write; cut off by the next run)
        line = data[pos:nl]
        pos = nl + 1
        line_no += 1
        if not line.strip():
            scan.good_end = pos
            continue
        try:
            row = json.loads(line)
            why = row_problem(row)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = f"not valid JSON ({type(exc).__name__})"
        if why is None:
            row.setdefault("metrics", {})
            scan.rows.append(row)
            scan.good_end = pos
        else:
            scan.discarded.append((line_no, why))
    if warn:
        for n, why in scan.discarded:
            warn_stored(
                f"{path}:{n}: row discarded ({why}); its image is scored again on the next run",
                stacklevel=2)
    return scan


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True  # NaN == NaN: both unscored
    return a == b


def latest_rows(rows: Iterable[dict]) -> tuple[dict[str, dict], list[dict]]:
    """One row per id from rows in file order, and the conflicts found.

    A later row replaces an earlier one (a retried failure, or a row adding metrics) — except
    when the id already has an ``ok`` row and the later row disagrees with it (a different value
    for a metric both hold, or a failure): the run never recomputes an ok image, so such a row
    is foreign; the first ok row is kept and the conflict returned as ``{"id", "metric",
    "kept", "ignored"}`` for the caller to report.
    """
    by_id: dict[str, dict] = {}
    conflicts: list[dict] = []
    for r in rows:
        old = by_id.get(r["id"])
        if old is not None and old["status"] == "ok":
            if r["status"] != "ok":
                conflicts.append({"id": r["id"], "metric": None, "kept": "ok",
                                  "ignored": r["status"]})
                continue
            bad = next((k for k in r["metrics"] if k in old["metrics"]
                        and not _same_value(old["metrics"][k], r["metrics"][k])), None)
            if bad is not None:
                conflicts.append({"id": r["id"], "metric": bad, "kept": old["metrics"][bad],
                                  "ignored": r["metrics"][bad]})
                continue
        by_id[r["id"]] = r
    return by_id, conflicts


def _remove_stale_temp_files(directory: Path) -> list[Path]:
    """Temp files a killed writer left in a run directory (the caller holds its lock)."""
    removed = []
    patterns = (".summary.json.*.tmp", "features/*/.feat.*.npz", "images/.*.png.tmp")
    for pattern in patterns:
        for p in directory.glob(pattern):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _cut_after_last_newline(path: Path) -> None:
    """Cut a half-written last line (no trailing newline: a write torn by a crash) so the next
    append starts on a clean line; never through a symlink (``O_NOFOLLOW``)."""
    if not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "r+b") as f:
            data = f.read()
            good_end = data.rfind(b"\n") + 1
            if good_end < len(data):
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        _raise_typed(exc, path)
        raise


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

    def __enter__(self) -> Self:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # --out or a directory under it is a file, a read-only disk, ...
            _raise_typed(exc, self.dir)
            raise
        self._check_contained()
        if self._lock is not None:
            try:
                self._lock.acquire(timeout=self.wait)
            except Timeout:
                raise ResultsLockedError(
                    f"another faceblur-bench run is writing {self.dir}",
                    "wait for it to finish (or pass --wait SECONDS), or use a different --out directory",
                ) from None
            except OSError as exc:
                _raise_typed(exc, self.dir / ".lock")
                raise
            _remove_stale_temp_files(self.dir)  # only the lock holder may clean up
        self._repair()
        return self

    #: what a run writes in its directory (``rows.rank<k>.jsonl`` and ``features/<metric>`` too)
    STORED = ("rows.jsonl", "sessions.jsonl", "summary.json", ".lock", "features", "images")

    def _check_contained(self) -> None:
        """Nothing this store writes (or reads back) may lead out of its directory through a
        symlink (:func:`check_write_inside`), and the stored files must be files: a planted
        link or a directory named ``rows.jsonl`` stops the run with an error naming it, before
        any byte is written — nothing stored is removed."""
        paths = [self.dir / n for n in self.STORED] + row_shard_paths(self.dir)
        feats = self.dir / "features"
        if feats.is_dir() and not feats.is_symlink():
            paths += sorted(feats.iterdir())
        for p in paths:
            check_write_inside(self.dir, p)
        for n in ("rows.jsonl", "sessions.jsonl", "summary.json", self.rows_path.name):
            p = self.dir / n
            if p.exists() and not p.is_file():
                raise ResultsPathError(
                    f"{p} is {file_kind(p.stat().st_mode)}, not a file: this run's store is damaged",
                    "move it away (nothing is deleted for you), or pass another --out")

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()

    def _repair(self) -> None:
        """Cut a half-written last line (no trailing newline: a write torn by a crash) so the
        next append starts on a clean line. Complete malformed lines are left in place: readers
        discard them with a warning and the summary counts them."""
        _cut_after_last_newline(self.rows_path)

    # rows ---------------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """Every stored row of the run (``rows.jsonl`` and the rank shards)."""
        return read_rows(self.dir / "rows.jsonl")

    def append_rows(self, rows: Iterable[dict]) -> None:
        """Append rows (one JSON line each) and fsync; a full disk cuts the partial batch off
        (stored rows stay intact) and is a :class:`DiskFullError` naming the file."""
        blob = "".join(json.dumps(r, default=json_default) + "\n" for r in rows)
        if blob:
            _append(self.rows_path, blob.encode("utf-8"), "appending rows", crash="rows-write")

    # set-metric state -----------------------------------------------------------------------------
    def write_features(self, metric: str, ids: list[str], feats: np.ndarray) -> None:
        d = self.dir / "features" / metric
        check_write_inside(self.dir, d)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _raise_typed(exc, d)
            raise
        h = hashlib.sha256("\0".join(ids).encode()).hexdigest()[:16]
        path = d / f"{h}.npz"
        _atomic_write(path, lambda f: np.savez(f, ids=np.array(ids, dtype=object).astype(str),
                                               features=np.asarray(feats)),
                      ".feat.", ".npz", crash="features-write", detail="writing per-image metric state")

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.summary_path, summary)

    # sessions -------------------------------------------------------------------------------------
    @property
    def sessions_path(self) -> Path:
        return self.dir / "sessions.jsonl"

    def sessions(self) -> list[dict]:
        """Session records in order (index = position); see :meth:`start_session`."""
        return read_sessions(self.dir)

    def start_session(self, record: dict) -> int:
        """Append one session record (provenance of an invocation that computes something) and
        return its index, which the rows written in that session carry as ``session``."""
        index = max((r["index"] for r in self.sessions()), default=-1) + 1
        line = json.dumps({**record, "index": index}, default=json_default) + "\n"
        _cut_after_last_newline(self.sessions_path)  # a torn last line (killed mid-write)
        _append(self.sessions_path, line.encode("utf-8"), "appending the session record")
        return index


def session_problem(rec: Any) -> str | None:
    """Why ``rec`` (one line of ``sessions.jsonl``) is not a session record, or None: an object
    whose ``index`` is an integer >= 0 and whose ``date`` (when present) is a string or null."""
    if not isinstance(rec, dict):
        return f"not an object ({type(rec).__name__})"
    idx = rec.get("index")
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
        return f"'index' is not an integer >= 0 ({type(idx).__name__} {str(idx)[:20]!r})"
    if rec.get("date") is not None and not isinstance(rec["date"], str):
        return f"'date' is not a string ({type(rec['date']).__name__})"
    return None


def read_sessions(run_dir: str | Path) -> list[dict]:
    """``<run_dir>/sessions.jsonl``: the valid session records in file order ([] when there is
    none). A torn last line is not data; a complete line that is not a session record
    (:func:`session_problem`), or repeats an index already read, is discarded with a
    :class:`ResultsWarning` naming the file and line."""
    path = Path(run_dir) / "sessions.jsonl"
    if not path.exists():
        return []
    try:
        data = read_regular(path)
    except OSError as exc:
        warn_stored(f"{path}: not read ({exc.strerror or exc}); no session is known",
                      stacklevel=2)
        return []
    out: list[dict] = []
    seen: set[int] = set()
    lines = data.split(b"\n")[:-1]  # the part after the last newline is torn: not data
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            why = session_problem(rec)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = f"not valid JSON ({type(exc).__name__})"
        if why is None and rec["index"] in seen:
            why = f"index {rec['index']} repeats an earlier session"
        if why is not None:
            warn_stored(f"{path}:{n}: session record discarded ({why})", stacklevel=2)
            continue
        seen.add(rec["index"])
        out.append(rec)
    return out


def _feature_files(run_dir: str | Path, metric: str) -> dict[str, np.ndarray]:
    """The typed reader of ``<run_dir>/features/<metric>/*.npz``: per-image state by id.

    A torn file (killed mid-write: its rows were never written) is skipped silently; a file
    that is not a feature batch (``features`` not a numeric array with one row per id) or
    whose rows have another shape than most stored rows (a tampered or foreign file) is
    discarded with a :class:`ResultsWarning` naming it — its images count as without state, so
    the next run computes it again. The first file holding an id wins."""
    import zipfile
    from collections import Counter

    d = Path(run_dir) / "features" / metric
    batches: list[tuple[Path, list[str], np.ndarray]] = []
    for p in sorted(d.glob("*.npz")) if d.is_dir() else []:
        try:
            with open_regular(p) as fh, np.load(fh, allow_pickle=False) as z:
                ids = [str(i) for i in np.asarray(z["ids"]).reshape(-1).tolist()]
                feats = np.asarray(z["features"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            continue  # a torn feature file: its rows were never written
        if feats.ndim < 1 or feats.shape[0] != len(ids) or feats.dtype.kind not in "biuf":
            warn_stored(
                f"{p}: feature file discarded ({feats.dtype} array of shape {feats.shape} for "
                f"{len(ids)} ids); those images are scored again on the next run", stacklevel=3)
            continue
        batches.append((p, ids, feats))
    shapes = Counter()
    for _, ids, feats in batches:
        shapes[feats.shape[1:]] += len(ids)
    if not shapes:
        return {}
    width = max(shapes.items(), key=lambda kv: kv[1])[0]  # ties: the first file's shape
    found: dict[str, np.ndarray] = {}
    for p, ids, feats in batches:
        if feats.shape[1:] != width:
            warn_stored(
                f"{p}: feature file discarded (rows of shape {feats.shape[1:]}, the other stored "
                f"rows are {width}); those images are scored again on the next run", stacklevel=3)
            continue
        for i, f in zip(ids, feats):
            found.setdefault(i, f)
    return found


def feature_ids(run_dir: str | Path, metric: str) -> set[str]:
    """Ids whose per-image state for set metric ``metric`` is stored (:func:`_feature_files`)."""
    return set(_feature_files(run_dir, metric))


def read_features(run_dir: Path, metric: str, ids: list[str]) -> np.ndarray | None:
    """The stored state of ``ids`` stacked in that order, ``(len(ids), ...)``; None when one of
    them has none (:func:`_feature_files`)."""
    if not ids:
        return np.zeros((0, 0))
    found = _feature_files(run_dir, metric)
    if any(i not in found for i in ids):
        return None
    return np.stack([found[i] for i in ids])


# -- the typed run summary ---------------------------------------------------------------------------
class SummaryFormatError(UsageError):
    """A ``summary.json`` that is not a run summary of this schema (a field of the wrong type).
    Readers skip that run with a warning naming the file; the next ``run`` rebuilds it."""


def _field(data: dict, key: str, types: tuple[type, ...], default: Any, where: str) -> Any:
    """``data[key]`` checked against ``types`` (None allowed when the default is None)."""
    if key not in data:
        return default
    v = data[key]
    if v is None and (default is None or type(None) in types):
        return None
    # bool is an int to Python; a count or value given as true/false is a wrong type here
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
        names = " or ".join(t.__name__ for t in types if t is not type(None))
        raise SummaryFormatError(
            f"{where}: {key!r} is {type(v).__name__} {str(v)[:30]!r}, expected {names}",
            "re-run the same `faceblur-bench run` command to rebuild it from the stored rows")
    return v


_NUM = (int, float)


def _interval(data: dict, where: str) -> list[float] | None:
    """``ci95``: null or two numbers ``[lo, hi]`` with lo <= hi."""
    ci = _field(data, "ci95", (list,), None, where)
    if ci is None:
        return None
    if len(ci) != 2 or not all(isinstance(v, _NUM) and not isinstance(v, bool) for v in ci) \
            or not ci[0] <= ci[1]:
        raise SummaryFormatError(f"{where}: 'ci95' is {str(ci)[:40]}, expected [lo, hi] numbers",
                                 "re-run the same `faceblur-bench run` command to rebuild it")
    return [float(ci[0]), float(ci[1])]


@dataclass
class MetricEntry:
    """One metric of a run: its value over the run (None: no value) and how it was computed."""

    value: float | None = None
    std: float | None = None
    count: int = 0
    #: ok | unavailable | not-applicable | error
    status: str = "ok"
    reason: str | None = None
    label: str | None = None
    protocol: str | None = None
    higher_is_better: bool = True
    family: str | None = None
    #: paired | set
    kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: files the metric used: ``[{"name", "path", "sha256"}]``
    weights: list[dict[str, Any]] = field(default_factory=list)
    #: 95% interval ``[lo, hi]`` of a paired metric's mean (cluster bootstrap over ``n_units``
    #: independent units, see :mod:`faceblur_bench.stats`; how: ``extra["ci"]``); None: not given
    ci95: list[float] | None = None
    n_units: int | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> MetricEntry:
        if not isinstance(data, dict):
            raise SummaryFormatError(f"{where}: not an object ({type(data).__name__})",
                                     "re-run the same `faceblur-bench run` command to rebuild it")
        value = _field(data, "value", _NUM, None, where)
        std = _field(data, "std", _NUM, None, where)
        return cls(
            value=None if value is None else float(value),
            std=None if std is None else float(std),
            count=_field(data, "count", (int,), 0, where) or 0,
            status=_field(data, "status", (str,), "ok", where) or "ok",
            reason=_field(data, "reason", (str,), None, where),
            label=_field(data, "label", (str,), None, where),
            protocol=_field(data, "protocol", (str,), None, where),
            higher_is_better=_field(data, "higher_is_better", (bool,), True, where),
            family=_field(data, "family", (str,), None, where),
            kind=_field(data, "kind", (str,), None, where),
            extra=_field(data, "extra", (dict,), None, where) or {},
            weights=_field(data, "weights", (list,), None, where) or [],
            ci95=_interval(data, where),
            n_units=_field(data, "n_units", (int,), None, where),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "std": self.std, "count": self.count, "status": self.status,
                "reason": self.reason, "label": self.label, "protocol": self.protocol,
                "higher_is_better": self.higher_is_better, "family": self.family,
                "kind": self.kind, "extra": dict(self.extra), "weights": list(self.weights),
                "ci95": None if self.ci95 is None else list(self.ci95), "n_units": self.n_units}


@dataclass
class Counts:
    """Images of a run: ``total`` wanted, ``done`` stored, of which ``ok`` and ``failed``."""

    total: int = 0
    done: int = 0
    ok: int = 0
    failed: int = 0

    @classmethod
    def parse(cls, data: Any, where: str) -> Counts:
        if not isinstance(data, dict):
            raise SummaryFormatError(f"{where}: not an object ({type(data).__name__})",
                                     "re-run the same `faceblur-bench run` command to rebuild it")
        ok = _field(data, "ok", (int,), 0, where) or 0
        failed = _field(data, "failed", (int,), 0, where) or 0
        return cls(total=_field(data, "total", (int,), 0, where) or 0,
                   done=_field(data, "done", (int,), ok + failed, where) or 0, ok=ok, failed=failed)


def _check_other(data: dict, where: str) -> None:
    """Types of the fields a summary keeps in ``other`` that readers still use: ``data_origin``
    (an object of strings: ``kind``, ``data_root``, ``reason``), ``sessions`` (a list of objects
    with integer ``rows`` and an object ``added_metrics``), ``world_size`` (an integer >= 1)."""
    origin = _field(data, "data_origin", (dict,), None, where)
    for k in ("kind", "data_root", "reason"):
        _field(origin or {}, k, (str,), None, f"{where}: data_origin")
    sessions = _field(data, "sessions", (list,), None, where) or []
    for i, rec in enumerate(sessions):
        if not isinstance(rec, dict):
            raise SummaryFormatError(f"{where}: 'sessions' item {i} is {type(rec).__name__}, expected object",
                                     "re-run the same `faceblur-bench run` command to rebuild it")
        _field(rec, "rows", (int,), None, f"{where}: sessions[{i}]")
        _field(rec, "added_metrics", (dict,), None, f"{where}: sessions[{i}]")
    ws = _field(data, "world_size", (int,), None, where)
    if ws is not None and ws < 1:
        raise SummaryFormatError(f"{where}: 'world_size' is {ws}, expected an integer >= 1",
                                 "re-run the same `faceblur-bench run` command to rebuild it")


@dataclass
class RunSummary:
    """``summary.json`` of one run, parsed and type-checked (:meth:`parse`); what every reader
    of stored results uses instead of defensive ``.get()`` calls on raw JSON.

    Only ``method``, ``split`` and ``metrics`` are required; a missing field takes its default
    (older or hand-written summaries), a field of the wrong type is a
    :class:`SummaryFormatError`. Unknown fields are kept in ``other`` and written back by
    :meth:`to_dict`.
    """

    method: str
    split: str
    metrics: dict[str, MetricEntry]
    schema: int | None = None
    run_key: str | None = None
    method_options: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    num_parameters: int | None = None
    split_name: str | None = None
    subset: str | None = None
    data_root: str | None = None
    split_fingerprint: str | None = None
    has_reference: bool = True
    partial: bool = False
    limit: int | None = None
    complete: bool = True
    counts: Counts = field(default_factory=Counts)
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: ``{"method": [{"name", "path", "sha256"}], "metrics": {name: [...]}}``
    weights_used: dict[str, Any] = field(default_factory=dict)
    rows_discarded: int = 0
    row_conflicts: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: s2s | s2v
    protocol: str = "s2s"
    runtime: dict[str, Any] | None = None
    #: the run directory it was read from (``_run_dir``), when read from disk
    run_dir: str | None = None
    #: fields this version does not know (kept as they are)
    other: dict[str, Any] = field(default_factory=dict)

    _KNOWN = ("method", "split", "metrics", "schema", "run_key", "method_options", "checkpoint",
              "checkpoint_sha256", "num_parameters", "split_name", "subset", "data_root",
              "split_fingerprint", "has_reference", "partial", "limit", "complete", "counts",
              "failures", "weights_used", "rows_discarded", "row_conflicts", "timings",
              "provenance", "protocol", "runtime", "run_dir", "_run_dir")

    @classmethod
    def parse(cls, data: Any, source: str | Path = "summary") -> RunSummary:
        """Check every field's type; raise :class:`SummaryFormatError` naming ``source`` and
        the field otherwise."""
        where = str(source)
        if not isinstance(data, dict) or "metrics" not in data or "method" not in data:
            raise SummaryFormatError(f"{where}: not a run summary (needs 'method' and 'metrics')",
                                     "pass a run directory written by `faceblur-bench run`")
        metrics = _field(data, "metrics", (dict,), {}, where)
        failures = _field(data, "failures", (list,), None, where) or []
        if not all(isinstance(f, dict) for f in failures):
            raise SummaryFormatError(f"{where}: 'failures' holds a non-object",
                                     "re-run the same `faceblur-bench run` command to rebuild it")
        prov = _field(data, "provenance", (dict,), None, where) or {}
        if "date" in prov and prov["date"] is not None and not isinstance(prov["date"], str):
            raise SummaryFormatError(f"{where}: 'provenance.date' is not a string",
                                     "re-run the same `faceblur-bench run` command to rebuild it")
        _check_other(data, where)
        run_dir = _field(data, "_run_dir", (str,), None, where) or _field(
            data, "run_dir", (str,), None, where)
        return cls(
            method=_field(data, "method", (str,), "", where),
            split=_field(data, "split", (str,), "", where),
            metrics={str(k): MetricEntry.parse(v, f"{where}: metric {k!r}") for k, v in metrics.items()},
            schema=_field(data, "schema", (int,), None, where),
            run_key=_field(data, "run_key", (str,), None, where),
            method_options=_field(data, "method_options", (dict,), None, where) or {},
            checkpoint=_field(data, "checkpoint", (str,), None, where),
            checkpoint_sha256=_field(data, "checkpoint_sha256", (str,), None, where),
            num_parameters=_field(data, "num_parameters", (int,), None, where),
            split_name=_field(data, "split_name", (str,), None, where),
            subset=_field(data, "subset", (str,), None, where),
            data_root=_field(data, "data_root", (str,), None, where),
            split_fingerprint=_field(data, "split_fingerprint", (str,), None, where),
            has_reference=_field(data, "has_reference", (bool,), True, where),
            partial=_field(data, "partial", (bool,), False, where),
            limit=_field(data, "limit", (int,), None, where),
            complete=_field(data, "complete", (bool,), True, where),
            counts=Counts.parse(_field(data, "counts", (dict,), {}, where) or {}, f"{where}: counts"),
            failures=failures,
            weights_used=_field(data, "weights_used", (dict,), None, where) or {},
            rows_discarded=_field(data, "rows_discarded", (int,), 0, where) or 0,
            row_conflicts=_field(data, "row_conflicts", (list,), None, where) or [],
            timings=_field(data, "timings", (dict,), None, where) or {},
            provenance=prov,
            protocol=_field(data, "protocol", (str,), "s2s", where) or "s2s",
            runtime=_field(data, "runtime", (dict,), None, where),
            run_dir=run_dir,
            other={k: v for k, v in data.items() if k not in cls._KNOWN},
        )

    @property
    def label(self) -> str | None:
        """The run's name (``run --label``; ``summary["label"]``), shown in tables, the
        leaderboard, figures and LaTeX instead of the method name; None without one."""
        v = self.other.get("label")
        return v.strip() if isinstance(v, str) and v.strip() else None

    @property
    def date(self) -> str:
        """When the run was summarised (ISO 8601 UTC; "" when unknown)."""
        return str(self.provenance.get("date") or "")

    def key(self) -> tuple[str, str, str, str]:
        """:func:`config_key` of this run."""
        return config_key(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data, every known field present with its type (plus
        ``_run_dir`` when read from disk): for report code that still takes dicts."""
        d: dict[str, Any] = {
            "schema": self.schema, "run_key": self.run_key, "method": self.method,
            "method_options": dict(self.method_options), "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256, "num_parameters": self.num_parameters,
            "split": self.split, "split_name": self.split_name, "subset": self.subset,
            "data_root": self.data_root, "split_fingerprint": self.split_fingerprint,
            "has_reference": self.has_reference, "partial": self.partial, "limit": self.limit,
            "complete": self.complete,
            "counts": {"total": self.counts.total, "done": self.counts.done,
                       "ok": self.counts.ok, "failed": self.counts.failed},
            "failures": list(self.failures),
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "weights_used": dict(self.weights_used), "rows_discarded": self.rows_discarded,
            "row_conflicts": list(self.row_conflicts), "timings": dict(self.timings),
            "provenance": dict(self.provenance), "protocol": self.protocol,
        }
        if self.runtime is not None:
            d["runtime"] = self.runtime
        d.update(self.other)
        if self.run_dir is not None:
            d["_run_dir"] = self.run_dir
        return d
