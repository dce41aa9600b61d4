"""``faceblur-bench`` command line (typer + rich). Thin: parses options, calls library functions.

Exit codes (docs/exit-codes.md): 0 success, every image scored; 1 the command ran and its
outcome is a failure (failed images in ``run``/``score``, a regression found by ``check``);
2 unusable input — the command could not start (unknown names, bad options, missing data,
results path or checkpoint); 130 interrupted.
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

from . import train as train_cli  # noqa: E402

train_cli.register(app)

from . import report as report_cli  # noqa: E402

report_cli.register(app)

from . import data as data_cli  # noqa: E402

data_cli.register(app)

from . import weights as weights_cli  # noqa: E402

weights_cli.register(app)

from . import bench as bench_cli  # noqa: E402

bench_cli.register(app)


def run_app(typer_app: typer.Typer) -> None:
    """Run a typer app and exit with the documented codes (shared by ``python -m ...train``).

    Typer (>= 0.29 vendors its own click) is called with ``standalone_mode=False`` so that our
    typed errors reach this handler; its usage errors, aborts and exits are recognised by their
    interface (``show``/``exit_code``) rather than by importing click, which typer no longer
    requires.
    """
    try:
        rc = typer_app(standalone_mode=False)  # returns typer.Exit codes instead of raising
        sys.exit(rc if isinstance(rc, int) else 0)
    except FaceblurError as exc:
        from rich.markup import escape  # messages are plain text: "[iqa]" is not markup

        console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, markup=True)
        if exc.hint:
            console.print(f"[yellow]fix:[/] {escape(exc.hint)}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/] — results stored so far are kept; re-run the same command to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        name = type(exc).__name__
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # a click-style usage error (exit code 2) or other CLI exception
            sys.exit(exc.exit_code)
        if name == "Abort":
            sys.exit(130)
        if name == "Exit":
            sys.exit(int(getattr(exc, "exit_code", 0) or 0))
        raise


def main() -> None:
    run_app(app)
