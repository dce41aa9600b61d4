"""Shared test helpers: the real CLI entry point run in-process, or several CLI invocations in one
fresh interpreter with the heavy modules each left loaded (not a test module)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main_inprocess(args: list[str], capsys) -> tuple[int, str, str]:
    """``faceblur_bench.cli.main`` (exit-code handling included) in this process: for checks of
    messages and exit codes that need no fresh interpreter. Returns (exit code, stdout, stderr
    with whitespace collapsed — rich wraps long error lines)."""
    from faceblur_bench.cli import main

    old, code = sys.argv, 0
    sys.argv = ["faceblur-bench", *args]
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    cap = capsys.readouterr()
    return code, cap.out, " ".join(cap.err.split())


#: modules no listing, help or typo answer may import (torch and what sits on it)
HEAVY = ("torch", "torchvision", "scipy", "skimage", "facenet_pytorch", "dlib", "lpips", "pyiqa",
         "cv2", "numba", "faceblur_bench.methods.base", "faceblur_bench.metrics.base")

#: runs each CLI invocation given as JSON in argv[1] through the real entry point in this one
#: interpreter, and records per invocation: exit code, stdout, stderr, heavy modules loaded so far
PROBE = """
import contextlib, io, json, sys
heavy, commands, preamble = {heavy!r}, json.loads(sys.argv[1]), sys.argv[2]
exec(preamble)
from faceblur_bench.cli import main
results = []
for argv in commands:
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["faceblur-bench", *argv]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    results.append({{"argv": argv, "code": code, "out": out.getvalue(), "err": " ".join(err.getvalue().split()),
                     "heavy": [m for m in heavy if m in sys.modules]}})
sys.stdout.write(json.dumps(results))
"""


def probe(commands: list[list[str]], preamble: str = "", env: dict | None = None) -> list[dict]:
    """The CLI run on ``commands`` in one fresh interpreter (``preamble`` runs first)."""
    r = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(commands), preamble],
                       env={**(env or os.environ), "COLUMNS": "200"}, capture_output=True, text=True,
                       timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
