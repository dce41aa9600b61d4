"""The CVPR 2018 release of Shen et al. (MatConvNet ``.mat`` structs) as a :class:`ShenNet`.

Files (``joanshen0508/Deep-Semantic-Face-Deblurring``): ``net_G_<R>.mat`` holding the struct
array ``net_G`` and ``net_P_<R>.mat`` holding ``net_P``, with ``<R>`` = ``P_S_F`` (what the demo
script loads) or ``P_S_F_GAN``. Read with :func:`scipy.io.loadmat` (MATLAB v5/v7 files; no
MATLAB, no code execution). Layout (the release's ``DL_deblur_net18.m``):

- ``net_G(1, j)``, fields ``w`` (``H×W×Cin×Cout`` single) and ``b``: j = 1–16 scale 1
  (1 = first conv, 2–3, 4–13 the residual pairs, 14–15, 16 = output conv), j = 17 the
  transposed conv (MatConvNet filter ``H×W×Cout×Cin``; an older script names it ``upw``/``upb``),
  j = 18–33 scale 2. The number of residual blocks follows from the length (5 in the release).
- ``net_P(1, j)``: j = 1–6 encoder ``w b bw bb bm``, j = 7–11 decoder ``upw upb`` (transposed
  conv) + ``w b bw bb bm``, j = 12 the classifier ``w b``. ``bw``/``bb`` are the batch-norm
  scale/shift, ``bm = [μ, σ]`` (``Cout×2``) the stored moments with ``σ = sqrt(var + ε)``.

Mapping: conv ``w`` → PyTorch ``(Cout, Cin, H, W)`` and transposed-conv ``w`` → ``(Cin, Cout, H,
W)`` are both the permutation ``(3, 2, 0, 1)``; ``running_mean = μ``, ``running_var = σ² − ε``
with MatConvNet's ε = 1e-4, so ``(x − μ)/sqrt(running_var + ε) = (x − μ)/σ`` exactly. Widths,
kernel sizes, K and the block count are read from the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import UsageError, WeightsIntegrityError
from .networks import BN_EPS, ParsingConfig, ShenConfig, ShenNet, TwoScaleDeblurNet

RELEASES: tuple[str, ...] = ("P_S_F", "P_S_F_GAN")
_HINT = ("use the authors' net_G_*.mat / net_P_*.mat (joanshen0508/Deep-Semantic-Face-Deblurring) "
         "unchanged")


def is_release_path(path: str | Path) -> bool:
    """True for a ``.mat`` file or a directory holding ``net_G_*.mat``."""
    p = Path(path)
    return p.suffix.lower() == ".mat" or (p.is_dir() and any(p.glob("net_G_*.mat")))


def find_release(path: str | Path, release: str = "P_S_F") -> tuple[Path, Path]:
    """``(net_G file, net_P file)`` for a directory (``net_G_<release>.mat``) or either file."""
    p = Path(path).expanduser()
    if p.is_dir():
        g, pp = p / f"net_G_{release}.mat", p / f"net_P_{release}.mat"
    elif p.name.startswith("net_G_"):
        g, pp = p, p.with_name("net_P_" + p.name[len("net_G_"):])
    elif p.name.startswith("net_P_"):
        g, pp = p.with_name("net_G_" + p.name[len("net_P_"):]), p
    else:
        raise UsageError(f"{p}: not a Shen et al. release file (net_G_*.mat / net_P_*.mat)",
                         "pass the directory holding net_G_P_S_F.mat and net_P_P_S_F.mat, "
                         "or one of the two files")
    missing = [str(f) for f in (g, pp) if not f.is_file()]
    if missing:
        raise UsageError(f"Shen et al. release: {', '.join(missing)} not found",
                         f"the release is a pair net_G_<R>.mat + net_P_<R>.mat with R in "
                         f"{list(RELEASES)}; choose R with -o release=R")
    return g, pp


def read_struct(path: str | Path, var: str) -> list[dict[str, np.ndarray]]:
    """Struct array ``var`` of a MATLAB file as a list (MATLAB index j → item j-1) of
    ``{field: float32 array}``; empty fields are left out."""
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except NotImplementedError:  # v7.3 (HDF5) files
        raise WeightsIntegrityError(f"{path}: MATLAB v7.3 (HDF5) file, not readable here",
                                    "re-save it in MATLAB with save(..., '-v7')") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is refused the same way
        raise WeightsIntegrityError(f"{path}: not a MATLAB .mat file ({type(exc).__name__}: "
                                    f"{exc})", _HINT) from None
    arr = mat.get(var)
    if arr is None or not isinstance(arr, np.ndarray) or arr.dtype.names is None:
        raise WeightsIntegrityError(
            f"{path}: no struct array {var!r} (variables: "
            f"{sorted(k for k in mat if not k.startswith('__'))})", _HINT)
    items = []
    for el in arr.reshape(-1, order="F"):
        d = {}
        for f in arr.dtype.names:
            v = np.asarray(el[f])
            if v.dtype == object and v.size == 1:  # nested cell
                v = np.asarray(v.item())
            if v.size:
                d[f] = v.astype(np.float32)
        items.append(d)
    return items


def _field(items: list[dict[str, np.ndarray]], var: str, j: int, *names: str) -> np.ndarray:
    """Field ``names[0]`` (or the first present alternative) of ``var(1, j)`` (1-based)."""
    if j > len(items):
        raise WeightsIntegrityError(f"{var}(1,{j}) is missing ({var} has {len(items)} layers)",
                                    _HINT)
    for n in names:
        if n in items[j - 1]:
            return items[j - 1][n]
    raise WeightsIntegrityError(f"{var}(1,{j}).{names[0]} is missing or empty", _HINT)


def _w4(a: np.ndarray) -> np.ndarray:
    """MATLAB drops trailing singleton dims: restore ``H×W×C1×C2``."""
    return a.reshape(a.shape + (1,) * (4 - a.ndim)) if a.ndim < 4 else a


def infer_config(net_G: list[dict[str, np.ndarray]], net_P: list[dict[str, np.ndarray]]
                 ) -> ShenConfig:
    """The CVPR 2018 :class:`ShenConfig` the two struct arrays describe."""
    n = len(net_G)
    per_scale = (n - 1) // 2
    if n % 2 == 0 or per_scale < 8 or (per_scale - 6) % 2:
        raise WeightsIntegrityError(
            f"net_G has {n} layers; expected 2·(6 + 2·R) + 1 (33 for the release's R = 5 "
            f"residual blocks)", _HINT)
    if len(net_P) != 12:
        raise WeightsIntegrityError(f"net_P has {len(net_P)} layers, expected 12", _HINT)
    w1 = _w4(_field(net_G, "net_G", 1, "w"))
    k = _w4(_field(net_P, "net_P", 12, "w")).shape[3]
    enc = [_w4(_field(net_P, "net_P", j, "w")) for j in range(1, 7)]
    up = [_w4(_field(net_P, "net_P", j, "upw")) for j in range(7, 12)]
    head = _w4(_field(net_P, "net_P", 11, "w")).shape[3]
    pcfg = ParsingConfig(encoder_widths=tuple(int(w.shape[3]) for w in enc),
                         encoder_kernels=tuple(int(w.shape[0]) for w in enc),
                         up_widths=tuple(int(w.shape[2]) for w in up), head_width=int(head))
    if pcfg.up_widths == pcfg.decoder_widths:
        pcfg = ParsingConfig(pcfg.encoder_widths, pcfg.encoder_kernels, None, pcfg.head_width)
    kernel = int(_w4(_field(net_G, "net_G", 2, "w")).shape[0])
    return ShenConfig(variant="cvpr2018", num_classes=int(k), width=int(w1.shape[3]),
                      first_kernel=int(w1.shape[0]), kernel=kernel,
                      res_blocks=(per_scale - 6) // 2, parsing=pcfg)


def _put(param: torch.Tensor, value: np.ndarray, what: str, conv: bool) -> None:
    v = torch.from_numpy(_w4(value).transpose(3, 2, 0, 1).copy()) if conv else \
        torch.from_numpy(value.reshape(-1).copy())
    if tuple(v.shape) != tuple(param.shape):
        shown = tuple(value.shape)
        raise WeightsIntegrityError(
            f"{what} has shape {shown}, expected "
            f"{tuple(param.shape[2:]) + tuple(param.shape[:2][::-1]) if conv else tuple(param.shape)}"
            f" for the architecture the file implies", _HINT)
    with torch.no_grad():
        param.copy_(v)


def _conv(mod: nn.Module, items: list, var: str, j: int, w: str = "w", b: str = "b") -> None:
    _put(mod.weight, _field(items, var, j, w), f"{var}(1,{j}).{w}", conv=True)
    _put(mod.bias, _field(items, var, j, b), f"{var}(1,{j}).{b}", conv=False)


def _bn(bn: nn.BatchNorm2d, items: list, j: int) -> None:
    _put(bn.weight, _field(items, "net_P", j, "bw"), f"net_P(1,{j}).bw", conv=False)
    _put(bn.bias, _field(items, "net_P", j, "bb"), f"net_P(1,{j}).bb", conv=False)
    bm = _field(items, "net_P", j, "bm")
    if bm.ndim != 2 or bm.shape != (bn.num_features, 2):
        raise WeightsIntegrityError(f"net_P(1,{j}).bm has shape {tuple(bm.shape)}, expected "
                                    f"({bn.num_features}, 2) = [mean, sigma]", _HINT)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(bm[:, 0].copy()))
        bn.running_var.copy_(torch.from_numpy(bm[:, 1].copy()) ** 2 - BN_EPS)


def _load_scale(scale: nn.Module, items: list, j0: int) -> int:
    """Load one scale starting at MATLAB index ``j0``; returns the next index."""
    j = j0
    _conv(scale.head, items, "net_G", j)
    j += 1
    for conv in scale.pre:
        _conv(conv, items, "net_G", j)
        j += 1
    for block in scale.blocks:
        _conv(block.conv1, items, "net_G", j)
        _conv(block.conv2, items, "net_G", j + 1)
        j += 2
    for conv in scale.post:
        _conv(conv, items, "net_G", j)
        j += 1
    _conv(scale.tail, items, "net_G", j)
    return j + 1


def load_release(path: str | Path, release: str = "P_S_F") -> tuple[ShenNet, dict[str, Any]]:
    """Build the CVPR 2018 :class:`ShenNet` from the release at ``path`` (directory or file).

    Returns ``(net in eval mode, info)``; ``info`` names the files and the inferred config.
    Refuses (:class:`WeightsIntegrityError`) a missing layer or field, or a wrong shape, naming
    the MATLAB layer (e.g. ``net_G(1,5).w``).
    """
    if release not in RELEASES:
        raise UsageError(f"unknown Shen release {release!r}", f"use one of {list(RELEASES)}")
    g_path, p_path = find_release(path, release)
    net_G, net_P = read_struct(g_path, "net_G"), read_struct(p_path, "net_P")
    cfg = infer_config(net_G, net_P)
    net = ShenNet(cfg)
    g: TwoScaleDeblurNet = net.fine.nets[0]  # type: ignore[assignment]
    j = _load_scale(g.scale1, net_G, 1)
    _conv(g.up, net_G, "net_G", j, "w" if "w" in net_G[j - 1] else "upw",
          "b" if "b" in net_G[j - 1] else "upb")
    _load_scale(g.scale2, net_G, j + 1)
    p = net.parsing
    for i, stage in enumerate(p.encoder):
        _conv(stage["conv"], net_P, "net_P", i + 1)
        _bn(stage["bn"], net_P, i + 1)
    for i, stage in enumerate(p.decoder):
        _conv(stage["up"], net_P, "net_P", i + 7, "upw", "upb")
        _conv(stage["conv"], net_P, "net_P", i + 7)
        _bn(stage["bn"], net_P, i + 7)
    _conv(p.classifier, net_P, "net_P", 12)
    info = {"source": "Shen et al. CVPR 2018 MatConvNet release", "release": release,
            "net_G": str(g_path), "net_P": str(p_path), "config": cfg.to_dict()}
    return net.eval(), info
