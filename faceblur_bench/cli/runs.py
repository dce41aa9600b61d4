"""``faceblur-bench runs``: list the stored runs of a results directory, remove one, prune failed ones."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from .common import JSON_OPT, print_records

RESULTS_OPT = typer.Option(Path("results"), "--results", help="Results directory (run --out).")
WAIT_OPT = typer.Option(0.0, "--wait", help="Seconds to wait for a run that is writing the same run directory.")
COLUMNS = ["split", "method", "label", "run_key", "ok", "failed", "date", "run"]

runs_app = typer.Typer(help="Stored runs of a results directory: list (default), rm, prune --failed.",
                       invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs_default(ctx: typer.Context, results: Path = RESULTS_OPT, as_json: bool = JSON_OPT) -> None:
    """Without a sub-command: list the stored runs (as ``runs list``)."""
    if ctx.invoked_subcommand is None:
        list_cmd(results, as_json)


@runs_app.command("list")
def list_cmd(results: Path = RESULTS_OPT, as_json: bool = JSON_OPT) -> None:
    """Every stored run: split, method, label, run key, images ok / failed, date, directory."""
    from ..engine.stored import list_runs

    records = [r.to_dict() for r in list_runs(results)]
    print_records(records, [] if as_json else COLUMNS, f"runs under {results}", as_json)


@runs_app.command("rm")
def rm_cmd(
    run: List[str] = typer.Argument(..., help="Run key, --label, or run directory (repeatable)."),
    results: Path = RESULTS_OPT,
    wait: float = WAIT_OPT,
) -> None:
    """Remove runs (under the run lock; only directories inside <results>/runs)."""
    from ..engine.stored import find_run, remove_run

    found = [find_run(results, ref) for ref in run]  # every name resolves before anything is removed
    for r in found:
        remove_run(results, r, wait)
        _said(r, "removed")
    _refresh_reports(results, {r.split for r in found})


@runs_app.command("prune")
def prune_cmd(
    failed: bool = typer.Option(False, "--failed", help="Remove the runs in which every image failed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    results: Path = RESULTS_OPT,
    wait: float = WAIT_OPT,
) -> None:
    """Remove runs by a rule (``--failed``: every stored image failed, e.g. a wrong pattern)."""
    from ..engine.stored import prune_failed
    from ..errors import UsageError

    if not failed:
        raise UsageError("`runs prune` needs a rule", "pass --failed (runs in which every image failed)")
    gone = prune_failed(results, wait, dry_run)
    for r in gone:
        _said(r, "would remove" if dry_run else "removed")
    if not gone:
        _said(None, "no run in which every image failed")
    if not dry_run:
        _refresh_reports(results, {r.split for r in gone})


def _said(run, what: str) -> None:
    from . import console

    text = what if run is None else (f"{what} {run.split} / {run.label or run.method} [{run.run_key}] "
                                     f"({run.ok} ok, {run.failed} failed): {run.dir}")
    console.print(text, highlight=False, markup=False)


def _refresh_reports(results: Path, splits: set[str]) -> None:
    """The Markdown files ``run`` wrote (``<split>.md``, ``leaderboard.md``) without the removed
    runs: rewritten when they exist (a split left without runs loses its file)."""
    from ..engine.stored import list_runs
    from ..report.leaderboard import publish_split, write_leaderboard
    from ..results import split_slug

    left = {r.split for r in list_runs(results)}
    lb = results / "leaderboard.md"
    for split in sorted(splits):
        table = results / f"{split_slug(split)}.md"
        if split in left and table.exists():
            publish_split(split, results, lb)
        elif table.exists():
            table.unlink()
    if lb.exists():
        write_leaderboard(results, lb)
