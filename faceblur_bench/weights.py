"""Known pretrained files: name, file name, upstream URL, sha256, where they are cached, loaders.

Lookup order for a file ``F`` of entry ``NAME``:
1. an explicit override: per-run option (``--weights NAME=PATH``) or ``$FACEBLUR_WEIGHTS_<NAME>``
   (upper-case, ``-`` -> ``_``);
2. ``$FACEBLUR_WEIGHTS/F`` (a directory holding files under their upstream names);
3. where the upstream library caches it (``$TORCH_HOME/hub/checkpoints``,
   ``$TORCH_HOME/checkpoints``, ``~/.insightface/models/<pack>``), so files other tools
   already downloaded are reused;
4. ``~/.cache/faceblur_bench/weights/F`` (where ``faceblur-bench weights fetch`` puts files
   without an upstream cache).

Every file with a known sha256 is checked (once per process per path/size/mtime); a mismatch is
refused naming the file and the expected hash. Nothing here ever substitutes other weights.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import UsageError, WeightsIntegrityError, WeightsMissingError


@dataclass(frozen=True)
class WeightFile:
    name: str
    filename: str
    url: str
    #: sha256 of the upstream file, or None when upstream publishes none and we could not verify
    sha256: str | None
    #: "torch-hub" | "torch-checkpoints" | "insightface:<pack>" | "faceblur"
    cache: str
    description: str
    used_by: tuple[str, ...] = ()
    #: how to obtain it when the URL is not a direct download (e.g. Google Drive zip)
    manual: str = ""


KNOWN: dict[str, WeightFile] = {}


def register(wf: WeightFile) -> WeightFile:
    if wf.name in KNOWN and KNOWN[wf.name] != wf:
        raise ValueError(f"weight file {wf.name!r} registered twice")
    KNOWN[wf.name] = wf
    return wf


def get_entry(name: str) -> WeightFile:
    if name not in KNOWN:
        import difflib

        from .errors import UnknownNameError

        raise UnknownNameError("weight file", name, sorted(KNOWN),
                               difflib.get_close_matches(name, sorted(KNOWN), n=3))
    return KNOWN[name]


# -- cache locations -----------------------------------------------------------------------------
def torch_home() -> Path:
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(xdg) / "torch"


def insightface_root() -> Path:
    return Path(os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")).expanduser()


def faceblur_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(xdg) / "faceblur_bench" / "weights"


def upstream_dir(wf: WeightFile) -> Path:
    if wf.cache == "torch-hub":
        return torch_home() / "hub" / "checkpoints"
    if wf.cache == "torch-checkpoints":
        return torch_home() / "checkpoints"
    if wf.cache.startswith("insightface:"):
        return insightface_root() / "models" / wf.cache.split(":", 1)[1]
    return faceblur_cache()


def env_override_var(name: str) -> str:
    return "FACEBLUR_WEIGHTS_" + name.upper().replace("-", "_").replace(".", "_")


def candidates(wf: WeightFile, overrides: dict[str, str] | None = None) -> list[Path]:
    """Every place ``wf`` is looked for, in order."""
    out: list[Path] = []
    if overrides and wf.name in overrides:
        out.append(Path(overrides[wf.name]).expanduser())
    if os.environ.get(env_override_var(wf.name)):
        out.append(Path(os.environ[env_override_var(wf.name)]).expanduser())
    if os.environ.get("FACEBLUR_WEIGHTS"):
        out.append(Path(os.environ["FACEBLUR_WEIGHTS"]).expanduser() / wf.filename)
    out.append(upstream_dir(wf) / wf.filename)
    if wf.cache != "faceblur":
        out.append(faceblur_cache() / wf.filename)
    return out


_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def check(wf: WeightFile, path: Path) -> None:
    """Raise :class:`WeightsIntegrityError` when ``path`` does not have the known sha256."""
    if wf.sha256 is None:
        return
    got = sha256_of(path)
    if got != wf.sha256:
        raise WeightsIntegrityError(
            f"weight file {wf.name!r} at {path} has sha256 {got[:16]}…, expected {wf.sha256[:16]}…",
            f"delete it and run `faceblur-bench weights fetch {wf.name}`, or point the override "
            f"at the genuine {wf.filename} ({wf.url})",
        )


def resolve(name: str, overrides: dict[str, str] | None = None, verify: bool = True) -> Path:
    """Path of the weight file ``name``; raises WeightsMissingError / WeightsIntegrityError."""
    wf = get_entry(name)
    looked = candidates(wf, overrides)
    for p in looked:
        if p.is_file():
            if verify:
                check(wf, p)
            return p
    where = "\n".join(f"    {p}" for p in looked)
    how = wf.manual or f"run `faceblur-bench weights fetch {wf.name}`"
    raise WeightsMissingError(
        f"weights missing: {wf.name} ({wf.filename}, {wf.description}); looked in:\n{where}",
        f"{how}; or place the file at {upstream_dir(wf) / wf.filename}; "
        f"or set {env_override_var(wf.name)}=PATH (source: {wf.url})",
    )


@dataclass
class Status:
    entry: WeightFile
    path: Path | None
    size: int | None
    hash_ok: bool | None  # None: not checked (missing, or no known hash)
    detail: str


def status(names: Iterable[str] | None = None, overrides: dict[str, str] | None = None,
           hash_files: bool = True) -> list[Status]:
    out = []
    for name in sorted(names or KNOWN):
        wf = get_entry(name)
        path = next((p for p in candidates(wf, overrides) if p.is_file()), None)
        if path is None:
            out.append(Status(wf, None, None, None, "missing"))
            continue
        size = path.stat().st_size
        if wf.sha256 is None or not hash_files:
            out.append(Status(wf, path, size, None, "found (no known sha256)" if wf.sha256 is None else "found"))
            continue
        ok = sha256_of(path) == wf.sha256
        out.append(Status(wf, path, size, ok, "ok" if ok else "sha256 mismatch"))
    return out


def fetch(name: str, timeout: float = 30.0,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``name`` to its upstream cache location with sha256 check (atomic rename)."""
    wf = get_entry(name)
    if wf.manual and not wf.url.startswith(("http://", "https://")):
        raise UsageError(f"{wf.name} cannot be downloaded automatically", wf.manual)
    dest = upstream_dir(wf) / wf.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmpname = tempfile.mkstemp(prefix=f".{wf.filename}.", dir=dest.parent)
    tmp = Path(tmpname)
    try:
        req = urllib.request.Request(wf.url, headers={"User-Agent": "faceblur-bench"})
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except Exception as exc:  # URLError, socket timeout, HTTP errors
            raise WeightsMissingError(
                f"could not download {wf.name} from {wf.url}: {exc}",
                f"check the network, or download it by hand and place it at {dest}"
                + (f" ({wf.manual})" if wf.manual else ""),
            ) from None
        total = int(resp.headers.get("Content-Length") or 0) or None
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as f, resp:
            while block := resp.read(1 << 20):
                f.write(block)
                h.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
        got = h.hexdigest()
        if wf.sha256 is not None and got != wf.sha256:
            raise WeightsIntegrityError(
                f"downloaded {wf.name} has sha256 {got[:16]}…, expected {wf.sha256[:16]}…",
                "the upstream file changed or the download was corrupted; try again",
            )
        shutil.move(str(tmp), dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()
