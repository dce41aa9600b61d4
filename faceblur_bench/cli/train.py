"""``faceblur-bench train``: train SAPPGAN / DFPGnet from scratch, list presets, export weights.

    faceblur-bench train sappgan --data-root DIR --out RUN [--config FILE] [--epochs N]
                                 [--batch-size N] [--ablation S0..S5] [--resume]
    faceblur-bench train dfpg    --data-root DIR --out RUN [--ablation B1..B6] ...
    torchrun --nproc_per_node 4 -m faceblur_bench.train sappgan --data-root DIR --out RUN
    faceblur-bench train presets
    faceblur-bench train export RUN/checkpoints/last.pth sappgan.pth
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

train_app = typer.Typer(help="Train SAPPGAN / DFPGnet from scratch on the MSPL training layout.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _parse_weights(items: Optional[list[str]]) -> dict[str, str]:
    from .core import parse_weights

    return parse_weights(items)


def _train(method: str, data_root: Path, out: Path, config: Optional[Path], epochs: Optional[int],
           batch_size: Optional[int], ablation: Optional[str], resume: bool, device: Optional[str],
           weights: Optional[list[str]], progress: bool) -> None:
    from ..devices import resolve_device
    from ..train.loop import train

    if device not in (None, "auto"):
        resolve_device(device)  # an unknown or absent device: exit 2 before the run starts
    res = train(method, data_root, out, config=config, ablation=ablation, epochs=epochs, batch_size=batch_size,
                resume=resume, device=None if device in (None, "auto") else device,
                weights_overrides=_parse_weights(weights), progress=progress)
    if res.checkpoint is not None and res.history:
        typer.echo(f"done: {res.epochs_done} epochs, {res.steps} steps; checkpoint {res.checkpoint}")


def _make_command(method: str, presets_help: str):
    def command(
        data_root: Path = typer.Option(..., "--data-root", help="Folder with the MSPL training layout "
                                       "(train_img/, train_label/ or train_label_cls4/, optional trainkernels/, validationset/)."),
        out: Path = typer.Option(..., "--out", help="Run folder: config.json, log.csv, steps.csv, samples/, checkpoints/."),
        config: Optional[Path] = typer.Option(None, "--config", help="JSON or TOML file overriding configuration keys "
                                              "(e.g. model.generator.widths, data.kernels, optim.lr_g)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Total epochs (paper: 300). With --resume: extend the run to N."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per step per process (paper: 16)."),
        ablation: Optional[str] = typer.Option(None, "--ablation", help=presets_help),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.pth (exactly)."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | cuda:N (default: cuda when available; "
                                             "under torchrun: cuda:LOCAL_RANK)."),
        weights: Optional[list[str]] = typer.Option(None, "--weights", help="Weight file override NAME=PATH "
                                                    "(e.g. vggface16=/path/VGGFace16.pth)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        _train(method, data_root, out, config, epochs, batch_size, ablation, resume, device, weights, progress)

    return command


train_app.command("sappgan", help="Train SAPPGAN (Han et al., IEEE Access 2023): DFPGnet generator + SAPP discriminator, PW loss, "
                  "coarse-to-fine α; λ = 1, 1, 0.06; Adam 1e-4 x0.99/epoch; batch 16; 300 epochs.")(
    _make_command("sappgan", "SAPPGAN ablation preset S0..S5 (Table 3; default S5 = full model)."))
train_app.command("dfpg", help="Train DFPGnet (Jung et al.): prior stream + channel-attention feature discriminator; "
                  "λ_adv 0.05, λ_prior 1; Adam G 1e-4 / D 1e-5 x0.99/epoch.")(
    _make_command("dfpg", "DFPG ablation preset B1..B6 (Table 4; default B6 = full model)."))


@train_app.command("presets")
def presets(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the ablation presets of both trainers with their switches."""
    import json

    from rich.console import Console
    from rich.table import Table

    from ..methods.dfpg import presets as dp
    from ..methods.sappgan import presets as sp

    rows = []
    for method, mod in (("sappgan", sp), ("dfpg", dp)):
        for name, over in mod.PRESETS.items():
            rows.append({"method": method, "preset": name, "full": name == mod.FULL,
                         "description": mod.DESCRIPTIONS[name], "overrides": over})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title="training presets")
    for c in ("method", "preset", "description", "overrides"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["method"], r["preset"] + (" *" if r["full"] else ""), r["description"], json.dumps(r["overrides"]))
    Console().print(t)


@train_app.command("export")
def export(
    checkpoint: Path = typer.Argument(..., help="Trainer checkpoint (RUN/checkpoints/last.pth or best.pth)."),
    dest: Path = typer.Argument(..., help="Output .pth holding only config + generator (what `run` needs)."),
) -> None:
    """Write the inference part of a training checkpoint (for `run --method sappgan|dfpg --checkpoint`)."""
    from ..train import checkpoint as ckpt_io

    ck = ckpt_io.load(checkpoint)
    ckpt_io.export_generator(ck, dest)
    typer.echo(f"wrote {dest} ({ck['method']} {ck.get('ablation')}, epoch {ck.get('epoch')})")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
