"""Shared test helper: the real CLI entry point run in-process (not a test module)."""

from __future__ import annotations

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
