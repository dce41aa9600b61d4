"""Core commands: run, score, methods, splits, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from ..errors import WAIT_MAX_S, FaceblurError, WeightsMissingError
from ..methods.catalog import builtin_baselines, check_checkpoint_takers
from .common import (
    JSON_OPT,
    SEED_RANGE,
    RichProgress,
    in_range,
    make_progress,
    parse_kv,
    parse_weight_overrides,
    print_plain,
    print_records,
    split_list,
)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("score")(score)
    app.command("methods")(list_methods)
    app.command("splits")(list_splits)
    app.command("metrics")(list_metrics)


def run(
    method: Optional[List[str]] = typer.Option(None, "--method", "-m", help="Method name (repeatable). Default: every registered baseline."),
    split: str = typer.Option("demo", "--split", "-s", help="Split name, or split/subset (e.g. mspl-center/ffhq)."),
    metrics: Optional[List[str]] = typer.Option(None, "--metrics", help="Comma-separated metric names. Default: every registered metric."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Root directory of the datasets (default $FACEBLUR_DATA or ~/.cache/faceblur_bench/data)."),
    out_dir: Path = typer.Option(Path("results"), "--out", help="Results directory."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per restore() call."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint of a learned method."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-o", help="Method option KEY=VALUE (repeatable): goes to every method that declares KEY; METHOD.KEY=VALUE to that method alone."),
    label: Optional[List[str]] = typer.Option(None, "--label", help="Name of the run in tables, leaderboard, figures and LaTeX: NAME (one method) or METHOD=NAME (repeatable)."),
    weights: Optional[List[str]] = typer.Option(None, "--weights", help="Weight file override NAME=PATH (repeatable)."),
    save_images: bool = typer.Option(False, "--save-images", help="Write restored images under the run directory."),
    strict: bool = typer.Option(False, "--strict", help="Fail when a metric is unavailable instead of reporting n/a."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Accept an incomplete split (marked partial in results)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N samples (marked partial)."),
    leaderboard: Optional[Path] = typer.Option(None, "--leaderboard", help="Leaderboard file to regenerate (default: <out>/leaderboard.md; a run writes nothing outside --out unless told)."),
    wait: float = typer.Option(0.0, "--wait", callback=in_range("--wait", 0, WAIT_MAX_S), help="Seconds (0 to 86400) to wait for another run holding the same results directory."),
    seed: int = typer.Option(0, "--seed", **SEED_RANGE, help="Random seed, 0 to 2**32-1 (recorded in the summary)."),
    runtime: bool = typer.Option(False, "--runtime", help="Also time restore() at 128x128 (SR methods: 256/scale, e.g. 32x32 for x8), batch 1 and 16 (fp32; bf16 on CUDA): CUDA events or perf_counter, median of --runtime-repeats calls."),
    runtime_repeats: int = typer.Option(50, "--runtime-repeats", min=1, help="Timed calls per runtime configuration."),
    protocol: str = typer.Option("s2s", "--protocol", help="s2s: one output per blurred image vs. its ground truth; "
                                 "s2v (300vw): n outputs at u_k = k/(n-1), output k vs. sharp frame k (continuous methods)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Shard the run over N processes on this machine "
                              "(torchrun --standalone; gloo on CPU, one GPU per process with NCCL). "
                              "For several nodes start torchrun yourself: docs/distributed.md."),
) -> None:
    """Restore every image of a split with each method, score it, and write results."""
    import os

    if "RANK" in os.environ:  # a torchrun rank: stop when its launcher dies, even by SIGKILL
        from ..engine.distributed import die_with_launcher

        die_with_launcher()
    from ..registry import methods as method_registry
    from ..registry import metrics as metric_registry

    # unknown names first, with "did you mean", from static metadata: before torch is imported
    # (and before a sharded run starts its ranks)
    for n in dict.fromkeys(method or []):
        method_registry.check(n)
    for n in split_list(metrics):
        metric_registry.check(n)
    check_split_name(split, data_root)
    from ..data.moments import check_protocol_name  # after the names: a typo imports nothing more
    from ..devices import check_device_name

    # and every other usage error that needs no loaded method: the spelling of --device,
    # --protocol, --weights NAME=PATH; with --method, options (names and values), labels,
    # --checkpoint and whether each method fits the protocol, from the methods' static records
    check_device_name(device)
    check_protocol_name(protocol)
    overrides = parse_weight_overrides(weights)
    if method:
        given = list(dict.fromkeys(method))
        check_method_options(route_options(parse_kv(option, "--option"), given), protocol)
        route_labels(label, given)
        check_checkpoint_takers(given, checkpoint)
    else:
        # the defaults are built-in baselines, those that fit the split chosen once it is read
        # (after torch loads): an option KEY no baseline declares is a typo whatever the split
        route_options(parse_kv(option, "--option"), builtin_baselines())
    if nproc > 1:
        import sys

        from ..engine.distributed import launch

        from ..errors import Interrupted
        from . import note_interrupt

        if "WORLD_SIZE" not in os.environ:  # not already a torchrun rank: become the launcher
            try:
                code = launch(nproc, sys.argv[1:])
            except Interrupted as exc:  # torchrun's handler took the signal, not ours: 143 stays 143
                note_interrupt(exc)
                raise
            raise typer.Exit(code)
    from .. import engine
    from ..engine.distributed import world_from_env
    from ..data.moments import check_protocol

    # default: the baselines that can run on this split (no kernel-based one without kernels)
    names = list(dict.fromkeys(method)) if method else engine.default_method_names(split, data_root)
    metric_names = split_list(metrics) or engine.default_metric_names(split, data_root)
    per_method = route_options(parse_kv(option, "--option"), names)
    labels = route_labels(label, names)
    check_checkpoint_takers(names, checkpoint)  # the default methods (baselines) take none
    for n in names:  # bad options and methods unfit for the protocol fail before any work
        cls = method_registry.get(n)
        cls.validate_options(per_method[n])
        check_protocol(protocol, n, cls.accepts_moment)
        cls.check_protocol_options(protocol, per_method[n])
    for n in metric_names:
        metric_registry.get(n)
    summaries = []
    with make_progress() as prog:
        for name in names:
            cfg = engine.RunConfig(
                method=name, split=split, metrics=metric_names, data_root=data_root, results_dir=out_dir,
                device=device, batch_size=batch_size, checkpoint=checkpoint, method_options=per_method[name],
                save_images=save_images, strict=strict, allow_partial=allow_partial, weights_overrides=overrides,
                limit=limit, seed=seed, wait=wait, runtime=runtime, runtime_repeats=runtime_repeats,
                protocol=protocol, label=labels.get(name))
            try:
                summaries.append(engine.evaluate(cfg, progress=RichProgress(prog)))
            except WeightsMissingError as exc:  # name every missing input, not only the first
                raise with_data_problem(exc, split, data_root, allow_partial) from None
            if world_from_env().is_main:
                _say_session(summaries[-1])
    if not world_from_env().is_main:  # rank 0 of a sharded run publishes and reports
        return
    from ..report.leaderboard import publish_split

    lb_path = leaderboard if leaderboard is not None else out_dir / "leaderboard.md"
    md = publish_split(summaries[0]["split"], out_dir, lb_path, fallback=summaries, console=True)
    print_plain(md)
    _exit_on_failed_images(summaries)


def check_split_name(split: str, data_root: Path | None) -> None:
    """Refuse an unknown split or subset name (``UnknownNameError``, "did you mean") without
    importing torch; any other problem of the split (missing data) is left to the command, which
    reports it in its own order."""
    from ..data.base import open_split
    from ..errors import UnknownNameError
    from ..registry import splits

    head, colon, _ = split.partition(":")
    if colon and "/" not in head:  # split:ARGUMENT (folder:DIR): the argument is the command's
        splits.check(head)
        return
    try:
        open_split(split, data_root, allow_partial=True)
    except UnknownNameError:
        raise
    except FaceblurError:
        pass


def check_method_options(per_method: dict[str, dict[str, Any]], protocol: str | None = None) -> None:
    """Refuse what each method's ``validate_options`` and the protocol check would refuse — an
    option it does not declare ("did you mean"), a value of the wrong type or below its
    minimum, ``--protocol s2v`` for a method without ``accepts_moment`` — from the method's
    record: static for built-ins, so no torch is imported."""
    from ..data.moments import check_protocol
    from ..methods.catalog import check_options
    from ..registry import methods as method_registry

    for name, opts in per_method.items():
        rec = method_registry.record(name)
        if rec["options"] is not None:
            check_options(name, opts, rec["options"])
        if protocol is not None:
            check_protocol(protocol, name, rec["accepts_moment"])


def route_options(opts: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
    """``--option`` values per method of the command.

    ``METHOD.KEY=VALUE`` goes to METHOD alone (a method of this command). ``KEY=VALUE`` goes to
    every method that declares KEY; methods that declare no options (plugins, ``option_specs``
    None) take it when no method of the command declares it; with one method everything goes
    to it (its own checks name an unknown option with "did you mean"). An option no method
    takes is a :class:`UsageError` naming the methods and what they accept."""
    import difflib

    from ..errors import UsageError
    from ..registry import methods as method_registry

    specs = {n: method_registry.record(n)["options"] for n in names}  # static for built-ins
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in opts.items():
        prefix, dot, rest = key.partition(".")
        if dot:
            if prefix not in names:
                close = difflib.get_close_matches(prefix, names, n=1, cutoff=0.5)
                raise UsageError(f"--option {key}=…: {prefix!r} is not a method of this command"
                                 + (f"; did you mean {close[0]!r}?" if close else ""),
                                 f"methods: {', '.join(names)}; write --option METHOD.KEY=VALUE")
            out[prefix][rest] = value
            continue
        takers = [n for n in names if specs[n] is not None and key in specs[n]]
        if not takers:
            takers = [n for n in names if specs[n] is None] or (names if len(names) == 1 else [])
        if not takers:
            declared = sorted({k for sp in specs.values() for k in (sp or {})})
            close = difflib.get_close_matches(key, declared, n=1, cutoff=0.5)
            raise UsageError(f"no method of this command ({', '.join(names)}) takes option {key!r}"
                             + (f"; did you mean {close[0]!r}?" if close else ""),
                             "options they declare: " + (", ".join(declared) or "none")
                             + "; `faceblur-bench methods NAME` lists a method's options")
        for n in takers:
            out[n][key] = value
    return out


def route_labels(labels: list[str] | None, names: list[str]) -> dict[str, str]:
    """``--label NAME`` (one method) / ``--label METHOD=NAME`` -> {method: name}; names are
    non-empty, one line, distinct."""
    import difflib

    from ..errors import UsageError

    out: dict[str, str] = {}
    for item in labels or []:
        method, eq, name = item.partition("=")
        if not eq:
            if len(names) != 1:
                raise UsageError(f"--label {item!r} does not say which of the {len(names)} methods it names",
                                 f"write --label METHOD=NAME (methods: {', '.join(names)})")
            method, name = names[0], item
        method, name = method.strip(), name.strip()
        if method not in names:
            close = difflib.get_close_matches(method, names, n=1, cutoff=0.5)
            raise UsageError(f"--label {item!r}: {method!r} is not a method of this command"
                             + (f"; did you mean {close[0]!r}?" if close else ""),
                             f"methods: {', '.join(names)}")
        if not name or not name.isprintable():
            raise UsageError(f"--label {item!r}: a label is a non-empty name on one line",
                             "e.g. --label 'SAPPGAN (authors)'")
        if method in out:
            raise UsageError(f"two --label values for {method}: {out[method]!r} and {name!r}", "give one")
        out[method] = name
    if len(set(out.values())) != len(out):
        raise UsageError("two methods got the same --label", "give each run its own name")
    return out


def _say_session(summary: dict) -> None:
    """One line on what this invocation did: rows reused (and when they were computed), rows
    computed, metrics added to stored rows, images saved — or that nothing was computed."""
    from . import console

    this = summary.get("this_session") or {}
    reused = this.get("reused") or {}
    n_reused = int(reused.get("rows") or 0)
    if not n_reused:
        return
    dates = reused.get("dates") or []
    when = (f" (computed {dates[0]})" if len(dates) == 1 else
            f" (computed {dates[0]} … {dates[-1]}, {len(dates)} sessions)" if dates else "")
    parts = [f"{n_reused} stored row(s) reused{when}", f"{this.get('computed', 0)} computed now"]
    if this.get("completed"):
        parts.append(f"{this['completed']} stored row(s) gained metrics")
    if this.get("images_saved"):
        parts.append(f"{this['images_saved']} image(s) saved")
    if this.get("rebuilt"):
        parts.append("summary.json did not match the stored rows: rebuilt from them")
    elif this.get("session") is None:
        parts.append("nothing computed: summary.json left as it was")
    console.print(f"{summary.get('method')} on {summary.get('split')}: resumed — " + "; ".join(parts),
                  highlight=False, markup=False)


def _exit_on_failed_images(summaries: list[dict]) -> None:
    """The exit-code rule (docs/exit-codes.md): results are written, then a command whose images
    failed exits 1 — a table with failed images is not a success."""
    failed = sum(s["counts"]["failed"] for s in summaries)
    if not failed:
        return
    from . import console

    total = sum(s["counts"]["total"] for s in summaries)
    console.print(f"[yellow]{failed} of {total} image(s) failed[/] — reasons are in the rows of each "
                  f"run (see the 'failures' field of summary.json); exit code 1", highlight=False)
    # SystemExit, not typer.Exit: with standalone_mode=False typer.Exit would lose the code
    raise SystemExit(1)


def with_data_problem(exc: FaceblurError, split: str, data_root: Path | None,
                      allow_partial: bool) -> FaceblurError:
    """``exc`` (missing weights) joined with the split's missing-data error when the data is
    missing too, so one attempt tells the user both things to provide."""
    from .. import engine
    from ..errors import DataNotFoundError

    try:
        engine.open_split(split, data_root, allow_partial).samples()
    except DataNotFoundError as data_exc:
        return DataNotFoundError(
            f"two inputs are missing: (1) {exc.message}; (2) {data_exc.message}",
            f"(1) {exc.hint}\n(2) {data_exc.hint}")
    except FaceblurError:
        return exc
    return exc


def score(
    restored: Path = typer.Option(..., "--restored", help="Directory of restored images."),
    reference: Path = typer.Option(..., "--reference", help="Directory of ground-truth images."),
    metrics: Optional[List[str]] = typer.Option(None, "--metrics", help="Comma-separated metric names (default psnr,ssim)."),
    pattern: str = typer.Option("{stem}{suffix}", "--pattern", help="Restored file name for a reference file: placeholders {stem}, {suffix}, {name}; e.g. '{stem}_out.png'. A missing restored file is a failed row (exit 1); GIF/APNG/TIFF/video sequences are paired frame by frame."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the summary (and per-image values) as JSON here."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Results directory (default: a temporary one)."),
    device: str = typer.Option("auto", "--device"),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    weights: Optional[List[str]] = typer.Option(None, "--weights", help="Weight file override NAME=PATH."),
) -> None:
    """Score images produced by any other code against references, pairing files by name."""
    import tempfile

    from ..devices import check_device_name
    from ..registry import metrics as metric_registry

    metric_names = split_list(metrics) or ["psnr", "ssim"]
    for n in metric_names:
        metric_registry.check(n)  # static names: a typo answers before torch is imported
    check_device_name(device)  # and the spellings of --device and --weights
    overrides = parse_weight_overrides(weights)
    from .. import engine
    from ..data.folders import PairedFolders
    from ..report import tables

    for n in metric_names:
        metric_registry.get(n)
    split = PairedFolders(restored, reference, pattern)
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="faceblur-score-")
        out_dir = Path(tmp.name)
    try:
        cfg = engine.RunConfig(method="blurred", split=split, metrics=metric_names, results_dir=out_dir,
                               device=device, batch_size=batch_size,
                               weights_overrides=overrides)
        with make_progress() as prog:
            summary = engine.evaluate(cfg, progress=RichProgress(prog, f"scoring {restored} against {reference}"))
        summary["method"] = "score"
        print_plain(tables.summary_table([summary], metric_names, fmt="md"))
        from ..results import atomic_write_json, read_rows

        rows = read_rows(Path(summary["run_dir"]) / "rows.jsonl") if "run_dir" in summary else []
        _warn_gif(rows)
        if json_path is not None:
            atomic_write_json(json_path, {"summary": summary, "rows": rows})
        _exit_on_failed_images([summary])
    finally:
        if tmp is not None:
            tmp.cleanup()


def _warn_gif(rows: list[dict]) -> None:
    """One console warning when GIF files were scored: their palette limits PSNR."""
    from ..imageio import GIF_NOTE

    gifs = {w.split(" ", 1)[0] for r in rows for w in (r.get("warnings") or []) if w.endswith(GIF_NOTE)}
    if gifs:
        from . import console

        console.print(f"[yellow]warning:[/] {len(gifs)} GIF file(s) scored ({', '.join(sorted(gifs)[:3])}"
                      f"{', …' if len(gifs) > 3 else ''}): {GIF_NOTE.removeprefix('is a GIF: ')}",
                      highlight=False)


def list_methods(
    method: str | None = typer.Argument(None, help="A method: list its options (type, default, meaning)."),
    as_json: bool = JSON_OPT,
) -> None:
    """List registered methods with a one-line description and parameter count; with METHOD, the
    options that method accepts (``run --option KEY=VALUE``)."""
    from ..registry import methods as method_registry

    # every answer comes from the static catalog (built-ins: no torch, no network built);
    # plugins and methods registered in code describe themselves (methods.catalog.record)
    if method is not None:
        rec = method_registry.record(method)
        specs = rec["options"]
        recs = [{"option": k, "type": o["type"], "default": "(required)" if o["required"] else
                 ("–" if o["default"] is None else o["default"]), "meaning": o["help"]}
                for k, o in sorted((specs or {}).items())]
        if as_json:
            print_records([{"name": method, "description": rec["description"],
                             "options": None if specs is None else recs}], [], method, True)
            return
        from . import out

        out.print(f"[bold]{method}[/]: {rec['description']}", highlight=False)
        if specs is None:
            out.print("options: not declared by this method (any --option KEY=VALUE is passed "
                      "through unchecked)", highlight=False)
        elif not specs:
            out.print("options: none", highlight=False)
        else:
            print_records(recs, ["option", "type", "default", "meaning"],
                           f"options of {method} (--option KEY=VALUE)", False)
        return
    records = [{"name": name, "params_M": None if r["params"] is None else round(r["params"] / 1e6, 3),
                "scale": r["scale"], "description": r["description"], "origin": r["origin"]}
               for name, r in method_registry.records()]
    print_records(records, ["name", "params_M", "scale", "description", "origin"], "methods", as_json)


def list_splits(
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Where to look (default $FACEBLUR_DATA or ~/.cache/faceblur_bench/data)."),
    layouts: bool = typer.Option(False, "--layouts", help="Also print the expected layout of every missing split."),
    as_json: bool = JSON_OPT,
) -> None:
    """List splits: found or not, where it looked, sample count, expected layout when missing."""
    from ..data.base import default_data_root
    from ..data.status import found_text, missing_layouts, split_status
    from . import out

    records = split_status(data_root)
    if as_json:
        print_records(records, [], "splits", True)
    else:
        root = str(Path(data_root).expanduser() if data_root else default_data_root())
        shown = [{**r, "found": found_text(r),
                  "where": r["where"].replace(root + "/", "").replace(" | " + root + "/", " | ")}
                 for r in records]
        print_records(shown, ["name", "found", "samples", "where", "description"], f"splits under {root}", False)
    if layouts and not as_json:
        for name, layout in missing_layouts(records):  # once per split, not per subset
            out.print(f"[bold]{name}[/] expected layout:\n{layout}", highlight=False)


def list_metrics(as_json: bool = JSON_OPT) -> None:
    """List metric protocols: name, direction, family, kind, weights needed, one-line definition."""
    from ..registry import metrics as metric_registry

    # from the static catalog: no metric module (torch, networks) is imported for built-ins
    records = [{"name": name, "better": "↑" if r["higher_is_better"] else "↓", "family": r["family"],
                "kind": r["kind"], "weights": ", ".join(r["weights"]) or None, "protocol": r["protocol"]}
               for name, r in metric_registry.records()]
    print_records(records, ["name", "better", "family", "kind", "weights", "protocol"], "metrics", as_json)
