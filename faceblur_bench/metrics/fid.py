"""Fréchet and Kernel Inception Distances between restored images and the split's sharp images.

Network: pytorch-fid's Inception-v3 (the TF 2015-12-05 graph ported to PyTorch, weights file
``pt_inception-2015-12-05-6726825d.pth`` resolved through :mod:`faceblur_bench.weights`), built
from pytorch-fid's own FID blocks on torchvision's ``Inception3`` and loaded strictly from the
resolved file (never downloaded). Features: the 2048-d global average pool ("pool3").

Two protocols, named separately because the resize moves FID by several per cent:

- ``fid`` (pytorch-fid legacy): uint8 -> [0, 1] float, bilinear resize to 299x299 inside the
  network (``F.interpolate(align_corners=False)``, no antialias), scaled to [-1, 1]. Equal to
  ``pytorch_fid.fid_score.calculate_fid_given_paths`` on the same images.
- ``fid-clean``: clean-fid's "clean" resize: each channel resized to 299x299 with PIL bicubic on
  float32 values (no quantisation), clipped to [0, 255], then the same network without its
  internal resize, so only the resize differs from ``fid``. It is *not* clean-fid's number:
  clean-fid feeds the 0-255 values to NVIDIA's TorchScript Inception, which normalises them as
  ``(x - 128) / 128``; here the pytorch-fid network and its normalisation ``2 (x / 255) - 1``
  (= ``(x - 127.5) / 127.5``) are kept. Both the weights and the input scaling differ.

Set metric: :meth:`features` gives the restored images' pool features (float32, lossless: the
network computes in float32); :meth:`aggregate` computes the reference features of the split's
sharp images (deduplicated, restricted to the subsets present in the scored samples), cached
under ``~/.cache/faceblur_bench/fid_stats/`` keyed by protocol, weight-file sha256 and the
reference files (path, size, mtime), then the Fréchet distance between the two Gaussians
(mean, covariance with ddof=1, as pytorch-fid). The trace of the matrix square root is computed
exactly as the nuclear norm of ``A1^T A2`` with ``Sigma_i = A_i A_i^T`` (low-rank factors from
the centred features when n <= 2048, eigen-factors otherwise), which avoids ``scipy.linalg.sqrtm``
and its imaginary residue on the singular covariances of small sets.

FID is biased for small sets: the aggregate carries ``n`` and a ``warning`` below 2048 images
(tables repeat it in a footnote that points to KID).

KID (``kid``, ``kid-clean``): unbiased MMD² with the cubic polynomial kernel on the same features
as ``fid`` / ``fid-clean`` — one Inception pass per batch serves both (the batch memo), and the
reference features are cached per resize, not per metric — averaged over 100 subsets of
``min(1000, n)`` images (torch-fidelity's and clean-fid's defaults; subsets drawn as
torch-fidelity draws them, seed 2020), with the standard deviation over the subsets as ``std``.
Unlike FID its expectation does not depend on n, so values on small sets can be compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import weights
from ..data.base import Sample
from ..errors import UsageError, WeightsIntegrityError
from ..files import cache_dir
from ..nets.loading import read_state_dict
from ..registry import metrics
from .base import Batch, Metric, MetricContext

#: below this many images FID is strongly biased (the covariance of 2048-d features is rank-deficient)
MIN_RELIABLE_N = 2048
#: images per Inception forward pass
CHUNK = 32
FID_SIZE = 299


class FIDInceptionPool(nn.Module):
    """pytorch-fid's Inception-v3 up to the 2048-d average pool.

    ``forward(x)``: float ``(N, 3, H, W)`` in [0, 1] -> float32 ``(N, 2048)``. With
    ``resize=True`` the input is bilinearly resized to 299x299 first (pytorch-fid legacy);
    with ``resize=False`` it must already be 299x299.
    """

    def __init__(self, inception: nn.Module):
        super().__init__()
        i = inception
        self.body = nn.Sequential(
            i.Conv2d_1a_3x3, i.Conv2d_2a_3x3, i.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            i.Conv2d_3b_1x1, i.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            i.Mixed_5b, i.Mixed_5c, i.Mixed_5d, i.Mixed_6a, i.Mixed_6b, i.Mixed_6c, i.Mixed_6d,
            i.Mixed_6e, i.Mixed_7a, i.Mixed_7b, i.Mixed_7c, nn.AdaptiveAvgPool2d((1, 1)),
        )

    def forward(self, x: torch.Tensor, resize: bool = True) -> torch.Tensor:
        if resize:
            x = F.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
        elif x.shape[-2:] != (FID_SIZE, FID_SIZE):
            raise ValueError(f"expected 299x299 input without resize, got {tuple(x.shape[-2:])}")
        # channels-last activations: oneDNN/cuDNN run these convolutions ~1.4x faster (same math)
        x = (2 * x - 1).contiguous(memory_format=torch.channels_last)
        return self.body(x).flatten(1)


def fid_inception_architecture() -> nn.Module:
    """torchvision ``Inception3`` (1008 classes) with pytorch-fid's FID blocks, uninitialised."""
    import torchvision
    from pytorch_fid import inception as pf

    net = torchvision.models.inception.Inception3(num_classes=1008, aux_logits=False,
                                                  init_weights=False)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def build_fid_inception(device: torch.device | str = "cpu",
                        overrides: dict[str, str] | None = None) -> FIDInceptionPool:
    """The FID network with the resolved ``fid-inception`` weights; eval, no grad, on ``device``."""
    path = weights.resolve("fid-inception", overrides)
    entry = weights.get_entry("fid-inception")
    net = fid_inception_architecture()
    state = read_state_dict(path, expected=net, what="pytorch-fid Inception")
    try:
        net.load_state_dict(state, strict=True)
    except Exception as exc:
        raise WeightsIntegrityError(
            f"{path} is not a pytorch-fid Inception state dict ({str(exc).splitlines()[0]})",
            f"replace it with the genuine {entry.filename} ({entry.url})",
        ) from None
    model = FIDInceptionPool(net).eval().requires_grad_(False)
    model.weight_path = path  # type: ignore[attr-defined]
    return model.to(device=device, memory_format=torch.channels_last)


