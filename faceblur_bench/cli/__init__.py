"""``faceblur-bench`` command line (typer + rich). Thin: parses options, calls library functions.

Exit codes (docs/exit-codes.md): 0 success, every image scored; 1 the command ran and its
outcome is a failure (failed images in ``run``/``score``, a regression found by ``check``, a
full disk); 2 unusable input — the command could not start (unknown names, bad options, missing
data, results path or checkpoint); 130 interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM).
Both signals keep what is stored and say so.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ..errors import FaceblurError

app = typer.Typer(
    name="faceblur-bench",
    help="Benchmark and evaluation harness for face deblurring: run methods on splits, score them "
    "under named metric protocols, produce paper tables, gate CI on regressions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        out.print(f"faceblur-bench {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Benchmark and evaluation harness for face deblurring: run methods on splits, score them
    under named metric protocols, produce paper tables, gate CI on regressions."""

from . import core  # noqa: E402

core.register(app)

from . import train as train_cli

train_cli.register(app)

from . import report as report_cli

report_cli.register(app)

from . import data as data_cli

data_cli.register(app)

from . import weights as weights_cli

weights_cli.register(app)

from . import bench as bench_cli

bench_cli.register(app)

from . import runs as runs_cli

runs_cli.register(app)


def run_app(typer_app: typer.Typer) -> None:
    """Run a typer app and exit with the documented codes (shared by ``python -m ...train``).

    Typer (>= 0.29 vendors its own click) is called with ``standalone_mode=False`` so that our
    typed errors reach this handler; its usage errors, aborts and exits are recognised by their
    interface (``show``/``exit_code``) rather than by importing click, which typer no longer
    requires.
    """
    previous = _install_signal_handlers()
    _received.clear()
    try:
        from ..errors import stored_warnings_once

        with stored_warnings_once():  # a tampered stored file is named once per command
            rc = typer_app(standalone_mode=False)  # returns typer.Exit codes instead of raising
        if _received:  # typer turned our interrupt into Exit(130): report it (and 143 for SIGTERM)
            sys.exit(_report_interrupt(_received[-1]))
        if rc == 130:  # a KeyboardInterrupt no handler of ours saw (typer's Exit(130))
            sys.exit(_report_interrupt(None))
        sys.exit(rc if isinstance(rc, int) else 0)
    except FaceblurError as exc:
        from rich.markup import escape  # messages are plain text: "[iqa]" is not markup

        from ..text import printable

        def shown(text: str) -> str:  # names in messages may hold escape codes; keep the lines
            return escape("\n".join(printable(line) for line in text.split("\n")))

        console.print(f"[bold red]error:[/] {shown(exc.message)}", highlight=False, markup=True)
        if exc.hint:
            console.print(f"[yellow]fix:[/] {shown(exc.hint)}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        sys.exit(_report_interrupt(exc))
    except SystemExit:
        raise
    except Exception as exc:
        name = type(exc).__name__
        if name == "Abort":  # click turns KeyboardInterrupt into Abort: the interrupt is its cause
            cause = exc.__cause__ or exc.__context__
            sys.exit(_report_interrupt(cause if isinstance(cause, KeyboardInterrupt) else None))
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # a click-style usage error (exit code 2) or other CLI exception
            sys.exit(exc.exit_code)
        if name == "Exit":
            sys.exit(int(getattr(exc, "exit_code", 0) or 0))
        raise
    finally:
        _restore_signal_handlers(previous)


#: interrupts raised by our signal handlers in this process (typer swallows KeyboardInterrupt)
_received: list[BaseException] = []


def note_interrupt(exc: BaseException) -> None:
    """Report ``exc`` (an :class:`~faceblur_bench.errors.Interrupted` raised by another handler
    than ours, e.g. torchrun's in ``run --nproc``) with its own exit code: typer turns every
    KeyboardInterrupt into exit 130, which would make a SIGTERM look like Ctrl-C."""
    _received.append(exc)


def _install_signal_handlers() -> dict[int, object]:
    """SIGTERM (and SIGINT) raise :class:`~faceblur_bench.errors.Interrupted` in the main
    thread, so a run stores its summary before the process exits 143 (130). Returns the
    handlers it replaced (restored by :func:`_restore_signal_handlers`)."""
    import signal

    from ..errors import Interrupted, Terminated

    def handler(signum: int, frame: object) -> None:
        exc = Terminated() if signum == signal.SIGTERM else Interrupted()
        _received.append(exc)  # the run attaches what it stored to this very object
        raise exc

    previous: dict[int, object] = {}
    try:
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, handler)
        # always, not only over the default handler: a shell starting us in the background
        # (`nohup ... &`) hands SIGINT down as ignored, and Ctrl-C or `kill -INT` must still
        # store the summary and exit 130
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (an embedding application): keep its handlers
        pass
    return previous


def _restore_signal_handlers(previous: dict[int, object]) -> None:
    import signal

    for signum, h in previous.items():
        if h is not None:  # None: a handler not installed from Python, cannot be put back
            signal.signal(signum, h)


def _report_interrupt(exc: BaseException | None) -> int:
    """Print the documented interrupt message and what is stored; return 130 or 143."""
    from rich.markup import escape

    code = int(getattr(exc, "exit_code", 130))
    what = "terminated (SIGTERM)" if code == 143 else "interrupted"
    console.print(f"[yellow]{what}[/] — results stored so far are kept; re-run the same command "
                  "to resume", highlight=False)
    stored = getattr(exc, "stored", None)
    if isinstance(stored, dict):
        c = stored.get("counts") or {}
        note = "" if stored.get("summary_written", True) else " (summary.json not written)"
        console.print(escape(
            f"stored: {stored.get('method')} on {stored.get('split')}: {c.get('done', 0)} of "
            f"{c.get('total', 0)} images ({c.get('ok', 0)} ok, {c.get('failed', 0)} failed) "
            f"in {stored.get('run_dir')}{note}"), highlight=False)
    return code


def main() -> None:
    run_app(app)
