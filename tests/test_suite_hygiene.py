"""The test suite cleans up after itself: a pytest session with this conftest leaves no
``faceblur-tests-*`` directory behind (checked in a child pytest with its own TMPDIR)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_session_cache_directory_is_removed(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(HERE / "conftest.py", proj / "conftest.py")
    (proj / "test_one.py").write_text(
        "def test_uses_cache(session_tmp):\n"
        "    (session_tmp / 'data').mkdir(parents=True, exist_ok=True)\n"
        "    (session_tmp / 'data' / 'x.bin').write_bytes(b'0' * 10)\n"
        "    assert session_tmp.name.startswith('faceblur-tests-')\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--basetemp", str(tmp_path / "bt"), str(proj)],
                       check=False, capture_output=True, text=True, timeout=300, env=env, cwd=proj)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("faceblur-tests-")] == []


def test_readme_test_command_is_the_one_ci_runs():
    """The README's second command (first code block) is the pytest line of ``.ci/run``."""
    root = HERE.parent
    block = root.joinpath("README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    readme_cmd = block.splitlines()[1].strip()
    assert readme_cmd.startswith("python -m pytest")
    ci = [ln.strip() for ln in root.joinpath(".ci", "run").read_text().splitlines()
          if ln.strip().startswith("python -m pytest")]
    assert ci == [readme_cmd]