def pil_bicubic_299(images_u8: np.ndarray) -> np.ndarray:
    """clean-fid "clean" resize: ``(N, H, W, 3)`` uint8 -> float32 ``(N, 299, 299, 3)`` in [0, 255].

    Each channel as a PIL ``F`` (float32) image, ``resize((299, 299), BICUBIC)``, clipped to [0, 255].
    """
    from PIL import Image

    out = np.empty((len(images_u8), FID_SIZE, FID_SIZE, 3), dtype=np.float32)
    for n, img in enumerate(images_u8):
        for c in range(3):
            ch = Image.fromarray(np.ascontiguousarray(img[:, :, c], dtype=np.float32), mode="F")
            out[n, :, :, c] = np.asarray(ch.resize((FID_SIZE, FID_SIZE), resample=Image.BICUBIC))
    return np.clip(out, 0, 255)


def inception_features(model: FIDInceptionPool, images_u8: torch.Tensor,
                       resize: Literal["legacy", "clean"]) -> np.ndarray:
    """Pool features of uint8 ``(N, 3, H, W)`` images: float32 ``(N, 2048)``."""
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for s in range(0, len(images_u8), CHUNK):
            u8 = images_u8[s:s + CHUNK]
            if resize == "legacy":
                x = u8.to(device, torch.float32) / 255.0
                out.append(model(x, resize=True).float().cpu())
            else:
                hwc = u8.permute(0, 2, 3, 1).cpu().numpy()
                x = torch.from_numpy(pil_bicubic_299(hwc)).permute(0, 3, 1, 2).to(device) / 255.0
                out.append(model(x, resize=False).float().cpu())
    return torch.cat(out).numpy()


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """FID between two feature sets ``(n1, d)``, ``(n2, d)`` (each n >= 2), float64.

    ``||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)`` with ddof=1 covariances; the last
    trace comes from singular values / symmetric eigenvalues (see the module docstring), exact and real.
    """
    x1 = np.asarray(feats1, dtype=np.float64)
    x2 = np.asarray(feats2, dtype=np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"feature sets must be (n, d) with equal d, got {x1.shape} and {x2.shape}")
    if len(x1) < 2 or len(x2) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(x1)} and {len(x2)}")
    mu1, mu2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - mu1, x2 - mu2
    n1, n2, d = len(x1), len(x2), x1.shape[1]

    if min(n1, n2) <= d:
        # S_i = A_i A_i^T with A_i = c_i^T / sqrt(n_i - 1): tr sqrt(S1 S2) = ||A1^T A2||_* (n1 x n2)
        m = (c1 @ c2.T) / np.sqrt((n1 - 1) * (n2 - 1))
        tr_sqrt = float(np.linalg.svd(m, compute_uv=False).sum())
    else:
        # eigenvalues of S1 S2 = those of L^T S2 L with S1 = L L^T (symmetric PSD, real)
        s1, s2 = c1.T @ c1 / (n1 - 1), c2.T @ c2 / (n2 - 1)
        try:
            lf = np.linalg.cholesky(s1)
        except np.linalg.LinAlgError:  # singular S1 (e.g. constant features): eigen-factor
            lam, v = np.linalg.eigh(s1)
            lf = v * np.sqrt(np.clip(lam, 0, None))
        ev = np.linalg.eigvalsh(lf.T @ s2 @ lf)
        tr_sqrt = float(np.sqrt(np.clip(ev, 0, None)).sum())
    tr1 = float(np.sum(c1 * c1) / (n1 - 1))
    tr2 = float(np.sum(c2 * c2) / (n2 - 1))
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2.0 * tr_sqrt)


