"""Integrity manifests: sha256 of every file of a split, written once and compared later.

``verify(split)`` (CLI: ``faceblur-bench data verify SPLIT``) checks the layout and the counts
against what the release should contain (the split's ``samples()`` in strict mode plus its
``expected_counts()``), then hashes every file the split uses (blurred, sharp, frames, kernel
files). The first time it writes a manifest; later runs compare against it and report files
that changed, disappeared or appeared.

Where manifests live: ``<data_root>/.faceblur_manifests/{split}.json`` when the data root is
writable, else ``~/.cache/faceblur_bench/manifests/<sha256(data_root)[:12]>/{split}.json``
(``{split}`` is the full name with ``/`` written as ``__``). Paths inside a manifest are relative
to the data root; entries that are absolute or climb out with ``..`` are refused.

A manifest's ``hash`` field must be the hash of its own file entries: a manifest edited by hand
is refused by ``run`` and reported by ``verify`` alike (which also lists the files that changed
on disk, if any), so the two never disagree.

``manifest_hash(split)`` is the sha256 over the sorted ``path<TAB>sha256`` lines -- the value a
run records to identify the exact bytes it was evaluated on. Manifests also store each file's
size and modification time so that ``manifest_hash`` can reuse them without re-hashing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import DataLayoutError
from ..files import cache_dir, sha256_file
from ..results import atomic_write_text
from .base import Sample, Split
from .layout import require_utf8_name, safe_join

MANIFEST_VERSION = 1


_sha256 = sha256_file


def _rel(data_root: Path, p: Path) -> str:
    require_utf8_name(p)
    try:
        return p.resolve().relative_to(data_root.resolve()).as_posix()
    except ValueError:
        raise DataLayoutError(f"{p} lies outside the data root {data_root}",
                              "keep every file of a split under its data root") from None


def split_files(split: Split, samples: list[Sample] | None = None) -> list[Path]:
    """Every file the split uses: sample files, kernel files and the split's ``extra_files()``
    (e.g. 300VW's test list) -- sorted, unique."""
    samples = split.samples() if samples is None else samples
    files: set[Path] = set()
    for s in samples:
        files.update(s.files())
    kdir = None
    kd = getattr(split, "kernel_dir", None)
    if callable(kd):
        kdir = kd()
    if kdir is not None and Path(kdir).is_dir():
        files.update(p for p in Path(kdir).iterdir() if p.is_file() and p.name.startswith("blur_k"))
    extra = getattr(split, "extra_files", None)
    if callable(extra):
        files.update(extra())
    return sorted(files)


def manifest_dir(data_root: Path) -> Path:
    """Directory holding the manifests of ``data_root`` (see module doc)."""
    data_root = Path(data_root)
    local = data_root / ".faceblur_manifests"
    if local.is_dir() and os.access(local, os.W_OK):
        return local
    if data_root.is_dir() and os.access(data_root, os.W_OK):
        return local
    key = hashlib.sha256(str(data_root.resolve()).encode()).hexdigest()[:12]
    return cache_dir("manifests", key)


def manifest_path(split: Split) -> Path:
    return manifest_dir(split.data_root) / f"{split.full_name.replace('/', '__')}.json"


def files_hash(files: dict[str, str]) -> str:
    """sha256 over sorted ``path\\tsha256\\n`` lines."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\t{files[rel]}\n".encode())
    return h.hexdigest()


def build_manifest(split: Split, samples: list[Sample] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Hash every file of ``split``; returns the manifest dict (not written)."""
    samples = split.samples() if samples is None else samples
    paths = split_files(split, samples)
    files: dict[str, str] = {}
    stats: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        rel = _rel(split.data_root, p)
        st = p.stat()
        files[rel] = _sha256(p)
        stats[rel] = [st.st_size, st.st_mtime_ns]
        if progress:
            progress(i + 1, len(paths))
    return {"version": MANIFEST_VERSION, "split": split.full_name, "samples": len(samples),
            "partial": bool(split.partial), "files": files, "stat": stats, "hash": files_hash(files)}


def _read_manifest(path: Path, data_root: Path) -> dict[str, Any]:
    try:
        man = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataLayoutError(f"{path}: unreadable manifest ({exc})", f"delete {path} and run `faceblur-bench data verify` again") from None
    if not isinstance(man, dict) or not isinstance(man.get("files"), dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in man["files"].items()):
        raise DataLayoutError(f"{path}: not a faceblur-bench manifest", f"delete {path} and verify again")
    for rel in man["files"]:
        safe_join(Path(data_root), rel)
    return man


def self_check(man: dict[str, Any], path: Path) -> str | None:
    """Why the manifest at ``path`` contradicts itself (its ``hash`` field is not the hash of its
    own file entries: one of them was edited), or None."""
    stored = man.get("hash")
    own = files_hash(man["files"])
    if stored is not None and stored != own:
        return (f"manifest {path} was edited: its 'hash' field {str(stored)[:16]}… is not the hash of "
                f"its own file entries ({own[:16]}…)")
    return None


def load_manifest(path: Path, data_root: Path) -> dict[str, Any]:
    """Read a manifest, refusing entries that escape ``data_root`` and a manifest whose ``hash``
    field does not match its file entries (:func:`self_check`; ``data verify`` reports the same)."""
    man = _read_manifest(path, data_root)
    problem = self_check(man, path)
    if problem:
        raise DataLayoutError(problem, f"run `faceblur-bench data verify {man.get('split', 'SPLIT')} --rewrite` "
                              "to hash the files again, or restore the manifest")
    return man


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`. ``ok`` is False when counts differ or files changed."""

    split: str
    manifest: Path
    created: bool
    samples: int
    expected: dict[str, int]
    counts: dict[str, int]
    hash: str
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "ok": self.ok, "manifest": str(self.manifest), "created": self.created,
                "samples": self.samples, "expected": self.expected, "counts": self.counts, "hash": self.hash,
                "changed": self.changed, "missing": self.missing, "added": self.added, "problems": self.problems}


def count_files(split: Split, samples: list[Sample]) -> dict[str, int]:
    """Counts in the units of ``split.expected_counts()``."""
    sharp = {s.sharp for s in samples if s.sharp is not None}
    return {"sharp": len(sharp), "blurred": len(samples), "windows": len(samples), "images": len(samples)}


def verify(split: Split, write: bool = True, rewrite: bool = False,
           progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Check layout + counts, then write (first time / ``rewrite``) or compare the manifest.

    Layout errors raise :class:`DataLayoutError` (from ``split.samples()``)."""
    samples = split.samples()
    exp_fn = getattr(split, "expected_counts", None)
    expected = exp_fn() if callable(exp_fn) else {}
    counts_all = count_files(split, samples)
    counts = {k: counts_all[k] for k in expected}
    problems = [f"{k}: {counts[k]} found, the release has {v}" for k, v in expected.items() if v and counts[k] != v]
    if split.partial:
        problems.append("split is partial (allow_partial): some files are missing")
    current = build_manifest(split, samples, progress)
    path = manifest_path(split)
    res = VerifyResult(split.full_name, path, False, len(samples), expected, counts, current["hash"], problems=problems)
    if path.is_file() and not rewrite:
        old = _read_manifest(path, split.data_root)
        edited = self_check(old, path)
        if edited:  # the manifest side differs; the file comparison below covers the data side
            res.problems.append(edited + "; accept the current files with --rewrite")
        of, nf = old["files"], current["files"]
        res.missing = sorted(set(of) - set(nf))
        res.added = sorted(set(nf) - set(of))
        res.changed = sorted(r for r in set(of) & set(nf) if of[r] != nf[r])
        res.hash = current["hash"]
    elif write:
        atomic_write_text(path, json.dumps(current, indent=1, sort_keys=True))
        res.created = True
    return res


def manifest_hash(split: Split, samples: list[Sample] | None = None) -> str:
    """sha256 identifying the exact files of ``split`` (see module doc).

    Uses the stored manifest when the split's current files are exactly its files with the same
    sizes and modification times (no re-hashing), else hashes the files now (nothing is written)."""
    samples = split.samples() if samples is None else samples
    path = manifest_path(split)
    if path.is_file():
        old = load_manifest(path, split.data_root)
        stats = old.get("stat") or {}
        now = {}
        for p in split_files(split, samples):
            st = p.stat()
            now[_rel(split.data_root, p)] = [st.st_size, st.st_mtime_ns]
        if now == stats and set(now) == set(old["files"]):
            return files_hash(old["files"])
    return build_manifest(split, samples)["hash"]
