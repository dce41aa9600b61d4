"""FAN with AdaptiveWing's CoordConv hourglasses: the 98-point (WFLW) landmark model the field's
landmark distance (LMD) uses — facexlib's ``awing_fan``, file ``alignment_WFLW_4HG.pth``.

Built in the exact layout of that file (``{'state_dict': ...}``, keys without prefix; the names
below are the file's), so it loads with strict key and shape checks:

- ``conv1.conv``: 7×7 stride-2 conv, 3 image channels + 3 coordinate channels → 64, with bias;
  ``bn1``; ``conv2`` (64→128), ``conv3`` (128→128), ``conv4`` (128→256): pre-activation
  bottlenecks (:class:`ConvBlock`); a 2×2 average pool after ``conv2``.
- four stacked hourglasses ``m0``–``m3`` (depth 4, 256 features). Each starts with
  ``m<i>.coordconv.conv``, a 1×1 conv (with bias) over the features plus the 64×64 coordinate
  channels (row, column, radius; 259 inputs) and, from the second hourglass on, the row and column
  channels masked by the previous stack's boundary heatmap (261 inputs). Blocks ``b1_<l>``
  (skip), ``b2_<l>`` (after a 2×2 average pool), ``b2_plus_1`` (innermost), ``b3_<l>`` (before a
  nearest 2× upsampling), levels ``l = 4 … 1``.
- after hourglass ``i``: ``top_m_<i>`` (ConvBlock), ``conv_last<i>`` (1×1) + ``bn_end<i>`` +
  ReLU, ``l<i>``: 1×1 conv to 99 heatmaps — the 98 landmarks and, last, the boundary map;
  between stacks ``bl<i>`` (1×1 on the features) and ``al<i>`` (1×1 on the heatmaps) are added
  to the stack's input.

Input ``(N, 3, 256, 256)`` float RGB in [0, 1] (exactly 256: the coordinate channels have fixed
sizes); output the last stack's heatmaps ``(N, 99, 64, 64)``. Decoding and the 256×256 resize
are :func:`decode_heatmaps` and :func:`fan_landmarks`, as facexlib's ``FAN.get_landmarks``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .loading import load_exact, read_state_dict

N_LANDMARKS = 98
#: side of the network's input, pixels
INPUT_SIZE = 256
#: side of its heatmaps (a heatmap pixel covers 4×4 input pixels)
HEATMAP_SIZE = 64
N_STACKS = 4
HOURGLASS_DEPTH = 4
FEATURES = 256
#: a boundary-heatmap value above this marks the pixels whose coordinates the next stack sees
BOUNDARY_THRESHOLD = 0.05


def coordinate_channels(n: int, size: int, device: torch.device | str = "cpu",
                        boundary: torch.Tensor | None = None) -> torch.Tensor:
    """CoordConv channels ``(n, 3 or 5, size, size)`` float32 for a ``size``×``size`` map.

    Channel 0 is the **row** coordinate and channel 1 the **column** coordinate, each linear from
    −1 (first) to 1 (last); channel 2 their radius divided by its maximum (√2, at the corners).
    With ``boundary`` ``(n, 1, size, size)`` (the previous stack's boundary heatmap), two more
    channels: the row and column coordinates where ``boundary > 0.05``, else 0.
    """
    ramp = torch.arange(size, dtype=torch.float32, device=device) / (size - 1) * 2 - 1
    rows = ramp.view(1, 1, size, 1).expand(1, 1, size, size)
    cols = ramp.view(1, 1, 1, size).expand(1, 1, size, size)
    radius = torch.sqrt(torch.pow(rows, 2) + torch.pow(cols, 2))
    radius = radius / radius.max()
    coords = torch.cat([rows, cols, radius], 1).expand(n, 3, size, size)
    if boundary is None:
        return coords
    on = boundary > BOUNDARY_THRESHOLD
    zero = torch.zeros((), device=device)
    return torch.cat([coords, torch.where(on, rows, zero), torch.where(on, cols, zero)], 1)


class CoordConv(nn.Module):
    """A conv over the input with its coordinate channels appended (``.conv``, with bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor, boundary: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"FAN coordinate channels need square maps, got {tuple(x.shape[-2:])}")
        coords = coordinate_channels(len(x), x.shape[-1], x.device, boundary)
        return self.conv(torch.cat([x, coords.to(x.dtype)], 1))


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation bottleneck: three BN→ReLU→3×3 conv steps to C/2, C/4, C/4 channels, their
    concatenation (C channels) plus the input (through BN→ReLU→1×1 conv when widths differ)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        half, quarter = cout // 2, cout // 4
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), _conv3(cin, half)
        self.bn2, self.conv2 = nn.BatchNorm2d(half), _conv3(half, quarter)
        self.bn3, self.conv3 = nn.BatchNorm2d(quarter), _conv3(quarter, quarter)
        self.downsample: nn.Module | None = None
        if cin != cout:
            self.downsample = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(),
                                            nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(F.relu(self.bn1(x)))
        b = self.conv2(F.relu(self.bn2(a)))
        c = self.conv3(F.relu(self.bn3(b)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.cat([a, b, c], 1) + skip


class HourGlass(nn.Module):
    """One hourglass of ``depth`` levels over 256 features, after its coordinate conv."""

    def __init__(self, first: bool, depth: int = HOURGLASS_DEPTH):
        super().__init__()
        self.depth = depth
        # coordinates (3 channels) and, after the first stack, the boundary-masked ones (2 more)
        self.coordconv = CoordConv(FEATURES + (3 if first else 5), FEATURES, 1)
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(FEATURES, FEATURES))
            self.add_module(f"b2_{level}", ConvBlock(FEATURES, FEATURES))
            self.add_module(f"b3_{level}", ConvBlock(FEATURES, FEATURES))
        self.b2_plus_1 = ConvBlock(FEATURES, FEATURES)

    def level(self, n: int, x: torch.Tensor) -> torch.Tensor:
        skip = self.get_submodule(f"b1_{n}")(x)
        low = self.get_submodule(f"b2_{n}")(F.avg_pool2d(x, 2, stride=2))
        low = self.level(n - 1, low) if n > 1 else self.b2_plus_1(low)
        low = self.get_submodule(f"b3_{n}")(low)
        return skip + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor, boundary: torch.Tensor | None) -> torch.Tensor:
        return self.level(self.depth, self.coordconv(x, boundary))


