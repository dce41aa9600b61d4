"""VGG-Face (Parkhi et al. 2015) feature taps for Shen et al.'s perceptual loss (pool2, pool5).

The paper's loss network is the Oxford VGG-Face model. It is read from ``vgg_face_dag.pth``
(weights entry ``vgg-face-dag``: Albanie's PyTorch conversion of the MatConvNet release; a
state dict with keys ``conv{b}_{i}.weight`` / ``.bias`` for the 13 convolutions, plus
``fc6``–``fc8`` which are not read). Input: images ``(N, 3, H, W)`` in [0, 1], scaled to 0–255
with the model's mean RGB ``(129.186, 104.762, 93.594)`` subtracted, as the model was trained.
``H, W`` must be multiples of 32 (pool5).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import WeightsIntegrityError
from ...nets.loading import read_state_dict

MEAN_RGB: tuple[float, float, float] = (129.186, 104.762, 93.594)
#: convolutions per block of VGG-16 and the standard widths
BLOCKS: tuple[int, ...] = (2, 2, 3, 3, 3)
WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
POOLS: tuple[str, ...] = ("pool1", "pool2", "pool3", "pool4", "pool5")
PAPER_LAYERS: tuple[str, ...] = ("pool2", "pool5")


def conv_names() -> list[str]:
    """``conv1_1`` … ``conv5_3`` in forward order."""
    return [f"conv{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS) for i in range(n)]


class VGGFaceTaps(nn.Module):
    """Frozen VGG-Face up to the deepest requested pool; ``forward(x) -> tuple`` of the
    ``layers`` outputs in order (pool2: ``(N, 128, H/4, W/4)``, pool5: ``(N, 512, H/32, W/32)``
    at the standard widths). ``widths`` other than :data:`WIDTHS` only serve tests. Gradients
    flow to the input; the parameters never train."""

    def __init__(self, layers: Sequence[str] = PAPER_LAYERS, widths: Sequence[int] = WIDTHS):
        super().__init__()
        bad = [name for name in layers if name not in POOLS]
        if bad or not layers:
            raise ValueError(f"unknown VGG-Face layer(s) {bad}; known: {list(POOLS)}")
        self.layers = tuple(layers)
        self.depth = max(POOLS.index(name) for name in self.layers) + 1
        self.convs = nn.ModuleDict()
        c = 3
        for b in range(self.depth):
            for i in range(BLOCKS[b]):
                self.convs[f"conv{b + 1}_{i + 1}"] = nn.Conv2d(c, widths[b], 3, 1, 1)
                c = widths[b]
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFaceTaps:  # always frozen, always eval
        return super().train(False)

    def forward(self, x01: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = x01 * 255.0 - self.mean.to(x01.dtype)
        out = {}
        for b in range(self.depth):
            for i in range(BLOCKS[b]):
                h = F.relu(self.convs[f"conv{b + 1}_{i + 1}"](h))
            h = F.max_pool2d(h, 2)
            out[POOLS[b]] = h
        return tuple(out[name] for name in self.layers)

    def load_dag(self, path: str | Path) -> VGGFaceTaps:
        """Read the conv weights of ``vgg_face_dag.pth``; refuses a file lacking a layer or with
        a wrong shape, naming the layer."""
        sd = read_state_dict(path)
        new = {}
        for name, conv in self.convs.items():
            for part, own in (("weight", conv.weight), ("bias", conv.bias)):
                src = sd.get(f"{name}.{part}")
                if src is None:
                    raise WeightsIntegrityError(
                        f"{path}: no {name}.{part} (not a VGG-Face vgg_face_dag.pth state dict)",
                        "use vgg_face_dag.pth (weights entry 'vgg-face-dag')")
                if tuple(src.shape) != tuple(own.shape):
                    raise WeightsIntegrityError(
                        f"{path}: {name}.{part} has shape {tuple(src.shape)}, expected "
                        f"{tuple(own.shape)}", "use vgg_face_dag.pth (weights entry 'vgg-face-dag')")
                new[f"{name}.{part}"] = src.to(torch.float32)
        self.convs.load_state_dict(new)
        return self


def load_vggface(layers: Sequence[str] = PAPER_LAYERS, overrides: dict[str, str] | None = None,
                 device: torch.device | str = "cpu") -> VGGFaceTaps:
    """VGG-Face taps with the weights found through the weights registry (``vgg-face-dag``);
    :class:`~faceblur_bench.errors.WeightsMissingError` naming the file when it is absent."""
    from ... import weights

    path = weights.resolve("vgg-face-dag", overrides)
    return VGGFaceTaps(layers).load_dag(path).to(device)


def save_random_dag(path: str | Path, seed: int = 0) -> Path:
    """Write a *format-faithful* ``vgg_face_dag.pth`` (same keys, shapes, dtype) with random
    values, for tests and smoke runs only — never for reported numbers. Each weight varies
    per output channel and is stored as a broadcast view, so the file stays small."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    c = 3
    for b, n in enumerate(BLOCKS):
        for i in range(n):
            w = WIDTHS[b]
            scale = (2.0 / (9 * c)) ** 0.5
            sd[f"conv{b + 1}_{i + 1}.weight"] = (torch.randn(w, 1, 1, 1, generator=g) * scale
                                                 ).expand(w, c, 3, 3)
            sd[f"conv{b + 1}_{i + 1}.bias"] = torch.randn(w, generator=g) * 0.01
            c = w
    for name, (o, i_) in {"fc6": (4096, 25088), "fc7": (4096, 4096), "fc8": (2622, 4096)}.items():
        sd[f"{name}.weight"] = torch.full((1, 1), 1e-3).expand(o, i_)
        sd[f"{name}.bias"] = torch.zeros(1).expand(o)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path
