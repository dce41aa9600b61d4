"""``faceblur-bench runtime``: time a method's ``restore()`` and count its parameters.

Library function: :func:`faceblur_bench.metrics.runtime.measure_runtime`; this command only
parses options, builds the method and prints a rich table (or JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..errors import UsageError
from ..metrics.catalog import DTYPES


def _parse_size(text: str) -> tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    try:
        size = (int(h), int(w if sep else h))
    except ValueError:
        raise UsageError(f"--size {text!r} is not HxW", "e.g. --size 128x128 or --size 128") from None
    if min(size) < 1:
        raise UsageError(f"--size {text!r} must be positive", "e.g. --size 128x128")
    return size


def runtime(
    method: str = typer.Option(..., "--method", "-m", help="Method name (see `faceblur-bench methods`)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    repeats: int = typer.Option(50, "--repeats", min=1, help="Timed restore() calls per configuration (median reported)."),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed calls before timing."),
    size: Optional[List[str]] = typer.Option(None, "--size", help="Input size HxW (repeatable). Default 128x128."),
    batch: Optional[List[int]] = typer.Option(None, "--batch", help="Batch size (repeatable). Default 1 and 16."),
    dtype: Optional[List[str]] = typer.Option(None, "--dtype", help="fp32 | bf16 (autocast) (repeatable). Default both."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint to load (timing does not depend on the weights' values)."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-o", help="Method option KEY=VALUE (repeatable)."),
    untrained: bool = typer.Option(False, "--untrained", help="Time a learned method with its randomly initialised network (no checkpoint needed; timing does not depend on the weight values)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Median runtime of restore() (CUDA events on GPU, perf_counter on CPU) and parameter count.

    Without --dtype: fp32, plus bf16 autocast for methods with a torch network (it changes
    nothing for numpy code such as the Wiener baseline)."""
    from ..devices import check_device_name
    from ..registry import methods as method_registry
    from .common import parse_kv
    from ..methods.catalog import check_checkpoint_takers
    from .core import check_method_options

    # usage errors before torch is imported: names, spellings, the method's options (its record)
    method_registry.check(method)
    check_checkpoint_takers([method], checkpoint)
    check_device_name(device)
    for d in dtype or []:
        if d not in DTYPES:
            raise UsageError(f"--dtype {d!r} is not one of {', '.join(DTYPES)}", "use --dtype fp32 or --dtype bf16")
    sizes = [_parse_size(s) for s in size] if size else [(128, 128)]
    batches = list(batch) if batch else [1, 16]
    if min(batches) < 1:
        raise UsageError("--batch must be >= 1", "e.g. --batch 1 --batch 16")
    options = parse_kv(option, "--option")
    check_method_options({method: options})
    from .. import engine
    from ..errors import WeightsMissingError
    from ..metrics.runtime import applicable_dtypes, measure_runtime
    from . import out
    from .common import make_progress

    dev = engine.resolve_device(device)
    m = engine.make_method(method, options)
    if untrained:
        if checkpoint is not None:
            raise UsageError("--untrained and --checkpoint exclude each other", "drop one of them")
        if m.num_parameters() is None:
            raise UsageError(f"--untrained: {m.name} has no network to initialise",
                             "drop --untrained for non-learned methods")
        m.init_untrained(dev)
    else:
        try:
            m.load(checkpoint, dev)
        except WeightsMissingError as exc:
            raise WeightsMissingError(
                exc.message, f"{exc.hint}; or time the randomly initialised network with --untrained "
                "(the timing does not depend on the weight values)") from None
    dtypes = list(dtype) if dtype else list(applicable_dtypes(m))
    calls = len(sizes) * len(batches) * len(dtypes) * (1 + warmup + repeats)
    with make_progress() as prog:
        task = prog.add_task(f"timing {method}", total=calls)
        info = measure_runtime(m, dev, sizes=sizes, batches=batches, dtypes=dtypes, repeats=repeats,
                               warmup=warmup,
                               progress=lambda s: prog.update(task, description=f"timing {method}: {s}"),
                               tick=lambda: prog.advance(task))
    if as_json:
        out.print_json(json.dumps(info))
        return
    params = "n/a" if info["parameters_m"] is None else f"{info['parameters_m']:.3f} M"
    title = (f"{info['method']} on {info['device']} ({info['timer']}, median of {repeats}, "
             f"{warmup} warm-up) — parameters {params}")
    table = Table(title=title)
    for col in ("input", "batch", "dtype", "median ms", "ms / image", "p10–p90 ms", "images/s"):
        table.add_column(col, justify="right")
    for r in info["results"]:
        inp = f"{r['size'][0]}x{r['size'][1]}"
        if "error" in r:
            table.add_row(inp, str(r["batch"]), r["dtype"], f"[red]{r['error']}[/]", "", "", "")
            continue
        table.add_row(inp, str(r["batch"]), r["dtype"], f"{r['median_ms']:.3f}", f"{r['per_image_ms']:.3f}",
                      f"{r['p10_ms']:.3f}–{r['p90_ms']:.3f}", f"{r['images_per_s']:.1f}")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("runtime")(runtime)