class AWingFAN(nn.Module):
    """facexlib's ``FAN(num_modules=4, num_landmarks=98)`` (``end_relu`` off, as it is built there)."""

    def __init__(self, n_landmarks: int = N_LANDMARKS, n_stacks: int = N_STACKS):
        super().__init__()
        self.n_stacks = n_stacks
        self.conv1 = CoordConv(3 + 3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, FEATURES)
        maps = n_landmarks + 1  # + the boundary heatmap
        for i in range(n_stacks):
            self.add_module(f"m{i}", HourGlass(first=i == 0))
            self.add_module(f"top_m_{i}", ConvBlock(FEATURES, FEATURES))
            self.add_module(f"conv_last{i}", nn.Conv2d(FEATURES, FEATURES, 1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(FEATURES))
            self.add_module(f"l{i}", nn.Conv2d(FEATURES, maps, 1))
            if i < n_stacks - 1:
                self.add_module(f"bl{i}", nn.Conv2d(FEATURES, FEATURES, 1))
                self.add_module(f"al{i}", nn.Conv2d(maps, FEATURES, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 256, 256)`` RGB in [0, 1] → the last stack's heatmaps ``(N, 99, 64, 64)``."""
        if tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"FAN takes (N, 3, {INPUT_SIZE}, {INPUT_SIZE}) inputs, got {tuple(x.shape)}")
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        heatmaps: torch.Tensor | None = None
        for i in range(self.n_stacks):
            m = self.get_submodule
            boundary = None if heatmaps is None else heatmaps[:, -1:]
            y = m(f"top_m_{i}")(m(f"m{i}")(x, boundary))
            y = F.relu(m(f"bn_end{i}")(m(f"conv_last{i}")(y)))
            heatmaps = m(f"l{i}")(y)
            if i < self.n_stacks - 1:
                x = x + m(f"bl{i}")(y) + m(f"al{i}")(heatmaps)
        assert heatmaps is not None
        return heatmaps


def decode_heatmaps(heatmaps: np.ndarray | torch.Tensor) -> np.ndarray:
    """Landmarks ``(K, 2)`` float64 ``(x, y)`` in heatmap pixels from one image's ``(K, H, W)``
    heatmaps, as facexlib's ``calculate_points`` decodes them.

    Per landmark: the first maximum (row-major argmax) at column ``c``, row ``r``; then a quarter
    pixel towards the larger neighbour: ``x = c + 0.25·sign(h[i+1] − h[i−1]) + 0.5`` and
    ``y = r + 0.25·sign(h[i+W] − h[i−W]) + 0.5`` on the flattened map ``h`` (``i = r·W + c``).
    facexlib's quirks are kept, because they change values:

    - the horizontal neighbours are flat-index neighbours: at the last column ``i+1`` is the first
      pixel of the next row (at index 0, ``i−1`` wraps to the last pixel, numpy's ``[-1]``);
    - when **any** of the image's landmarks has ``i + W ≥ H·W`` (a peak in the last row), every
      landmark's lower neighbour is the map's last pixel; when any has ``i − W ≤ 0``, every
      upper neighbour is its first pixel (facexlib writes 4096 = 64·64, the size its network
      makes; here ``H·W``, equal for 64×64 maps);
    - a peak at the very last pixel makes facexlib fail (index out of range); here ``i+1`` then
      wraps to 0, like ``i−1`` at 0.

    The result is in corner-origin coordinates: heatmap pixel ``(r, c)`` spans ``[c, c+1) ×
    [r, r+1)``, its centre at ``(c + 0.5, r + 0.5)``; multiply by ``crop size / W`` for crop
    pixels (:func:`fan_landmarks`).
    """
    h = np.asarray(heatmaps.detach().cpu() if isinstance(heatmaps, torch.Tensor) else heatmaps)
    if h.ndim != 3:
        raise ValueError(f"decode_heatmaps takes one image's (K, H, W) heatmaps, got shape {h.shape}")
    k, rows, cols = h.shape
    size = rows * cols
    flat = h.reshape(k, size)
    idx = flat.argmax(axis=1)
    pick = np.arange(k)
    dx = flat[pick, (idx + 1) % size] - flat[pick, idx - 1]
    below = flat[:, size - 1] if (idx + cols >= size).any() else flat[pick, np.minimum(idx + cols, size - 1)]
    above = flat[:, 0] if (idx - cols <= 0).any() else flat[pick, np.maximum(idx - cols, 0)]
    step = 0.25 * np.sign(np.stack([dx, below - above], axis=1).astype(np.float64))
    return np.stack([idx % cols, idx // cols], axis=1).astype(np.float64) + step + 0.5


def fan_input(crop_rgb: np.ndarray) -> torch.Tensor:
    """A crop ``(H, W, 3)`` uint8 RGB → the network input ``(1, 3, 256, 256)`` float32 in [0, 1]:
    OpenCV's bilinear resize (``cv2.resize`` default, on the uint8 pixels) to 256×256, then /255
    — facexlib's ``get_landmarks`` (it reads BGR files and flips to RGB after the resize; the
    resize treats channels alike, so resizing RGB gives the same input)."""
    import cv2

    if crop_rgb.ndim != 3 or crop_rgb.shape[2] != 3 or crop_rgb.dtype != np.uint8:
        raise ValueError(f"fan_input takes an (H, W, 3) uint8 RGB crop, got {crop_rgb.shape} {crop_rgb.dtype}")
    small = cv2.resize(np.ascontiguousarray(crop_rgb), (INPUT_SIZE, INPUT_SIZE))
    return torch.from_numpy(small.transpose(2, 0, 1).copy()).float().div_(255.0).unsqueeze_(0)


@torch.no_grad()
def fan_landmarks(net: AWingFAN, crop_rgb: np.ndarray) -> np.ndarray:
    """The 98 WFLW landmarks ``(98, 2)`` float64 ``(x, y)`` of a face crop ``(H, W, 3)`` uint8 RGB,
    in **crop pixels, corner origin** (pixel ``(i, j)`` spans ``[j, j+1) × [i, i+1)``; subtract
    0.5 for pixel-index coordinates): :func:`fan_input`, the network, the 98 landmark heatmaps
    (the boundary map dropped), :func:`decode_heatmaps`, scaled by ``(W/64, H/64)``."""
    device = next(net.parameters()).device
    heatmaps = net(fan_input(crop_rgb).to(device))[0, :-1]
    points = decode_heatmaps(heatmaps.float())
    h, w = crop_rgb.shape[:2]
    return points * np.array([w / HEATMAP_SIZE, h / HEATMAP_SIZE])


def _fill_batch_counters(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A file saved before PyTorch 0.4.1 has no ``num_batches_tracked`` entries (PyTorch itself
    fills them in when loading such a file); they do not take part in an eval forward."""
    counters = [k for k in model.state_dict() if k.endswith(".num_batches_tracked")]
    if counters and not any(k in sd for k in counters):
        sd = {**sd, **{k: torch.tensor(0, dtype=torch.long) for k in counters}}
    return sd


def load_awing_fan(path: str | Path, device: torch.device | str = "cpu") -> AWingFAN:
    """The FAN of ``alignment_WFLW_4HG.pth`` (``{'state_dict': ...}``, strict keys and shapes),
    eval mode, no grad, on ``device``. Read with ``weights_only=True`` (no pickle code runs)."""
    with torch.device("meta"):
        skeleton = AWingFAN()
    sd = read_state_dict(path, wrapper_key="state_dict", expected=skeleton, what="AdaptiveWing FAN (98 points)")
    sd = _fill_batch_counters(sd, skeleton)
    return load_exact(skeleton, sd, path, "AdaptiveWing FAN (98 points)").to(device)
