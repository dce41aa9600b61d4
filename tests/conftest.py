"""Test isolation: every cache the harness or its dependencies read points into a temporary
directory for the whole session, so tests never see (or download) real weights or data and
subprocesses inherit the same environment. The directory is removed when the session ends."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="faceblur-tests-"))
for var, sub in (("TORCH_HOME", "torch"), ("XDG_CACHE_HOME", "cache"), ("INSIGHTFACE_HOME", "insightface"),
                 ("FACEBLUR_DATA", "data")):
    os.environ[var] = str(_SESSION_TMP / sub)
os.environ.pop("FACEBLUR_WEIGHTS", None)
for k in [k for k in os.environ if k.startswith("FACEBLUR_WEIGHTS_")]:
    os.environ.pop(k)
os.environ.setdefault("PYTHONHASHSEED", "0")
# one terminal width for every test and subprocess: rich wraps tables and messages at the width,
# and under pytest-xdist the tmp paths in them are longer (…/popen-gw0/…) than in a serial run
os.environ["COLUMNS"] = "200"
# one compute thread per core in all: under pytest-xdist every worker (and every subprocess it
# starts) would otherwise run torch/OpenMP with a thread per core, and on a 2-core machine the
# spinning threads of two workers cut each other's throughput (measured idle: suite 460 s -> 331 s).
# Read by OpenMP/MKL when torch loads, so it is set before any test module imports torch.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    # the dlib descriptor pool (FACEBLUR_DLIB_WORKERS, default one process per core) follows the
    # same rule: below 2 it computes in the scoring process (same bits, tests/test_face_analysis.py)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "FACEBLUR_DLIB_WORKERS"):
        os.environ.setdefault(var, _THREADS)

REPO = Path(__file__).resolve().parents[1]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's cache directory (weights, data, demo split) when pytest exits."""
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _SESSION_TMP


@pytest.fixture(scope="session")
def demo_data_root() -> Path:
    """Data root holding the demo split, built once per test session."""
    from faceblur_bench.engine import open_split

    root = Path(os.environ["FACEBLUR_DATA"])
    split = open_split("demo", root)
    split.samples()  # builds it
    return root


@pytest.fixture()
def tiny_tmpfs(tmp_path):
    """A real 1 MiB tmpfs (needs root / CAP_SYS_ADMIN); yields (mount point, remount(size))."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'})")

    def remount(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)

    try:
        yield mnt, remount
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture()
def fill_disk():
    """``fill_disk(path)``: write zeros to ``path`` until the file system holding it is full
    (to the last byte), so the next write that needs space fails with ENOSPC."""

    def fill(path: Path) -> None:
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass

    return fill


@pytest.fixture(scope="session")
def stored_demo_runs(demo_data_root, tmp_path_factory) -> tuple[Path, Path]:
    """``(data root, results dir)`` of runs on a 9-image copy of the demo split (one image per
    face: both subsets, kernel sizes 13…27 and 13 again), psnr and ssim, made once per session for the
    report tests: ``blurred``; ``wiener`` with ``--save-images``; and a method named with HTML
    specials (``k13 <b>fails</b> & "x"``) whose output is NaN on kernel-size-13 images (failed
    rows with their reason; no saved images)."""
    import json

    import torch

    from faceblur_bench import engine
    from faceblur_bench.methods.base import Method

    class FailsOnK13(Method):
        name = 'k13 <b>fails</b> & "x"'

        def restore(self, blurred, meta=None):
            out = blurred.clone()
            for i, m in enumerate(meta or []):
                if int(m.get("kernel_size", 0)) == 13:
                    out[i] = torch.nan
            return out

    tmp = tmp_path_factory.mktemp("stored-demo")
    root = tmp / "data"
    shutil.copytree(demo_data_root / "demo", root / "demo")
    man_path = root / "demo" / "manifest.json"
    man = json.loads(man_path.read_text())
    man["samples"] = [r for i, r in enumerate(man["samples"]) if i % 8 == (i // 8) % 8]
    man_path.write_text(json.dumps(man))
    results = tmp / "results"
    for method, save in (("blurred", False), ("wiener", True), (FailsOnK13(), False)):
        engine.evaluate(engine.RunConfig(method=method, split="demo", data_root=root,
                                         results_dir=results, metrics=["psnr", "ssim"],
                                         device="cpu", save_images=save))
    return root, results
