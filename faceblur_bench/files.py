"""File primitives shared by every layer: the user cache directory and file sha256.

One definition each, so the cache location rule (``$XDG_CACHE_HOME``, else ``~/.cache``) and
the content hash that identifies weights, checkpoints and data files cannot drift apart.
Atomic writes live with the results store (:func:`faceblur_bench.results.atomic_write_text`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_SHA256: dict[tuple[str, int, int], str] = {}


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME`` or ``~/.cache`` (the root of every tool's cache, torch's included)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def cache_dir(*parts: str) -> Path:
    """``<user cache>/faceblur_bench/<parts...>`` (not created)."""
    return user_cache_root().joinpath("faceblur_bench", *parts)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, memoised on (resolved path, size, mtime) within a process."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
        _SHA256[key] = h.hexdigest()
    return _SHA256[key]