def fid_stats_dir() -> Path:
    return cache_dir("fid_stats")


def reference_paths(split: Any, samples: Sequence[Sample]) -> list[Path]:
    """Deduplicated sharp images of ``split`` in the subsets the scored ``samples`` belong to."""
    subsets = {s.meta.get("subset") for s in samples}
    seen: dict[Path, None] = {}
    for s in split.samples():
        if s.sharp is not None and s.meta.get("subset") in subsets:
            seen.setdefault(Path(s.sharp), None)
    return list(seen)


class _FIDBase(Metric):
    kind = "set"
    higher_is_better = False
    weights = ("fid-inception",)
    resize: ClassVar[Literal["legacy", "clean"]] = "legacy"

    def setup(self, ctx: MetricContext) -> None:
        self.model = ctx.shared(("fid-inception",),
                                lambda: build_fid_inception(ctx.device, ctx.weights_overrides))

    def features(self, batch: Batch) -> np.ndarray:
        # one forward pass per batch and resize for FID and KID alike (the batch memo)
        return batch.memo(("inception-pool3", self.resize),
                          lambda: inception_features(self.model, batch.restored, self.resize))

    # -- reference set -------------------------------------------------------------------------
    def _cache_key(self, paths: list[Path]) -> str:
        h = hashlib.sha256()
        wpath = getattr(self.model, "weight_path", None)
        wsha = weights.sha256_of(Path(wpath)) if wpath else "?"
        # keyed by what the features are (network, resize), not by the metric: FID and KID share them
        h.update(json.dumps({"features": "inception-pool3", "resize": self.resize,
                             "weights": wsha}).encode())
        for p in paths:
            st = p.stat()
            h.update(json.dumps([str(p.resolve()), st.st_size, st.st_mtime_ns]).encode())
        return h.hexdigest()[:32]

    def reference_features(self, paths: list[Path], use_cache: bool = True) -> tuple[np.ndarray, str]:
        """Features of the reference images (float32 ``(m, 2048)``) and where they came from."""
        from filelock import FileLock

        from ..imageio import read_image

        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise UsageError(f"{self.name}: reference image not found: {missing[0]}",
                             "check the data root; FID needs every sharp image of the split")
        key = self._cache_key(paths)
        cache = fid_stats_dir() / f"inception-{self.resize}-{key}.npz"
        if use_cache and cache.is_file():
            with np.load(cache) as z:
                return z["features"], f"cache {cache}"
        cache.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache) + ".lock"):
            if use_cache and cache.is_file():
                with np.load(cache) as z:
                    return z["features"], f"cache {cache}"
            feats = self._compute_reference(paths, read_image)
            tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.npz")
            np.savez(tmp, features=feats, paths=np.array([str(p) for p in paths]))
            tmp.replace(cache)
        return feats, f"computed ({len(paths)} images), cached at {cache}"

    def _compute_reference(self, paths: list[Path], read_image) -> np.ndarray:
        from rich.progress import track

        out: list[np.ndarray] = []
        group: list[np.ndarray] = []

        def flush() -> None:
            if group:
                t = torch.from_numpy(np.stack(group).transpose(0, 3, 1, 2).copy())
                out.append(inception_features(self.model, t, self.resize))
                group.clear()

        for p in track(paths, description=f"{self.name}: reference features",
                       disable=not sys.stderr.isatty(), transient=True):
            img = read_image(p)
            if group and (img.shape != group[0].shape or len(group) >= CHUNK):
                flush()
            group.append(img)
        flush()
        return np.concatenate(out).astype(np.float32)

    def feature_sets(self, features: np.ndarray, samples: Sequence[Sample],
                     ctx: MetricContext) -> tuple[np.ndarray, np.ndarray, str]:
        """The restored features (checked), the reference features of the scored subsets and
        where the latter came from (cache or computed)."""
        feats = np.asarray(features)
        if feats.ndim != 2 or feats.shape[1] != 2048 or len(feats) != len(samples):
            raise ValueError(f"{self.name}: expected ({len(samples)}, 2048) features, got {feats.shape}")
        if ctx.split is None:
            raise UsageError(f"{self.name} needs the split's sharp images as the reference set",
                             "run it through a split with ground truth (not a bare image folder)")
        paths = reference_paths(ctx.split, samples)
        if not paths:
            raise UsageError(f"{self.name}: split {getattr(ctx.split, 'full_name', ctx.split)!r} "
                             "has no sharp images", f"{self.label} is not applicable without a reference set")
        if not hasattr(self, "model"):
            self.setup(ctx)
        ref, origin = self.reference_features(paths)
        return feats, ref, origin

    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        """``{"value", "n", "n_reference", "warning", "reference", "resize"}`` for the scored set."""
        feats, ref, origin = self.feature_sets(features, samples, ctx)
        n = len(feats)
        warning = None
        if n < MIN_RELIABLE_N or len(ref) < MIN_RELIABLE_N:
            warning = (f"FID on {n} restored / {len(ref)} reference images is biased (upwards) below "
                       f"{MIN_RELIABLE_N} samples; compare only values computed with the same n, "
                       f"or KID (unbiased)")
        value = frechet_distance(feats, ref) if n >= 2 else float("nan")
        return {"value": value, "n": n, "n_reference": len(ref), "warning": warning,
                "reference": origin, "resize": self.resize}


