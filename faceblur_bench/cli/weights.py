"""``faceblur-bench weights``: table of known weight files; ``weights fetch NAME|--all`` downloads.

``weights fetch pyiqa-<metric>`` lets pyiqa download every file that no-reference model needs.

The table shows, per file: found / missing, the path it was found at (or the place to put it),
size, sha256 check (full hash, or the prefix torch-hub file names carry), the metrics that use it
and where it comes from. ``fetch`` downloads to the upstream cache location with a hash check;
files only published on Google Drive / OneDrive print their manual steps instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from .. import weights as wts
from ..errors import FaceblurError, UsageError, WeightsMissingError
from .common import in_range

weights_app = typer.Typer(
    help="Pretrained files the metrics and methods use: where they are, whether their hashes match, "
    "and how to fetch them.",
    no_args_is_help=False,
    invoke_without_command=True,
)


def _overrides(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"--weights {it!r} is not NAME=PATH", "e.g. --weights vggface16=/path/VGGFace16.pth")
        k, v = it.split("=", 1)
        wts.get_entry(k.strip())  # unknown names -> exit 2 with did-you-mean
        out[k.strip()] = v.strip()
    return out


def users_of(name: str, metric_records: list[tuple[str, dict]] | None = None) -> list[str]:
    """Registered metrics (and the entry's own ``used_by``) that need weight entry ``name``;
    ``metric_records``: ``registry.metrics.records()`` when already at hand (static metadata of
    the built-ins: no metric module is imported)."""
    from ..registry import metrics

    found = {m for m, rec in (metric_records or metrics.records()) if name in rec["weights"]}
    return sorted(found | set(wts.get_entry(name).used_by))


def weight_records(overrides: dict[str, str] | None = None, hash_files: bool = True) -> list[dict]:
    """One JSON-serialisable record per known weight file (what the table shows)."""
    from ..registry import metrics

    metric_records = metrics.records()
    records = []
    for st in wts.status(overrides=overrides, hash_files=hash_files):
        e = st.entry
        refused = st.detail.startswith("override ")  # an explicit override that is not a file
        if refused:
            state = "override refused"
        elif st.path is None:
            state = "missing"
        elif st.hash_ok is False:
            state = "sha256 mismatch"
        else:
            state = "found"
        if not e.hash_known:
            check = "none published"
        elif st.path is None:
            check = "–"
        elif st.hash_ok is None:
            check = "not checked"
        else:
            check = "ok" if st.hash_ok else "MISMATCH"
        records.append({
            "name": e.name, "file": e.filename, "status": state,
            "path": str(st.path) if st.path else str(wts.explicit_override(e, overrides)[0]) if refused
            else str(wts.upstream_dir(e) / e.filename),
            "detail": st.detail,
            "size_MB": None if st.size is None else round(st.size / 1e6, 1),
            "sha256": check, "expected": e.expected_hash(),
            "used_by": ", ".join(users_of(e.name, metric_records)) or None,
            "source": e.url, "download": "auto" if e.downloadable else "manual",
            "manual": e.manual or None, "description": e.description,
        })
    return records


def _show(overrides: dict[str, str], hash_files: bool, as_json: bool) -> None:
    from . import out

    records = weight_records(overrides, hash_files)
    if as_json:
        out.print_json(json.dumps(records))
        return
    t = Table(title="weight files", caption="path: where it was found, or where to place it")
    for col in ("name", "status", "sha256", "size_MB", "used_by", "path", "download"):
        t.add_column(col, overflow="fold")
    colour = {"found": "green", "missing": "yellow", "sha256 mismatch": "bold red", "override refused": "bold red"}
    home = str(Path.home())
    for r in records:
        path = "~" + r["path"][len(home):] if r["path"].startswith(home + "/") else r["path"]
        t.add_row(r["name"], f"[{colour[r['status']]}]{r['status']}[/]", r["sha256"],
                  "–" if r["size_MB"] is None else str(r["size_MB"]), r["used_by"] or "–", path,
                  r["download"])
    out.print(t)
    missing = [r for r in records if r["status"] != "found"]
    if missing:
        out.print(f"{len(missing)} of {len(records)} missing or rejected; `faceblur-bench weights fetch "
                  "NAME` (or --all) downloads the automatic ones; `--json` shows sources and manual steps.")


@weights_app.callback()
def weights_table(
    ctx: typer.Context,
    weights: list[str] | None = typer.Option(None, "--weights", help="Override NAME=PATH (repeatable), "
                                                "as in `run`: show the status of that file instead."),
    no_hash: bool = typer.Option(False, "--no-hash", help="Do not hash files (faster; sha256 column "
                                 "shows 'not checked')."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records (with sources and manual steps)."),
) -> None:
    """Show every known weight file: found/missing, path, size, sha256 check, users, source."""
    if ctx.invoked_subcommand is not None:
        return
    _show(_overrides(weights), not no_hash, as_json)


@weights_app.command("fetch")
def weights_fetch(
    names: list[str] | None = typer.Argument(None, help="Weight entry names (see `faceblur-bench weights`), "
                                             "or pyiqa-<metric> (pyiqa downloads that model's files)."),
    all_: bool = typer.Option(False, "--all", help="Fetch every known file that is missing."),
    force: bool = typer.Option(False, "--force", help="Download again even when a verified file exists."),
    timeout: float = typer.Option(30.0, "--timeout", callback=in_range("--timeout", 0.001, 3600), help="Network timeout in seconds per request (up to 3600)."),
) -> None:
    """Download weight files to their upstream cache locations, checking sha256 where known."""
    from . import console, out

    if not names and not all_:
        raise UsageError("name a weight file or pass --all",
                         "e.g. `faceblur-bench weights fetch arcface-r50`; list names with `faceblur-bench weights`")
    if names and all_:
        raise UsageError("give names or --all, not both")
    targets = sorted(wts.KNOWN) if all_ else list(dict.fromkeys(names or []))
    # pyiqa-<metric>: pyiqa itself downloads every file that model needs
    via_pyiqa = [n for n in targets if n.startswith("pyiqa-") and n not in wts.KNOWN]
    targets = [n for n in targets if n not in via_pyiqa]
    for n in targets:
        wts.get_entry(n)  # unknown -> exit 2 before any download
    for n in via_pyiqa:
        from ..registry import metrics

        metrics.check(n)  # unknown metric -> exit 2 with did-you-mean
    failures: list[tuple[str, FaceblurError]] = []
    for n in via_pyiqa:
        from ..metrics import pyiqa_nr

        try:
            pyiqa_nr.fetch(n)
        except (FaceblurError, OSError) as exc:
            exc = exc if isinstance(exc, FaceblurError) else WeightsMissingError(str(exc))
            failures.append((n, exc))
            console.print(f"[red]{n}[/]: {escape(exc.message)}", highlight=False)
            if exc.hint:
                console.print(f"  [yellow]fix:[/] {escape(exc.hint)}", highlight=False)
            continue
        out.print(f"[green]{n}[/]: pyiqa fetched its files into {pyiqa_nr.pyiqa_cache_dir().parent}")
    for n in targets:
        e = wts.get_entry(n)
        if not force:
            st = wts.status([n])[0]
            if st.path is not None and st.hash_ok is not False:
                out.print(f"[green]{n}[/]: already present at {st.path}")
                continue
        if not e.downloadable:
            failures.append((n, UsageError(f"{n} ({e.filename}) cannot be downloaded automatically",
                                           e.manual)))
            console.print(f"[yellow]{n}[/]: manual download — {e.manual}", highlight=False)
            continue
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=console, transient=True) as prog:
            task = prog.add_task(f"{n} ({e.filename})", total=None)

            def report(done: int, total: int | None, task=task) -> None:
                prog.update(task, completed=done, total=total)

            try:
                path = wts.fetch(n, timeout=timeout, progress=report)
            except FaceblurError as exc:
                failures.append((n, exc))
                console.print(f"[red]{n}[/]: {exc.message}", highlight=False)
                if exc.hint:
                    console.print(f"  [yellow]fix:[/] {exc.hint}", highlight=False)
                continue
        out.print(f"[green]{n}[/]: saved {path}")
    if failures:
        names_failed = ", ".join(n for n, _ in failures)
        raise WeightsMissingError(
            f"{len(failures)} of {len(targets) + len(via_pyiqa)} weight files not fetched: {names_failed}",
            "see the messages above; manual files must be placed by hand "
            "(`faceblur-bench weights --json` lists where each one comes from)",
        )


def register(app: typer.Typer) -> None:
    """Add ``weights`` (table) and ``weights fetch`` to the main app."""
    app.add_typer(weights_app, name="weights")
