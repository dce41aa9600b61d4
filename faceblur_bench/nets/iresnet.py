"""IResNet (insightface ``arcface_torch`` layout) and its ONNX export.

The standard ArcFace metric runs insightface recognition models from ONNX files (buffalo_l's
``w600k_r50.onnx`` is an IResNet-50). This module builds that architecture so that tests (and
users who train their own recogniser) can export a format-faithful ONNX file: static
``112×112`` input, symbolic batch, exactly one ``(N, 512)`` output, input normalised outside
the graph as ``(x − 127.5)/127.5`` (what insightface's ``ArcFaceONNX.get_feat`` does).

``layers=(3, 4, 14, 3)`` is IResNet-50; ``(2, 2, 2, 2)`` IResNet-18; small stacks such as
``(1, 1, 1, 1)`` make fast test models with the same structure.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

INPUT_SIZE = 112


class IBasicBlock(nn.Module):
    """BN → conv3x3 → BN → PReLU → conv3x3(stride) → BN, plus (projected) identity."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return y + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """``(N, 3, 112, 112)`` normalised RGB → ``(N, num_features)`` (not normalised)."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 14, 3), num_features: int = 512,
                 widths: tuple[int, int, int, int] = (64, 128, 256, 512)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (w, n) in enumerate(zip(widths, layers)):
            blocks = [IBasicBlock(cin, w, 2)] + [IBasicBlock(w, w) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = w
        self.bn2 = nn.BatchNorm2d(cin, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(cin * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x))
        return self.features(self.fc(torch.flatten(x, 1)))


def export_onnx(model: nn.Module, path: str | Path, opset: int = 17) -> Path:
    """Export ``model`` as an insightface-compatible recognition ONNX file.

    Static ``(·, 3, 112, 112)`` float input named ``input.1``, symbolic batch dimension, one
    output. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dummy = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    kwargs = {"input_names": ["input.1"], "output_names": ["embedding"],
              "dynamic_axes": {"input.1": {0: "batch"}, "embedding": {0: "batch"}},
              "opset_version": opset}
    with torch.no_grad():
        try:
            torch.onnx.export(model, (dummy,), str(path), dynamo=False, **kwargs)
        except TypeError:  # torch versions without the ``dynamo`` switch
            torch.onnx.export(model, (dummy,), str(path), **kwargs)
    return path
