"""Loading published state dicts into our modules, with errors that name the file and the fix."""

from __future__ import annotations

import errno
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsIntegrityError, WeightsMissingError

#: bytes per expected element a file may hold (float32; half-precision files are smaller)
_BYTES_PER_ELEMENT = 4
#: slack above that: the pickle, integer buffers (num_batches_tracked), record padding
_SLACK_BYTES = 1 << 20


def symlink_loop(path: str | Path) -> bool:
    """True when ``path`` is a symlink that never reaches a file (a loop of links)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def expected_shapes(model: nn.Module | Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a module's state dict (it may live on the meta device) or a mapping."""
    sd = model.state_dict() if isinstance(model, nn.Module) else model
    return {k: tuple(getattr(v, "shape", v)) for k, v in sd.items()}


def _zip_sizes(path: Path) -> tuple[int, bool] | None:
    """(total uncompressed bytes of every record, any record compressed) of a torch zip file,
    read from the zip directory only (nothing is inflated); None for a non-zip (legacy) file."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None  # torch.load reports the damage itself
    return (sum(i.file_size for i in infos), any(i.compress_type != zipfile.ZIP_STORED for i in infos))


def read_weights_only(path: str | Path) -> Any:
    """The object in a ``.pth`` file, read with ``torch.load(weights_only=True)`` on the CPU.

    The one place a weight or checkpoint file is unpickled: ``weights_only`` refuses any object
    that would run code. Zip-format files are memory-mapped, so tensors are paged in only as
    they are used. Raises the underlying exception (callers word the error for their file kind).
    """
    path = Path(path)
    # zip files are memory-mapped (tensors stay on disk until used); compressed records cannot
    # be, and legacy (non-zip) files are read whole -- their size is the file's
    sizes = _zip_sizes(path)
    if sizes is not None and not sizes[1]:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # unaligned records written by an old torch: read normally
            pass
    return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: str | Path, wrapper_key: str | None = None,
                    strip_prefix: str | None = None,
                    expected: nn.Module | Mapping[str, Any] | None = None,
                    what: str = "the expected model") -> dict[str, torch.Tensor]:
    """Read a ``.pth`` file with ``weights_only=True`` and return a flat tensor state dict.

    wrapper_key:  when given and present, ``obj[wrapper_key]`` is the state dict
                  (e.g. ``{'state_dict': ...}`` of VGGFace16.pth).
    strip_prefix: removed from every key that starts with it (e.g. ``'module.'`` of
                  DataParallel checkpoints such as arcface_resnet18.pth).
    expected:     the architecture the file is for (a module, e.g. built on the meta device, or
                  ``{key: shape}``), named ``what`` in messages. Before anything is read, the
                  sizes in the zip directory must fit it (at most 4 bytes -- float32 -- per
                  expected element, plus 1% and 1 MiB): a small file that inflates to gigabytes is refused without being
                  inflated. Tensors are then memory-mapped (``mmap=True``), not copied, and every
                  expected tensor's shape is compared before the caller copies anything.
    Raises :class:`WeightsIntegrityError` when the file is not a readable state dict, is too large
    for ``expected`` or has a tensor of the wrong shape (named), and
    :class:`WeightsMissingError` for a symlink loop.
    """
    path = Path(path)
    if symlink_loop(path):
        raise WeightsMissingError(f"weight file {path} is a symlink loop (the link never reaches a file)",
                                  "point the link (or the override) at the real file")
    shapes = expected_shapes(expected) if expected is not None else None
    sizes = _zip_sizes(path)
    if shapes is not None and sizes is not None:
        n = sum(math.prod(s) for s in shapes.values())
        budget = int(_BYTES_PER_ELEMENT * n * 1.01) + _SLACK_BYTES
        if sizes[0] > budget:
            raise WeightsIntegrityError(
                f"weight file {path} holds {sizes[0] / 2**20:,.1f} MiB of records"
                + (" (compressed)" if sizes[1] else "")
                + f"; {what} needs at most {budget / 2**20:,.1f} MiB: refused before reading it",
                f"this is not a {what} state dict; use the genuine file "
                "(`faceblur-bench weights` lists the sources)",
            )
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
    if shapes is not None:
        wrong = [k for k, s in shapes.items() if k in sd and tuple(sd[k].shape) != s]
        if wrong:
            k = wrong[0]
            raise WeightsIntegrityError(
                f"{path}: tensor {k!r} has shape {tuple(sd[k].shape)}, {what} expects {shapes[k]}"
                + (f" ({len(wrong)} tensors differ)" if len(wrong) > 1 else ""),
                f"this is not a {what} state dict; use the genuine file",
            )
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