@metrics.register("fid")
class FID(_FIDBase):
    label = "FID"
    protocol = "pytorch-fid legacy: uint8->[0,1], bilinear resize to 299 in-net, TF Inception-v3 pool3 2048-d, restored vs split's sharp images (per subset), Frechet distance"
    resize = "legacy"


@metrics.register("fid-clean")
class FIDClean(_FIDBase):
    label = "FID (clean resize)"
    protocol = ("clean-fid-style resize (per-channel PIL bicubic float resize to 299), then pytorch-fid TF "
                "Inception-v3 with its input scaling 2x/255-1 (clean-fid's network: (x-128)/128) pool3 2048-d, "
                "restored vs split's sharp images, Frechet distance; not clean-fid's value")
    resize = "clean"


# -- KID ---------------------------------------------------------------------------------------------
#: KID subsets and their largest size (torch-fidelity's and clean-fid's defaults)
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
#: seed of the subset draws (torch-fidelity's default, so its value on the same features agrees)
KID_SEED = 2020


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between feature sets ``x (m, d)`` and ``y (n, d)`` (m, n >= 2), float64,
    with the cubic polynomial kernel ``k(a, b) = (a·b / d + 1)^3`` (Bińkowski et al. 2018):
    ``mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j)``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {m} and {n}")
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean())


