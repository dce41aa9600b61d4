"""``faceblur-bench train``: one sub-command per registered trainer, plus ``presets`` and ``export``.

    faceblur-bench train NAME --data-root DIR --out RUN [--preset P] [--config FILE] [--set K=V]
                              [--epochs N] [--batch-size N] [--tiny] [--resume] [--device D]
    torchrun --nproc_per_node 4 -m faceblur_bench.train NAME --data-root DIR --out RUN
    faceblur-bench train presets [NAME]
    faceblur-bench train export RUN/checkpoints/last.pth model.pth

The trainers are whatever ``faceblur_bench.registry.trainers`` holds (built-in method packages
and third-party ``faceblur_bench.trainers`` entry points); this module names none of them.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

# the ``type`` names of trainer options (``trainer_catalog.record``) are those of method options
from ..methods.catalog import OPTION_TYPES



class _LazyTrainerGroup(TyperGroup):
    """``train``'s command group: the per-trainer sub-commands are built on first look-up, so
    every other command (``run``, ``table``, ...) starts without importing the method packages
    (their networks, torchvision, scipy)."""

    def _add_trainers(self) -> None:
        register_trainers()
        for info in train_app.registered_commands:
            if info.name and info.name not in self.commands:
                self.add_command(typer.main.get_command_from_info(
                    info, pretty_exceptions_short=train_app.pretty_exceptions_short,
                    rich_markup_mode=train_app.rich_markup_mode), info.name)

    def list_commands(self, ctx: Any) -> list[str]:
        self._add_trainers()
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            self._add_trainers()
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """A name that is no sub-command but a method (or close to one: ``wienr``) is answered
        with what trains it, if anything; other names get click's "No such command" with its
        "did you mean" among the trainers."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            _refuse_method_name(name)
        return super().resolve_command(ctx, args)


def _refuse_method_name(name: str) -> None:
    """:class:`UsageError` when ``name`` is no sub-command and not close to one, but is (or is
    close to) a registered method: it names the trainer whose checkpoints that method runs, says
    that a non-learned method has nothing to train, or lists the trainers."""
    import difflib

    from ..errors import UsageError
    from ..registry import methods, trainers

    records = trainers.records()
    trainer_names = [t for t, _ in records]
    if difflib.get_close_matches(name, trainer_names + sorted(RESERVED), n=1):
        return  # click's own "Did you mean" names the sub-command
    known = methods.declared()
    method = name if name in known else next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.8)), None)
    if method is None:
        return
    said = f"no trainer {name!r}" + ("" if method == name else f" (did you mean the method {method!r}?)")
    by = [t for t, rec in records if rec["method"] == method]
    if by:
        raise UsageError(f"{said}: method {method!r} runs checkpoints of `faceblur-bench train {by[0]}`",
                         f"faceblur-bench train {by[0]} --help")
    if methods.record(method)["params"] == 0:
        raise UsageError(f"{said}: method {method!r} learns nothing, there is nothing to train",
                         f"run it directly: faceblur-bench run --method {method}")
    raise UsageError(f"{said}: no trainer is called {method!r}",
                     f"trainers: {', '.join(trainer_names)}; `faceblur-bench train NAME --help` "
                     "lists a trainer's presets (variants of a method are often presets)")


train_app = typer.Typer(help="Train a registered method from scratch (`faceblur-bench train NAME --help`).",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        cls=_LazyTrainerGroup)

RESERVED = {"presets", "export"}


def _run(name: str, data_root: Path, out: Path, config: Optional[Path], sets: Optional[list[str]],
         epochs: Optional[int], batch_size: Optional[int], preset: Optional[str], tiny: bool, resume: bool,
         device: Optional[str], weights: Optional[list[str]], progress: bool, extra: dict[str, Any]) -> None:
    from ..devices import check_device_name
    from ..methods.trainer_catalog import preset_overrides
    from ..registry import trainers
    from ..train.config import parse_set, set_dotted, trainer_class
    from .common import parse_weight_overrides

    # usage errors first, from the trainer's record (static for built-ins): before torch loads
    if preset is not None:
        preset_overrides(name, {p["name"]: p["overrides"] for p in trainers.record(name)["presets"]}, preset)
    check_device_name(device)
    overrides = parse_set(sets)
    weights_overrides = parse_weight_overrides(weights)
    from ..train.loop import train

    cls = trainer_class(name)
    for opt, value in extra.items():
        if value is not None:
            set_dotted(overrides, cls.cli_options[opt].key, value)
    from ..errors import WeightsIntegrityError, WeightsMissingError, cannot_start

    try:
        res = train(name, data_root, out, config=config, preset=preset, epochs=epochs, batch_size=batch_size,
                    tiny=tiny, overrides=overrides, resume=resume, device=None if device in (None, "auto") else device,
                    weights_overrides=weights_overrides, progress=progress)
    except (WeightsMissingError, WeightsIntegrityError) as exc:  # a loss network's file: nothing trained
        raise cannot_start(exc) from exc
    if res.checkpoint is not None and res.history:
        typer.echo(f"done: {res.epochs_done} epochs, {res.steps} steps; checkpoint {res.checkpoint}")



