"""Console and option-parsing helpers shared by every command (one definition each)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..errors import UsageError


def parse_kv(items: list[str] | None, what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (numbers, true/false parsed)."""
    outd: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"{what} {it!r} is not KEY=VALUE", f"write it as {what} key=value")
        k, v = it.split("=", 1)
        outd[k.strip()] = _parse_value(v.strip())
    return outd


def _parse_value(v: str) -> Any:
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def in_range(what: str, lo: float, hi: float | None = None, integer: bool = False) -> Any:
    """A typer ``callback`` checking a numeric option with
    :func:`~faceblur_bench.errors.check_range` (finite, in ``[lo, hi]``; exit 2 naming the
    whole range): typer's ``min``/``max`` let NaN through and name one bound only."""

    def check(value: float | None) -> float | None:
        from ..errors import check_range

        return None if value is None else check_range(what, value, lo, hi, integer=integer)

    return check


#: ``callback`` of every ``--seed`` option (numpy takes 32-bit unsigned seeds)
SEED_RANGE = {"callback": in_range("--seed", 0, 2**32 - 1, integer=True)}


def split_list(values: list[str] | None) -> list[str]:
    """Accept ``--metrics a,b --metrics c`` -> ``[a, b, c]``."""
    outl: list[str] = []
    for v in values or []:
        outl.extend(x.strip() for x in v.split(",") if x.strip())
    return outl


class RichProgress:
    """Adapter from the engine's progress protocol to a rich progress bar with ETA."""

    def __init__(self, progress: Progress, description: str | None = None):
        self.p = progress
        self.task = None
        self.description = description  # overrides the engine's "<method> on <split>"

    def start(self, total: int, done: int, description: str) -> None:
        from rich.markup import escape

        from ..text import printable

        # split and folder names are data: no escape code or markup reaches the terminal
        self.task = self.p.add_task(escape(printable(self.description or description)),
                                    total=total, completed=done)

    def advance(self, n: int) -> None:
        self.p.advance(self.task, n)


def make_progress() -> Progress:
    from . import console

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                    transient=False)


def parse_weight_overrides(items: list[str] | None, option: str = "--weights") -> dict[str, str]:
    """``["vggface16=/p/VGGFace16.pth"]`` -> ``{"vggface16": "/p/VGGFace16.pth"}``.

    Every NAME must be a registered weight file (unknown -> exit 2 with "did you mean"); the
    PATH is checked where it is used (an explicit override that does not exist is an error).
    """
    from .. import weights as wts

    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"{option} {item!r} is not NAME=PATH", f"e.g. {option} vggface16=/path/VGGFace16.pth")
        wts.get_entry(name.strip())
        out[name.strip()] = path.strip()
    return out


JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def print_records(records: list[dict], columns: list[str], title: str, as_json: bool) -> None:
    """A rich table of ``records`` (or JSON with ``as_json``) on stdout; cells are plain text
    (``faceblur-bench[iqa]`` is not rich markup)."""
    from rich.markup import escape

    from . import out

    if as_json:
        out.print_json(dump_json(records))
        return
    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in records:
        t.add_row(*["–" if r.get(c) is None else escape(str(r.get(c))) for c in columns])
    out.print(t)


def print_plain(text: str) -> None:
    """Markdown goes to stdout unwrapped and unstyled, ready to paste or pipe."""
    import sys

    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
