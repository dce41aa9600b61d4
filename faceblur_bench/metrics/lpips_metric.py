"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, under named input conventions.

The ``lpips`` package ships only the learned linear heads (``lpips/weights/v0.1/{alex,vgg}.pth``);
the backbones are torchvision's ImageNet weights (``alexnet-owt-7be5be79.pth``,
``vgg16-397923af.pth``). The backbone file is resolved first through
:func:`faceblur_bench.weights.resolve` (missing -> :class:`WeightsMissingError`, wrong file ->
:class:`WeightsIntegrityError`); the model is then built with a randomly initialised trunk
(``pnet_rand=True``, so torchvision never tries to download) and the resolved backbone state
dict is loaded into the trunk slices strictly. The result is the same network
``lpips.LPIPS(net=..., version="0.1")`` builds when torchvision finds the file in its cache.

Protocols (all per image, mean over images, lower is better):

- ``lpips-alex`` / ``lpips-vgg``: uint8 RGB mapped to [-1, 1] (``x / 127.5 - 1``, what
  ``normalize=True`` does to [0, 1] input), v0.1 heads, spatial average: the standard use.
- ``lpips-vgg-255`` (SAPPGAN evaluation code): the VGG LPIPS called on 0..255 tensors, which the
  library does not expect; reproduced so published SAPPGAN/DFPG LPIPS can be compared like for
  like. Values are on a different scale from ``lpips-vgg``.
- ``lpips-alex-01`` (CFMD-GAN validation code): AlexNet LPIPS on [0, 1] input without
  ``normalize=True``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from .. import weights
from ..registry import metrics
from .base import Batch, Metric, MetricContext
from .reference_cache import reference_cache

#: lpips trunk slice k holds torchvision ``features[i]`` for i in these ranges
_SLICES: dict[str, tuple[range, ...]] = {
    "alex": (range(2), range(2, 5), range(5, 8), range(8, 10), range(10, 12)),
    "vgg": (range(4), range(4, 9), range(9, 16), range(16, 23), range(23, 30)),
}
_BACKBONE_WEIGHTS = {"alex": "lpips-alex-backbone", "vgg": "lpips-vgg-backbone"}

#: images per forward pass (bounds memory at large resolutions)
CHUNK = 32


