"""Training configuration: generic defaults, the trainer's defaults and presets, files, overrides.

A configuration is a nested dict of plain values (so it can be stored in a checkpoint that
loads with ``torch.load(weights_only=True)``). Layers, lowest first:

1. :data:`faceblur_bench.methods.training.GENERIC` (epochs, batch size, seed, AMP, logging);
2. the trainer's :attr:`~faceblur_bench.methods.training.TrainTask.defaults` (its own sections);
3. a preset (``--preset``, e.g. an ablation of the paper; the trainer's default preset when omitted);
4. ``--tiny``: the trainer's smoke configuration (tiny networks, for a quick check only);
5. a JSON or TOML file (``--config FILE``), merged key by key;
6. ``--set KEY=VALUE`` and the trainer's own options (e.g. ``--stage``);
7. ``--epochs`` and ``--batch-size``.

From layer 3 on, keys unknown to the layers below are refused with "did you mean".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:  # torch: imported where a configuration is built, not by `train`'s usage checks
    from ..methods.training import TrainTask
from ..registry import trainers


def trainer_class(name: str | type[TrainTask]) -> type[TrainTask]:
    """The registered :class:`TrainTask` called ``name`` (unknown -> "did you mean")."""
    return name if isinstance(name, type) else trainers.get(name)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON (``.json``) or TOML (``.toml``) config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} not found", "pass an existing .json or .toml file to --config")
    text = p.read_text()
    try:
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except Exception as exc:  # JSONDecodeError / TOMLDecodeError
        raise UsageError(f"config file {p} cannot be parsed: {exc}",
                         "use valid JSON (.json) or TOML (.toml)") from None


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["data.val_images=2", "loss.lambda_adv=0.1"]`` -> a nested override dict.

    Values are read as JSON when they parse (numbers, booleans, lists), else kept as strings.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise UsageError(f"--set {item!r} is not KEY=VALUE", "e.g. --set data.val_images=2")
        key, raw = item.split("=", 1)
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        set_dotted(out, key.strip(), value)
    return out


def set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    """``cfg["a"]["b"] = value`` for ``key = "a.b"`` (intermediate dicts created)."""
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UsageError(f"config key {key!r}: {part!r} is not a section", "check the dotted key")
    node[parts[-1]] = value


def build_config(trainer: str | type[TrainTask], preset: str | None = None,
                 file: str | Path | dict | None = None, epochs: int | None = None,
                 batch_size: int | None = None, *, tiny: bool = False,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolved training configuration of ``trainer`` (see the module docstring)."""
    from ..methods.trainer_catalog import preset_overrides
    from ..methods.training import GENERIC, merge_config

    cls = trainer_class(trainer)
    cfg = merge_config(GENERIC, cls.defaults, strict=False)
    name = preset or cls.default_preset
    if name is not None:
        name, over = preset_overrides(cls.name, cls.presets, name)
        cfg = merge_config(cfg, over)
    if tiny:
        cfg = merge_config(cfg, cls.smoke_config)
    reference = json.loads(json.dumps(cfg))  # what the user's layers (5-7) are checked against
    if file is not None:
        over = file if isinstance(file, dict) else read_config_file(file)
        over = {k: v for k, v in over.items() if k not in ("trainer", "method", "preset", "ablation")}
        cfg = merge_config(cfg, over)
    if overrides:
        cfg = merge_config(cfg, overrides)
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    if batch_size is not None:
        cfg["batch_size"] = int(batch_size)
    cfg["trainer"], cfg["method"], cfg["preset"] = cls.name, cls.method, name
    check_numbers(cfg, reference)
    validate(cfg)
    cls.check_config(cfg)
    return cfg


def check_numbers(cfg: dict[str, Any], reference: dict[str, Any], prefix: str = "") -> None:
    """Numbers of ``cfg`` (a file, ``--set``) checked at the door: every number finite; a key
    whose built-in value is a number holds a number (an integer where that is one); learning
    rates (``lr``, ``lr_*``) > 0 and loss weights (``lambda_*``) >= 0. Else a
    :class:`UsageError` (exit 2) naming the key — not an optimizer's traceback, or a NaN loss."""
    import math

    for key, value in cfg.items():
        name = f"{prefix}{key}"
        ref = reference.get(key) if isinstance(reference, dict) else None
        if isinstance(value, dict):
            check_numbers(value, ref if isinstance(ref, dict) else {}, f"{name}.")
            continue
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            raise UsageError(f"config key {name} = {value!r} is not a finite number", "give a finite number")
        if isinstance(ref, (int, float)) and not isinstance(ref, bool):
            kind = "an integer" if isinstance(ref, int) else "a number"
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or (isinstance(ref, int) and isinstance(value, float) and not value.is_integer())):
                raise UsageError(f"config key {name} = {value!r} is not {kind} (built-in value: {ref!r})",
                                 f"give {kind}, e.g. --set {name}={ref!r}")
            if (key == "lr" or key.startswith("lr_")) and key != "lr_decay" and value <= 0:
                raise UsageError(f"config key {name} = {value!r}: a learning rate is > 0",
                                 f"e.g. --set {name}={ref!r}")
            if key.startswith("lambda_") and value < 0:
                raise UsageError(f"config key {name} = {value!r}: a loss weight is >= 0",
                                 f"e.g. --set {name}={ref!r} (0 switches the loss off)")


def validate(cfg: dict[str, Any]) -> None:
    """Checks of the generic keys (the trainer checks its own in ``check_config``)."""
    if int(cfg["epochs"]) < 1:
        raise UsageError(f"epochs = {cfg['epochs']}", "use at least 1 epoch")
    if int(cfg["batch_size"]) < 1:
        raise UsageError(f"batch_size = {cfg['batch_size']}", "use a batch size >= 1")
    if cfg["amp"] not in ("bf16", "off"):
        raise UsageError(f"amp = {cfg['amp']!r}", "use 'bf16' or 'off'")
    if int(cfg["data"]["num_workers"]) < 0:
        raise UsageError(f"data.num_workers = {cfg['data']['num_workers']}", "use 0 or more workers")