def kernel_inception_distance(feats1: np.ndarray, feats2: np.ndarray, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED
                              ) -> tuple[float, float, int]:
    """KID: mean and standard deviation (ddof=0) of :func:`polynomial_mmd2_unbiased` over
    ``subsets`` random subsets of ``min(subset_size, n1, n2)`` images drawn without replacement
    from each set, and that size. Subsets are drawn as torch-fidelity draws them
    (``numpy.random.RandomState(seed).choice`` for set 1, then set 2, per subset), so the same
    features and seed give its value. When the subset is the whole of both sets every subset
    is the same and the deviation is 0."""
    x = np.asarray(feats1, dtype=np.float64)
    y = np.asarray(feats2, dtype=np.float64)
    size = min(subset_size, len(x), len(y))
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)]
        b = y[rng.choice(len(y), size, replace=False)]
        mmds[i] = polynomial_mmd2_unbiased(a, b)
    return float(mmds.mean()), float(mmds.std()), size


class _KIDBase(_FIDBase):
    def aggregate(self, features: np.ndarray, samples: Sequence[Sample],
                  ctx: MetricContext) -> dict[str, Any]:
        """``{"value", "std" (over subsets), "n", "n_reference", "subsets", "subset_size",
        "seed", "reference", "resize"}`` for the scored set."""
        feats, ref, origin = self.feature_sets(features, samples, ctx)
        if len(feats) < 2:
            return {"value": float("nan"), "n": len(feats), "n_reference": len(ref),
                    "reference": origin, "resize": self.resize}
        mean, std, size = kernel_inception_distance(feats, ref)
        return {"value": mean, "std": std, "n": len(feats), "n_reference": len(ref),
                "subsets": KID_SUBSETS, "subset_size": size, "seed": KID_SEED,
                "reference": origin, "resize": self.resize}


@metrics.register("kid")
class KID(_KIDBase):
    label = "KID"
    protocol = ("pytorch-fid legacy input (as fid) and TF Inception-v3 pool3 2048-d features (shared "
                "with fid), restored vs split's sharp images; unbiased MMD^2 with kernel (x.y/2048+1)^3, "
                "mean (std) over 100 subsets of min(1000, n) images, seed 2020")
    resize = "legacy"


@metrics.register("kid-clean")
class KIDClean(_KIDBase):
    label = "KID (clean resize)"
    protocol = ("clean resize input and features as fid-clean (shared with it), restored vs split's sharp "
                "images; unbiased MMD^2 with kernel (x.y/2048+1)^3, mean (std) over 100 subsets of "
                "min(1000, n) images, seed 2020; not clean-fid's value")
    resize = "clean"


__all__ = [
    "FID",
    "KID",
    "KID_SEED",
    "KID_SUBSETS",
    "KID_SUBSET_SIZE",
    "KIDClean",
    "kernel_inception_distance",
    "polynomial_mmd2_unbiased",
    "MIN_RELIABLE_N",
    "FIDClean",
    "FIDInceptionPool",
    "build_fid_inception",
    "fid_inception_architecture",
    "fid_stats_dir",
    "frechet_distance",
    "inception_features",
    "pil_bicubic_299",
    "reference_paths",
]
