"""File primitives shared by every layer: the user cache directory, file sha256, the
containment rule of every root and the one way to open a file that may be hostile.

One definition each, so the cache location rule (``$XDG_CACHE_HOME``, else ``~/.cache``), the
content hash that identifies weights, checkpoints and data files, and "nothing outside the root
is read or written" cannot drift apart. Atomic writes live with the results store
(:func:`faceblur_bench.results.atomic_write_text`), which applies :func:`outside_link` to every
write under a results root; every reader of a user-named folder (``score``, ``folder:DIR``,
``make-split --sharp``) applies :func:`check_inside`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

_SHA256: dict[tuple[str, int, int], str] = {}


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME`` or ``~/.cache`` (the root of every tool's cache, torch's included)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def cache_dir(*parts: str) -> Path:
    """``<user cache>/faceblur_bench/<parts...>`` (not created)."""
    return user_cache_root().joinpath("faceblur_bench", *parts)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, memoised on (resolved path, size, mtime) within a process.

    ``path`` must be a regular file (a FIFO or device is an ``OSError``, never a hang)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        h = hashlib.sha256()
        with open_regular(p) as f:
            while block := f.read(chunk):
                h.update(block)
        _SHA256[key] = h.hexdigest()
    return _SHA256[key]


class NotRegularFileError(OSError):
    """A path that is a FIFO, socket, device or directory where a file's bytes were expected."""


def file_kind(mode: int) -> str:
    """``"a FIFO"``, ``"a directory"``, ... for an ``st_mode`` (error messages)."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` is not a regular file, as the end of a sentence ("does not exist", "is a
    FIFO, not a regular file", "is a directory, not a regular file", ...); None when it is one.
    Decided by ``stat`` alone (symlinks followed): nothing is opened, so a FIFO cannot block."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a dangling symlink (its target does not exist)" if os.path.islink(path) else "does not exist"
    except OSError as exc:  # a symlink loop, a name too long, no permission on a folder above
        return f"cannot be examined ({exc.strerror or type(exc).__name__})"
    return None if stat.S_ISREG(mode) else f"is {file_kind(mode)}, not a regular file"


def folder_entries(folder: str | Path, suffixes: Iterable[str]) -> tuple[list[Path], list[dict[str, str]]]:
    """The files a reader of ``folder`` takes, and what it skipped that the user should hear of.

    Returns ``(files, skipped)``, sorted by name: ``files`` are the regular files directly in
    ``folder`` whose suffix (any case) is in ``suffixes`` — a symlink to a file counts, also one
    leading out of ``folder`` (the caller's :func:`check_inside` refuses it by name).
    ``skipped`` holds ``{"file": name, "reason": ...}`` for every other entry that is not a
    regular file: a FIFO, socket or device (whatever its suffix), a symlink to a folder (only
    the folder's own files are read), a dangling link, a link leading out of ``folder`` to
    anything but a file. Hidden names, plain subfolders and regular files of other suffixes are
    left out without a word. Decided by ``lstat``/``stat``: nothing is opened, and no link that
    leads out of ``folder`` is followed further than its target's metadata."""
    folder = Path(folder)
    want = {x.lower() for x in suffixes}
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        try:
            link = stat.S_ISLNK(p.lstat().st_mode)
        except OSError:
            continue  # gone meanwhile
        why = not_a_file(p)
        if why is None:
            if p.suffix.lower() in want:
                files.append(p)
            continue
        if link and outside_link(folder, p) is not None:
            why = "is a symlink leading outside the folder (not followed)"
        elif link and p.is_dir():
            why = "is a symlink to a folder (subfolders are not read)"
        elif p.is_dir():
            continue  # a plain subfolder: not part of the folder's files, on purpose
        skipped.append({"file": p.name, "reason": why})
    return files, skipped


def describe_skipped(folder: str | Path, skipped: list[dict[str, str]], shown: int = 3) -> str:
    """One warning line for :func:`folder_entries`' ``skipped``: the count, the first ``shown``
    names with why, and that nothing of them was read."""
    first = "; ".join(f"{s['file']} {s['reason']}" for s in skipped[:shown])
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"{folder}: {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} skipped, not regular "
            f"files: {first}{more}")


def open_regular(path: str | Path):  # noqa: ANN201 — a binary file object
    """Open ``path`` for reading (binary) only if it is a regular file.

    The open itself never blocks: ``O_NONBLOCK`` makes opening a FIFO with no writer return at
    once, and the descriptor's own ``fstat`` (not a second look-up of the name) decides, so a
    FIFO, socket, device or directory named like an image or a stored file is a
    :class:`NotRegularFileError` naming it, never a hang. Symlinks are followed (containment is
    :func:`check_inside`'s job)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"{path} is {file_kind(mode)}, not a file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path) -> bytes:
    """The bytes of a regular file (:func:`open_regular`: a FIFO is an error, never a hang)."""
    with open_regular(path) as f:
        return f.read()


def outside_link(root: str | Path, path: str | Path) -> Path | None:
    """The containment rule of every root (data folders, results directories).

    ``path`` lies under ``root`` by name; return None when it also resolves inside ``root``
    (symlinks followed), else the first component on the way down from ``root`` that is a
    symlink leading out (or ``path`` itself, e.g. for ``..`` in a name). A path that does not
    exist yet is judged by its existing ancestors, so a writer can check a file before creating
    it. Links that stay inside the root are allowed."""
    root, path = Path(root), Path(path)
    real_root = root.resolve()
    real = path.resolve()
    if real == real_root or real_root in real.parents:
        return None
    cur = root
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return path
    for part in parts:
        cur = cur / part
        if cur.is_symlink():
            return cur
    return path


def link_target(link: Path) -> str:
    """Where ``link`` points (its text for a symlink, else its resolved path): for messages."""
    return os.readlink(link) if link.is_symlink() else str(link.resolve())


def check_inside(root: str | Path, path: str | Path, what: str) -> None:
    """Readers' form of :func:`outside_link`: raise :class:`~faceblur_bench.errors.DataLayoutError`
    (exit 2) naming the link and its target when ``path`` leads out of ``root``."""
    from .errors import DataLayoutError

    link = outside_link(root, path)
    if link is not None:
        raise DataLayoutError(f"{what} {link} is a symlink to {link_target(link)}, outside {root}",
                              f"copy the file into {root}, or pass the folder it points into instead")
