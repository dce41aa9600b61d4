"""No-reference image quality through IQA-PyTorch (``pyiqa``): one metric ``pyiqa-<name>`` per
pyiqa no-reference model.

We do not re-implement IQA models: each metric builds ``pyiqa.create_metric(<name>)`` once per run
and scores every restored image with it. Contract of every ``pyiqa-<name>`` metric:

- input: the restored image, uint8 RGB ``(N, 3, H, W)`` divided by 255 -> float32 [0, 1] at its
  own size (pyiqa applies the model's own resize / crop policy);
- value: pyiqa's score per image (NaN when pyiqa cannot score that image, e.g. smaller than the
  model's block size), mean over images; lower/higher-is-better is pyiqa's own ``lower_better``;
- ``needs_reference = False``: they run on splits without ground truth (``lai-real``,
  ``folder:DIR``) and on the restored images of every other split.

The model list is static (:data:`NR_MODELS` in :mod:`.pyiqa_models`, torch-free, so the metric
catalog reads it; pyiqa 0.1.16's no-reference models; its set-level
scores ``fid``/``sfid``/``fid_dinov2``/``inception_score`` and the caption-based ``clipscore``
are left out), so registering them never imports pyiqa (importing it takes seconds). Without
pyiqa installed the metrics are listed with "install faceblur-bench[iqa]" in their protocol and
reported "n/a". Only :data:`DEFAULT_NO_REFERENCE` joins ``run``'s default metric set, and only on
splits without ground truth; every other pyiqa metric is selected by name.

Weights: pyiqa downloads its files on first use into ``torch.hub.get_dir()/pyiqa``
(``$TORCH_HOME/hub/pyiqa``; CLIP backbones into ``.../hub/clip``, timm backbones into the Hugging
Face cache). The harness never lets it download during a run: while a model is built (and while it
scores) :func:`offline` turns every download attempt into a "weights missing: FILE (where pyiqa
looks for it)" reason, and forces ``torch.load(..., weights_only=True)`` so no pickled code in a
checkpoint runs. The files of the default models are entries of :mod:`faceblur_bench.weights`
(``faceblur-bench weights`` lists them; ``weights fetch`` downloads them); ``faceblur-bench weights
fetch pyiqa-<name>`` lets pyiqa itself fetch everything a model needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .. import weights as wts
from ..errors import PackageMissingError, WeightsIntegrityError, WeightsMissingError
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .pyiqa_models import (  # noqa: F401  (the static model list, re-exported)
    DEFAULT_NO_REFERENCE,
    INSTALL_HINT,
    MODEL_WEIGHTS,
    NR_MODELS,
    PYIQA_TESTED,
    protocol,
    pyiqa_installed,
)

#: images per pyiqa forward pass (bounds memory of the transformer models)
CHUNK = 8


def pyiqa_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyiqa")
    except PackageNotFoundError:
        return None


def pyiqa_cache_dir() -> Path:
    """Where pyiqa looks for (and would download) its files: ``torch.hub.get_dir()/pyiqa``."""
    return Path(torch.hub.get_dir()) / "pyiqa"


class _Blocked(Exception):
    """A download attempted while :func:`offline` is active (``url``, ``target`` path or None)."""

    def __init__(self, url: str, target: str | None):
        self.url, self.target = url, target
        super().__init__(f"download blocked: {url} -> {target}")


@contextmanager
def offline(allow_download: bool = False) -> Iterator[None]:
    """While pyiqa builds or runs a model: no network, and ``torch.load(weights_only=True)``.

    Every download route pyiqa 0.1.16 uses raises :class:`_Blocked` naming the file and where it
    would be saved: its ``load_file_from_url`` (``download_url_to_file``), CLIP's ``_download``,
    torch hub, the Hugging Face Hub (offline mode) and, as a catch-all, opening a socket.
    ``allow_download=True`` keeps the network (``weights fetch``) but still loads weights-only.
    """
    import socket

    from pyiqa.archs import clip_model
    from pyiqa.utils import download_util

    saved: list[tuple[Any, str, Any]] = []

    def patch(obj: Any, attr: str, value: Any) -> None:
        saved.append((obj, attr, getattr(obj, attr)))
        setattr(obj, attr, value)

    orig_load = torch.load

    def weights_only_load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True  # pyiqa passes False; no pickled code may run
        return orig_load(*args, **kwargs)

    patch(torch, "load", weights_only_load)
    old_env = os.environ.get("HF_HUB_OFFLINE")
    if not allow_download:
        def no_download(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
            raise _Blocked(url, dst)

        orig_clip = clip_model._download

        def clip_download(url: str, root: str) -> str:
            target = os.path.join(root, os.path.basename(url))
            if os.path.isfile(target):
                return orig_clip(url, root)  # checks the sha256 CLIP's URL carries
            raise _Blocked(url, target)

        def no_connect(sock: Any, address: Any) -> None:
            raise _Blocked(f"network address {address}", None)

        patch(download_util, "download_url_to_file", no_download)
        patch(torch.hub, "download_url_to_file", no_download)
        patch(clip_model, "_download", clip_download)
        patch(socket.socket, "connect", no_connect)
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            import huggingface_hub.constants as hf_constants

            patch(hf_constants, "HF_HUB_OFFLINE", True)
        except ImportError:
            pass
    try:
        yield
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)
        if not allow_download:
            if old_env is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = old_env


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__])


def _missing_error(name: str, exc: BaseException) -> WeightsMissingError | None:
    """The :class:`WeightsMissingError` a blocked download (or an offline cache miss) means."""
    fetch = f"`faceblur-bench weights fetch pyiqa-{name}` (online) lets pyiqa download it"
    for e in _chain(exc):
        if isinstance(e, _Blocked):
            if e.target:
                fname = Path(e.target).name
                where = str(Path(e.target).parent)
                err = WeightsMissingError(
                    f"pyiqa '{name}' needs {fname}, not found in {where} (where pyiqa looks for it)",
                    f"{fetch}; or download {e.url} and place it at {e.target}")
                err.short = f"{fname} ({where}, where pyiqa looks for it)"
            else:
                err = WeightsMissingError(
                    f"pyiqa '{name}' tried to reach the network ({e.url}) for a file it lacks",
                    f"{fetch}")
                err.short = f"a file pyiqa '{name}' downloads on first use ({e.url})"
            return err
        cls = type(e).__name__
        if cls in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
            hf = os.environ.get("HF_HUB_CACHE") or os.path.join(
                os.environ.get("HF_HOME", os.path.join(os.environ.get(
                    "XDG_CACHE_HOME", str(Path.home() / ".cache")), "huggingface")), "hub")
            first = str(e).strip().splitlines()[0] if str(e).strip() else cls
            err = WeightsMissingError(
                f"pyiqa '{name}' needs a Hugging Face Hub file not in the local cache {hf}: {first}",
                fetch)
            err.short = f"a Hugging Face Hub backbone of pyiqa '{name}' ({hf}, where it looks for it)"
            return err
    return None


class PyIQAMetric(Metric):
    """One pyiqa no-reference model (subclasses set :attr:`pyiqa_name`; see module doc)."""

    pyiqa_name: ClassVar[str] = ""
    arch: ClassVar[str] = ""
    score_range: ClassVar[str] = ""
    needs_reference = False
    family = "standard"
    kind = "paired"
    default = False

    def setup(self, ctx: MetricContext) -> None:
        if not pyiqa_installed():
            err = PackageMissingError(
                f"metric {self.name} needs pyiqa (IQA-PyTorch), which is not installed",
                "pip install 'faceblur-bench[iqa]'")
            err.short = f"{INSTALL_HINT} (pyiqa is not installed)"
            raise err
        kwargs: dict[str, Any] = {}
        for entry, keyword in MODEL_WEIGHTS.get(self.pyiqa_name, ()):
            try:
                path = wts.resolve(entry, ctx.weights_overrides)
            except WeightsMissingError as exc:  # name the place pyiqa itself reads
                wf = wts.get_entry(entry)
                exc.short = (f"{wf.filename} ({wts.upstream_dir(wf)}, where pyiqa looks for it; "
                             f"`faceblur-bench weights fetch {entry}`)")
                raise
            if keyword is not None:  # the file we resolved is the one pyiqa loads
                kwargs[keyword] = str(path)
        self.model = ctx.shared(("pyiqa", self.pyiqa_name, tuple(sorted(kwargs.items()))),
                                lambda: build_model(self.pyiqa_name, ctx.device, **kwargs))

    def compute(self, batch: Batch) -> np.ndarray:
        x = batch.restored.float().div_(255.0)
        out = np.full(len(batch), np.nan)
        with offline():
            for i in range(0, len(batch), CHUNK):
                part = x[i:i + CHUNK]
                try:
                    out[i:i + len(part)] = _scores(self.model(part), len(part))
                except Exception:  # retried image by image below
                    if len(part) == 1 and len(batch) == 1:
                        raise  # the engine records the reason for this image's metric
                    for j in range(len(part)):  # isolate the image(s) the model cannot score
                        try:
                            out[i + j] = _scores(self.model(part[j:j + 1]), 1)[0]
                        except Exception:  # noqa: BLE001 -- any model failure: unscored
                            out[i + j] = np.nan
        return out


def _scores(value: Any, n: int) -> np.ndarray:
    v = value.detach().double().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.shape[0] != n:
        raise ValueError(f"pyiqa returned {v.shape[0]} scores for {n} images")
    return v


def build_model(name: str, device: torch.device | str = "cpu", allow_download: bool = False,
                **kwargs: Any) -> torch.nn.Module:
    """``pyiqa.create_metric(name, device=device, **kwargs)`` built under :func:`offline`.

    Raises :class:`WeightsMissingError` (a file pyiqa would download; ``short`` names it and
    where pyiqa looks for it), :class:`WeightsIntegrityError` (a file that cannot be loaded with
    ``weights_only=True``) or :class:`PackageMissingError` (pyiqa absent or unable to build it).
    """
    try:
        import pyiqa
    except ImportError as exc:
        err = PackageMissingError(f"pyiqa cannot be imported ({exc})", "pip install 'faceblur-bench[iqa]'")
        err.short = f"{INSTALL_HINT} (pyiqa does not import: {exc})"
        raise err from None
    with offline(allow_download=allow_download):
        try:
            model = pyiqa.create_metric(name, device=torch.device(device), **kwargs)
        except Exception as exc:  # noqa: BLE001 -- every failure becomes a typed reason
            missing = _missing_error(name, exc)
            if missing is not None:
                raise missing from None
            if any(isinstance(e, __import__("pickle").UnpicklingError) for e in _chain(exc)):
                err = WeightsIntegrityError(
                    f"pyiqa '{name}': a weight file cannot be loaded with torch.load(weights_only=True) "
                    f"({str(exc).strip().splitlines()[0][:200]})",
                    "replace it with the genuine file pyiqa publishes (a state dict of tensors)")
                err.short = f"pyiqa '{name}' weight file is not a plain tensor file (weights_only=True)"
                raise err from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            chain = list(_chain(exc))
            if any(type(e).__name__ in ("URLError", "HTTPError", "ConnectionError", "gaierror",
                                        "LocalEntryNotFoundError", "OfflineModeIsEnabled")
                   or "Can't load" in str(e) or "huggingface" in str(e).lower() for e in chain):
                # a model that fetches files (weights, a Hugging Face processor) while it is built
                err = WeightsMissingError(
                    f"pyiqa '{name}' fetches files while it is built and they are not on this machine "
                    f"({type(exc).__name__}: {first[:160]})",
                    f"run `faceblur-bench weights fetch pyiqa-{name}` on a machine with network access "
                    "(pyiqa's and Hugging Face's caches), then copy the caches here")
                err.short = f"pyiqa '{name}' needs files it downloads at build time ({type(exc).__name__})"
                raise err from None
            missing_mod = next((e for e in chain if isinstance(e, ModuleNotFoundError)), None)
            if missing_mod is not None:
                mod = getattr(missing_mod, "name", None) or first
                err = PackageMissingError(
                    f"pyiqa '{name}' needs the Python module {mod!r}, which is not installed",
                    f"pip install the package that provides {mod!r}"
                    + (" (setuptools<81 still ships pkg_resources)" if mod == "pkg_resources" else ""))
                err.short = f"n/a — install the module {mod!r} (needed by pyiqa '{name}')"
                raise err from None
            err = PackageMissingError(
                f"pyiqa {pyiqa_version()} could not build '{name}': {type(exc).__name__}: {first}",
                f"these metrics were written against pyiqa {PYIQA_TESTED}; "
                f"pip install 'pyiqa=={PYIQA_TESTED}'")
            err.short = f"pyiqa could not build '{name}': {type(exc).__name__}: {first[:120]}"
            raise err from None
    model.eval()
    return model


def fetch(metric_name: str, device: str = "cpu") -> None:
    """Let pyiqa download every file ``pyiqa-<name>`` needs (network on; weights-only loading)."""
    cls = metrics.get(metric_name)
    if not issubclass(cls, PyIQAMetric):
        raise TypeError(f"{metric_name} is not a pyiqa metric")
    if not pyiqa_installed():
        raise PackageMissingError(f"metric {metric_name} needs pyiqa, which is not installed",
                                     "pip install 'faceblur-bench[iqa]'")
    build_model(cls.pyiqa_name, device, allow_download=True)


def _register() -> None:
    for name, arch, lower, rng in NR_MODELS:
        ident = "".join(c if c.isalnum() else "_" for c in name)
        attrs = {"pyiqa_name": name, "arch": arch, "score_range": rng, "higher_is_better": not lower,
                 "weights": tuple(e for e, _ in MODEL_WEIGHTS.get(name, ())),
                 "protocol": protocol(name, arch, lower, rng), "name": f"pyiqa-{name}",
                 "__module__": __name__,
                 "__doc__": f"pyiqa no-reference model '{name}' ({arch}); see the module docstring."}
        metrics.add(f"pyiqa-{name}", type(f"PyIQA_{ident}", (PyIQAMetric,), attrs), origin=__name__)


_register()
