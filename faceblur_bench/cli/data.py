"""``faceblur-bench data ...`` (status, verify, build-demo, kernels) and ``faceblur-bench make-split``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import SEED_RANGE

DATA_ROOT_OPT = typer.Option(None, "--data-root",
                             help="Root directory of the datasets (default $FACEBLUR_DATA or ~/.cache/faceblur_bench/data).")

data_app = typer.Typer(help="Datasets: status of every split, integrity manifests, the demo split, kernels.",
                       no_args_is_help=True)


@data_app.command("status")
def status(data_root: Optional[Path] = DATA_ROOT_OPT,
           as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Every split: found or not, where it looked, sample count, expected layout when missing."""
    from ..data.status import found_text, missing_layouts, split_status
    from . import out
    from .common import print_records

    records = split_status(data_root)
    if as_json:
        print_records(records, [], "splits", True)
        return
    shown = [{**r, "found": found_text(r), "partial": "yes" if r["partial"] else "no"} for r in records]
    print_records(shown, ["name", "found", "samples", "partial", "where", "error"], "splits", False)
    for name, layout in missing_layouts(records):
        if name != "demo":
            out.print(f"[bold]{name}[/] expected layout:\n{layout}", highlight=False, markup=True)


@data_app.command("verify")
def verify_cmd(
    split: str = typer.Argument(..., help="Split name or split/subset (e.g. mspl-center/ffhq)."),
    data_root: Optional[Path] = DATA_ROOT_OPT,
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Accept missing files (reported as problems)."),
    rewrite: bool = typer.Option(False, "--rewrite", help="Replace the stored manifest with the current files."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check layout and counts against the release; write (first time) or compare the sha256 manifest.

    Manifests are stored in <data_root>/.faceblur_manifests/ when writable, else in
    ~/.cache/faceblur_bench/manifests/<hash of data root>/. Exit code 1 when files changed or
    counts differ."""
    from rich.progress import Progress

    from .core import check_split_name

    check_split_name(split, data_root)  # an unknown name answers before torch is imported
    from ..data.manifest import verify
    from ..engine import open_split
    from . import console, out
    from .common import dump_json

    sp = open_split(split, data_root, allow_partial=allow_partial)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"hashing {sp.full_name}", total=None)
        res = verify(sp, rewrite=rewrite, progress=lambda i, n: prog.update(task, completed=i, total=n))
    if as_json:
        out.print_json(dump_json(res.to_dict()))
    else:
        state = "written" if res.created else "compared"
        out.print(f"[bold]{res.split}[/]: {res.samples} samples, counts {res.counts} (release {res.expected})")
        out.print(f"manifest {state}: {res.manifest}\nmanifest hash: {res.hash}")
        for label, items in (("changed", res.changed), ("missing", res.missing), ("added", res.added),
                             ("problem", res.problems)):
            for it in items[:20]:
                out.print(f"[red]{label}[/]: {it}", highlight=False)
            if len(items) > 20:
                out.print(f"[red]... {len(items) - 20} more {label}[/]")
        out.print("[green]OK[/]" if res.ok else "[red]MISMATCH[/]")
    if not res.ok:
        raise typer.Exit(1)


@data_app.command("build-demo")
def build_demo_cmd(data_root: Optional[Path] = DATA_ROOT_OPT,
                   seed: int = typer.Option(0, "--seed", **SEED_RANGE, help="Seed of kernels and noise (0 to 2**32-1).")) -> None:
    """Build the demo split now (it is otherwise built on first use)."""
    from ..data.demo import DemoSplit
    from . import out

    split = DemoSplit(data_root, seed=seed)
    with out.status("detecting faces and blurring (about 15 s)"):
        samples = split.samples()
    man = split.manifest()
    out.print(f"demo split at {split.find()}: {len(samples)} samples from {len(man['faces'])} faces "
              f"(sources {', '.join(man['sources_used'])}; missing: {', '.join(man['missing']) or 'none'})")


@data_app.command("kernels")
def kernels_cmd(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write blur_k{K}.npy files (N x K x K float64)."),
    n: int = typer.Option(10, "--n", min=1, help="Kernels per size."),
    kind: str = typer.Option("spline", "--kind", help="spline (Chakrabarti) or random-walk (Boracchi-Foi)."),
    seed: int = typer.Option(0, "--seed", **SEED_RANGE, help="Seed (0 to 2**32-1); kernel i of size K depends only on (seed, K, i)."),
) -> None:
    """Write a kernel bank for sizes 13, 15, ..., 27."""
    import numpy as np

    from ..data.kernels import kernel_bank
    from . import out

    bank = kernel_bank(n, seed=seed, kind=kind)
    out_dir.mkdir(parents=True, exist_ok=True)
    for k, arr in bank.items():
        np.save(out_dir / f"blur_k{k}.npy", arr)
    out.print(f"wrote {len(bank)} files with {n} {kind} kernels each to {out_dir}")


def make_split_cmd(
    sharp: Path = typer.Option(..., "--sharp", help="Folder of 128x128 sharp face images (png/jpg)."),
    protocol: str = typer.Option(..., "--protocol", help="mspl (8 sizes x 10 kernels, no noise) or shen (noise 0.01)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder; usable as --data-root afterwards."),
    seed: int = typer.Option(0, "--seed", **SEED_RANGE, help="Seed of kernels, noise and random crops (0 to 2**32-1); same seed -> identical files."),
    subset: Optional[str] = typer.Option(None, "--subset", help="mspl: celeba|celeba-hq|ffhq (kernel ids 01-10|11-20|21-30); shen: helen|celeba."),
    variant: str = typer.Option("center", "--variant", help="mspl only: center, or random (documented random rotation/crop)."),
    noise: Optional[str] = typer.Option(None, "--noise", help="Noise preset none|mspl-train|shen or a σ on [0,1] (default: the protocol's)."),
    kernels: str = typer.Option("spline", "--kernels", help="Kernel generator: spline or random-walk."),
    device: str = typer.Option("cpu", "--device", help="cpu: sparse direct convolution (numba); cuda: batched FFT on the GPU."),
) -> None:
    """Synthesise a test split from your own faces in exactly the layout the loaders read."""
    from rich.markup import escape

    from ..data.make_split_args import resolve_args
    from ..devices import check_device_name, resolve_device
    from ..files import describe_skipped
    from . import console, out
    from .common import make_progress

    nz: str | float | None = noise
    if noise is not None:
        try:
            nz = float(noise)
        except ValueError:
            nz = noise
    # names, values and the spelling of --device before torch is imported; then whether the
    # device exists, before the progress bar starts
    resolve_args(protocol, subset, variant, nz, kernels)
    check_device_name(device)
    from ..data.synth import make_split

    resolve_device(device)
    with make_progress() as prog:
        task = prog.add_task(f"make-split {protocol}", total=None)
        man = make_split(sharp, protocol, out_dir, seed=seed, subset=subset, variant=variant, noise=nz,
                         kernel_kind=kernels, device=device,
                         progress=lambda i, n: prog.update(task, completed=i, total=n))
    for sk in man.get("skipped", []):  # unreadable faces (corrupt, over the pixel limit)
        console.print(f"[yellow]skipped[/] {escape(sk['file'])}: {escape(sk['reason'])}", highlight=False)
    if man.get("skipped_not_files"):  # FIFOs, sockets, symlinked folders: never read
        console.print(f"[yellow]warning:[/] {escape(describe_skipped(sharp, man['skipped_not_files']))} "
                      "(listed in make_split.json as skipped_not_files)", highlight=False)
    out.print(f"wrote {len(man['files'])} files ({len(man['images'])} faces x 80 kernels) under {out_dir}; "
              f"load with --data-root {out_dir} --split "
              f"{('mspl-' + man['variant'] + '/' + man['subset']) if protocol == 'mspl' else 'shen-' + man['subset']}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command("make-split")(make_split_cmd)
