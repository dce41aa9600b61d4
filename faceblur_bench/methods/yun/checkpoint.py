"""The released notebooks' generator checkpoint format (METHODS.md §B.4).

``FaceSRnDeblur_train.ipynb`` saves ``torch.save(generator.state_dict())`` as
``generator-<epoch+1>.pkl``: a flat ``{key: tensor}`` dict with the key names of
:class:`~.networks.YunGenerator` (``upscale8.{0,2,5,8,11}.weight``, ``conv1.*``,
``conv{2-8}.{1,2}.*``, ``deconv{1-8}.*``, ``deconv{4,3,2,1}_0.*``). Checkpoints of a
``nn.DataParallel`` generator (the w/N notebook) carry a ``module.`` prefix on every key; the
test notebook strips it. Both forms are accepted here.

The configuration is read off the tensors: BatchNorm keys (``conv2.2.running_mean`` …) mean
``norm="batch"`` (trained with batch size > 1), their absence ``norm="instance"``; the widths
come from ``conv1.weight`` and ``upscale8.0.weight``. Files are read with
``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...errors import WeightsIntegrityError
from .networks import YunGenerator, YunGeneratorConfig

PREFIX = "module."
#: a key every released generator state dict holds
MARKER = "upscale8.0.weight"


def strip_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop a leading ``module.`` (DataParallel) from every key that has it."""
    return {k.removeprefix(PREFIX): v for k, v in state.items()}


def is_notebook_state(obj: Any) -> bool:
    """True for a flat generator state dict in the notebooks' key layout (prefixed or not)."""
    if not isinstance(obj, Mapping) or not obj:
        return False
    keys = {str(k).removeprefix(PREFIX) for k in obj}
    return MARKER in keys and "conv1.weight" in keys and all(
        isinstance(v, torch.Tensor) for v in obj.values())


def config_from_state(state: Mapping[str, torch.Tensor]) -> YunGeneratorConfig:
    """Generator configuration implied by a (prefix-free) notebook state dict."""
    norm = "batch" if "conv2.2.running_mean" in state else "instance"
    return YunGeneratorConfig(ngf=int(state["conv1.weight"].shape[0]),
                              upscale_width=int(state[MARKER].shape[0]), norm=norm)


def generator_from_state(obj: Mapping[str, Any], source: str = "checkpoint") -> YunGenerator:
    """Build the generator a notebook state dict describes and load it (strict key match)."""
    state = strip_prefix(obj)
    cfg = config_from_state(state)
    net = YunGenerator(cfg)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise WeightsIntegrityError(
            f"{source}: not a Yun et al. generator state dict ({' '.join(first[:2])[:300]})",
            "pass a generator-<epoch>.pkl saved by FaceSRnDeblur_train.ipynb (state_dict of "
            "Generator, optionally with 'module.' prefixes) or a `faceblur-bench train yun` "
            "checkpoint") from None
    return net


def read(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; errors name the file and the fix."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsIntegrityError(f"checkpoint {path} does not exist", "check --checkpoint") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:  # pickled code refused, damaged or foreign file
        raise WeightsIntegrityError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            "checkpoints are read with torch.load(weights_only=True) and must hold tensors only "
            "(a state dict); re-save with torch.save(generator.state_dict(), path)") from None


def save_notebook_state(net: YunGenerator, path: str | Path, data_parallel: bool = False) -> Path:
    """Write ``net`` in the notebooks' format (``module.`` prefixes with ``data_parallel``)."""
    sd = net.state_dict()
    if data_parallel:
        sd = {PREFIX + k: v for k, v in sd.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path