def backbone_state_for_lpips(net: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a torchvision ``alexnet``/``vgg16`` state dict to the keys of ``lpips`` trunk slices.

    ``features.{i}.{weight,bias}`` -> ``slice{k}.{i}.{weight,bias}``; classifier keys are dropped.
    Raises ``ValueError`` naming the missing key when the file is not a torchvision backbone.
    """
    out: dict[str, torch.Tensor] = {}
    for k, idx in enumerate(_SLICES[net], start=1):
        for i in idx:
            for p in ("weight", "bias"):
                src = f"features.{i}.{p}"
                if src in state:
                    out[f"slice{k}.{i}.{p}"] = state[src]
    if not out:
        raise ValueError(
            f"no 'features.*' tensors in the {net} backbone file; expected a torchvision "
            f"{'alexnet' if net == 'alex' else 'vgg16'} state dict"
        )
    return out


def build_lpips(net: Literal["alex", "vgg"], device: torch.device | str = "cpu",
                overrides: dict[str, str] | None = None) -> torch.nn.Module:
    """``lpips.LPIPS(net=net, version='0.1')`` with the backbone loaded from the resolved file.

    Never downloads: the trunk is built randomly initialised and overwritten with the state dict
    of the file :func:`weights.resolve` returns. Eval mode, no gradients, on ``device``.
    """
    import lpips
    import torchvision

    from ..nets.loading import read_state_dict

    path = weights.resolve(_BACKBONE_WEIGHTS[net], overrides)
    with torch.device("meta"):  # the torchvision architecture the file is for (sizes only)
        arch = torchvision.models.alexnet() if net == "alex" else torchvision.models.vgg16()
    state = read_state_dict(path, expected=arch, what=f"torchvision {'alexnet' if net == 'alex' else 'vgg16'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation notes about `pretrained=`
        model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
    try:
        model.net.load_state_dict(backbone_state_for_lpips(net, state), strict=True)
    except (RuntimeError, ValueError) as exc:
        from ..errors import WeightsIntegrityError

        raise WeightsIntegrityError(
            f"{path} does not fit the LPIPS {net} trunk: {exc}",
            f"use the torchvision file {weights.get_entry(_BACKBONE_WEIGHTS[net]).filename}",
        ) from None
    model.eval().requires_grad_(False)
    # channels-last activations: oneDNN/cuDNN run these convolutions 1.2-1.4x faster (same math)
    return model.to(device=device, memory_format=torch.channels_last)


class _LPIPSBase(Metric):
    net: ClassVar[Literal["alex", "vgg"]] = "alex"
    #: how uint8 input is scaled before the package's forward: "pm1" [-1,1], "01" [0,1], "255"
    input_range: ClassVar[str] = "pm1"
    higher_is_better = False

    def setup(self, ctx: MetricContext) -> None:
        import lpips

        self.device = ctx.device
        self.model = ctx.shared(("lpips", self.net),
                                lambda: build_lpips(self.net, ctx.device, ctx.weights_overrides))
        # the ground truth's unit-normalised activations are computed once per file (and run)
        self.refs = reference_cache(ctx)
        backbone = weights.resolve(_BACKBONE_WEIGHTS[self.net], ctx.weights_overrides)
        self.ref_namespace = self.refs.namespace(
            {"what": "lpips-normalised-activations", "net": self.net, "input": self.input_range,
             "version": "0.1", "lpips": getattr(lpips, "__version__", "?")}, [backbone])

    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The package's 0.1 forward up to the unit-normalised layer activations."""
        from lpips import normalize_tensor

        outs = self.model.net.forward(self.model.scaling_layer(x))
        return [normalize_tensor(outs[k]) for k in range(self.model.L)]

    def _distance(self, feats0: list[torch.Tensor], feats1: list[torch.Tensor]) -> torch.Tensor:
        """``LPIPS.forward`` after the activations: squared differences, linear heads, spatial
        mean, summed over layers in layer order (as the package does).

        ``feats0`` is consumed (overwritten in place: the differences of the largest layers are
        ~100 MB per 32 images, and a second copy is what made this step cost a third of the
        network's time); ``feats1`` is brought to ``feats0``'s memory layout first (the cached
        ground-truth activations are stored contiguous, the restored ones are channels-last) so
        the element-wise ops run on matching strides. Same operations, same values."""
        val = 0
        for k in range(self.model.L):
            f1 = torch.empty_like(feats0[k]).copy_(feats1[k])  # feats0's device and layout
            diff = feats0[k].sub_(f1).pow_(2)
            val = val + self.model.lins[k](diff).mean([2, 3], keepdim=True)
        return val

    def _scale(self, u8: torch.Tensor) -> torch.Tensor:
        x = u8.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        if self.input_range == "pm1":
            return x / 127.5 - 1.0
        if self.input_range == "01":
            return x / 255.0
        return x

    def compute(self, batch: Batch) -> np.ndarray:
        batch.reference_for(self.name)
        if batch.restored.shape != batch.reference.shape:
            raise ValueError(
                f"{self.name}: restored {tuple(batch.restored.shape)} and reference "
                f"{tuple(batch.reference.shape)} differ in shape"
            )
        refs = self.refs.per_reference(self.ref_namespace, batch,
                                       lambda y: self._activations(self._scale(y)))
        out = []
        with torch.inference_mode():
            for s in range(0, len(batch.restored), CHUNK):
                f0 = self._activations(self._scale(batch.restored[s:s + CHUNK]))
                f1 = [torch.cat([r[k] for r in refs[s:s + CHUNK]]) for k in range(len(f0))]
                out.append(self._distance(f0, f1).flatten().double().cpu())
        return torch.cat(out).numpy()


@metrics.register("lpips-alex")
class LPIPSAlex(_LPIPSBase):
    label = "LPIPS (Alex)"
    protocol = "lpips 0.1 AlexNet, uint8 RGB -> [-1,1], 5 layers unit-normalised, learned linear heads, spatial mean; mean over images"
    weights = ("lpips-alex-backbone",)
    net = "alex"
    input_range = "pm1"


@metrics.register("lpips-vgg")
class LPIPSVGG(_LPIPSBase):
    label = "LPIPS (VGG)"
    protocol = "lpips 0.1 VGG16, uint8 RGB -> [-1,1], 5 layers unit-normalised, learned linear heads, spatial mean; mean over images"
    weights = ("lpips-vgg-backbone",)
    net = "vgg"
    input_range = "pm1"


@metrics.register("lpips-vgg-255")
class LPIPSVGG255(_LPIPSBase):
    label = "LPIPS (VGG, 0-255)"
    protocol = "SAPPGAN evaluation: lpips 0.1 VGG16 called on 0..255 float input (not [-1,1]); not comparable with lpips-vgg; mean over images"
    weights = ("lpips-vgg-backbone",)
    net = "vgg"
    input_range = "255"
    family = "paper"


@metrics.register("lpips-alex-01")
class LPIPSAlex01(_LPIPSBase):
    label = "LPIPS (Alex, [0,1])"
    protocol = "CFMD-GAN validation: lpips 0.1 AlexNet on [0,1] input without normalize=True; not comparable with lpips-alex; mean over images"
    weights = ("lpips-alex-backbone",)
    net = "alex"
    input_range = "01"
    family = "paper"


__all__: list[Any] = [
    "LPIPSVGG",
    "LPIPSVGG255",
    "LPIPSAlex",
    "LPIPSAlex01",
    "backbone_state_for_lpips",
    "build_lpips",
]
