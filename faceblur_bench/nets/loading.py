"""Loading published state dicts into our modules, with errors that name the file and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsIntegrityError


def read_weights_only(path: str | Path) -> Any:
    """The object in a ``.pth`` file, read with ``torch.load(weights_only=True)`` on the CPU.

    The one place a weight or checkpoint file is unpickled: ``weights_only`` refuses any object
    that would run code. Zip-format files are memory-mapped, so tensors are paged in only as
    they are used. Raises the underlying exception (callers word the error for their file kind).
    """
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc) and "zip" not in str(exc).lower():
            raise
        return torch.load(Path(path), map_location="cpu", weights_only=True)  # legacy (non-zip) format


def read_state_dict(path: str | Path, wrapper_key: str | None = None,
                    strip_prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` file with ``weights_only=True`` and return a flat tensor state dict.

    wrapper_key:  when given and present, ``obj[wrapper_key]`` is the state dict
                  (e.g. ``{'state_dict': ...}`` of VGGFace16.pth).
    strip_prefix: removed from every key that starts with it (e.g. ``'module.'`` of
                  DataParallel checkpoints such as arcface_resnet18.pth).
    Raises :class:`WeightsIntegrityError` when the file is not a readable state dict.
    """
    path = Path(path)
    try:
        obj: Any = read_weights_only(path)
    except Exception as exc:  # pickle errors, truncated files, non-torch files
        raise WeightsIntegrityError(
            f"cannot read weight file {path}: {type(exc).__name__}: {exc}",
            "weight files are read with torch.load(weights_only=True), which refuses code-carrying "
            "pickles; the file is damaged or not a PyTorch state dict: download it again "
            "(`faceblur-bench weights` lists the sources)",
        ) from None
    if wrapper_key is not None and isinstance(obj, Mapping) and wrapper_key in obj:
        obj = obj[wrapper_key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsIntegrityError(
            f"weight file {path} does not hold a tensor state dict"
            + (f" (looked under key {wrapper_key!r})" if wrapper_key else ""),
            "point the override at the genuine upstream file",
        )
    sd = dict(obj)
    if strip_prefix:
        sd = {(k.removeprefix(strip_prefix)): v for k, v in sd.items()}
    return sd


def load_exact(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path: str | Path,
               what: str) -> nn.Module:
    """Load ``state_dict`` strictly (same keys, same shapes); eval mode, no grad.

    ``model`` may live on the meta device (build it under ``torch.device("meta")``): its
    parameters are replaced by the file's tensors.

    Raises :class:`WeightsIntegrityError` naming missing/unexpected keys or shape mismatches, so a
    wrong file (e.g. an ImageNet vgg16 in place of VGGFace16) is refused instead of half-loaded.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} shape mismatches (e.g. {k}: file "
                         f"{tuple(state_dict[k].shape)} vs {what} {tuple(own[k].shape)})")
        raise WeightsIntegrityError(
            f"{path} is not a {what} state dict: " + "; ".join(parts),
            f"use the genuine {Path(path).name} for {what}",
        )
    # assign=True: the model may have been built on the meta device (no costly random init);
    # floating tensors are brought to float32 so half-precision files still run in fp32
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in state_dict.items()}
    model.load_state_dict(sd, strict=True, assign=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