def _command_for(name: str, rec: dict[str, Any]):
    """A typer command for trainer ``name`` from its record (``registry.trainers.record``: static
    for built-ins, so ``--help`` imports no method package): the common options plus the
    trainer's ``cli_options``."""
    presets = ", ".join(p["name"] for p in rec["presets"]) or "none"
    common = {
        "data_root": typer.Option(..., "--data-root", help=f"Training data: {rec['data_help'] or 'see the trainer docs'}."),
        "out": typer.Option(..., "--out", help="Run folder: config.json, log.csv, steps.csv, samples/, checkpoints/."),
        "config": typer.Option(None, "--config", help="JSON or TOML file overriding configuration keys."),
        "sets": typer.Option(None, "--set", help="Override one configuration key, KEY=VALUE (dotted key, JSON "
                             "value), e.g. --set data.val_images=2. Repeatable."),
        "epochs": typer.Option(None, "--epochs", min=1, help="Total epochs. With --resume: extend the run to N."),
        "batch_size": typer.Option(None, "--batch-size", min=1, help="Images per step per process."),
        "preset": typer.Option(None, "--preset", "--ablation",
                               help=f"Named configuration ({presets}; default {rec['default_preset'] or 'none'}). "
                               "`faceblur-bench train presets` lists them."),
        "tiny": typer.Option(False, "--tiny", help="Tiny networks and crops for a quick check of the data and the "
                             "set-up (minutes on a CPU); never for results."),
        "resume": typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.pth (exactly)."),
        "device": typer.Option(None, "--device", help="cpu | cuda | cuda:N (default: cuda when available; under "
                               "torchrun: cuda:LOCAL_RANK)."),
        "weights": typer.Option(None, "--weights", help="Weight file override NAME=PATH (e.g. "
                                "vggface16=/path/VGGFace16.pth)."),
        "progress": typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    }
    annotations = {"data_root": Path, "out": Path, "config": Optional[Path], "sets": Optional[list[str]],
                   "epochs": Optional[int], "batch_size": Optional[int], "preset": Optional[str], "tiny": bool,
                   "resume": bool, "device": Optional[str], "weights": Optional[list[str]], "progress": bool}
    params = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v, annotation=annotations[k])
              for k, v in common.items()]
    for spec in rec["cli_options"]:
        opt = spec["option"]
        if opt in common:
            raise ValueError(f"trainer {name!r}: cli option {opt!r} clashes with a common option")
        params.append(inspect.Parameter(opt, inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Optional[OPTION_TYPES[spec["type"]]],
                                        default=typer.Option(None, f"--{opt.replace('_', '-')}",
                                                             help=f"{spec['help']} (config key {spec['key']}).")))

    def command(**kw: Any) -> None:
        extra = {spec["option"]: kw.pop(spec["option"]) for spec in rec["cli_options"]}
        _run(name, extra=extra, **kw)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = f"train_{name.replace('-', '_')}"
    command.__doc__ = rec["description"]
    return command


def register_trainers() -> None:
    """Add one sub-command per registered trainer (built-ins and entry points); once."""
    from ..registry import trainers

    known = {info.name for info in train_app.registered_commands}
    for name, rec in trainers.records():  # built-ins: static records, no method package imported
        if name in known:
            continue
        if name in RESERVED:
            raise ValueError(f"a trainer may not be called {name!r} (a `train` sub-command)")
        train_app.command(name, help=rec["description"], no_args_is_help=True)(_command_for(name, rec))


@train_app.command("presets")
def presets(name: Optional[str] = typer.Argument(None, help="Only this trainer's presets."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the presets (ablations, recipes) of every trainer with their switches."""
    from rich.console import Console
    from rich.table import Table

    from ..registry import trainers

    # records: static for the built-ins (no method package, no torch imported)
    items = [(name, trainers.record(name))] if name else trainers.records()
    rows = []
    for tname, rec in items:
        for p in rec["presets"]:
            rows.append({"trainer": tname, "preset": p["name"], "default": p["name"] == rec["default_preset"],
                         "description": p["description"], "overrides": p["overrides"]})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title="training presets (* = default)")
    for c in ("trainer", "preset", "description", "overrides"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["trainer"], r["preset"] + (" *" if r["default"] else ""), r["description"],
                  json.dumps(r["overrides"]))
    Console().print(t)


@train_app.command("export")
def export(
    checkpoint: Path = typer.Argument(..., help="Trainer checkpoint (RUN/checkpoints/last.pth or best.pth)."),
    dest: Path = typer.Argument(..., help="Output .pth holding only the configuration and the inference networks."),
) -> None:
    """Write the inference part of a training checkpoint (for `run --method NAME --checkpoint`)."""
    from ..methods import checkpoint as ckpt_io
    from ..train.config import trainer_class

    ck = ckpt_io.load(checkpoint)
    cls = trainer_class(ck["trainer"])
    ckpt_io.export(ck, dest, cls.inference_modules)
    typer.echo(f"wrote {dest} ({ck['trainer']} {ck.get('preset') or ''}, epoch {ck.get('epoch')}; "
               f"run it with --method {ck['method']})")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
