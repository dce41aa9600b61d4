"""``lmd-fan``: facexlib's AdaptiveWing FAN (98 WFLW points) and the landmark distance on it.

The genuine ``alignment_WFLW_4HG.pth`` cannot be downloaded here, so these tests write a file in
its format — ``torch.save({'state_dict': ...})`` (zip format) with the key names and shapes of
facexlib's ``FAN(num_modules=4, num_landmarks=98)``, random values — and load it through
``weights.py`` (the ``$FACEBLUR_WEIGHTS_AWING_FAN`` override). They check the strict load, the
shapes, the heatmap decoding against values worked out by hand from facexlib's rules, and the
metric's protocol properties that hold for any weights (a face against itself is 0; no face is
NaN). No landmark distance computed with these random weights is a result: none is printed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceblur_bench import weights as wts
from faceblur_bench.errors import WeightsIntegrityError, WeightsMissingError
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.base import MetricContext
from faceblur_bench.nets.awing_fan import (
    AWingFAN,
    decode_heatmaps,
    fan_input,
    fan_landmarks,
    load_awing_fan,
)
from faceblur_bench.registry import metrics

FAN = "awing-fan"
OVERRIDE = "FACEBLUR_WEIGHTS_AWING_FAN"

#: shapes in facexlib's awing_arch.FAN(num_modules=4, num_landmarks=98), written out from its
#: layer definitions (not from our module): CoordConv inputs 3+2+1 (stem), 256+3 (first
#: hourglass), 256+3+2 (later ones, boundary-masked coordinates); 98 landmark maps + 1 boundary map
RELEASED_SHAPES = {
    "conv1.conv.weight": (64, 6, 7, 7),
    "conv1.conv.bias": (64,),
    "bn1.running_var": (64,),
    "conv2.downsample.0.weight": (64,),
    "conv2.downsample.2.weight": (128, 64, 1, 1),
    "conv2.conv1.weight": (64, 64, 3, 3),
    "conv2.conv2.weight": (32, 64, 3, 3),
    "conv2.conv3.weight": (32, 32, 3, 3),
    "conv4.downsample.2.weight": (256, 128, 1, 1),
    "m0.coordconv.conv.weight": (256, 259, 1, 1),
    "m1.coordconv.conv.weight": (256, 261, 1, 1),
    "m3.coordconv.conv.bias": (256,),
    "m2.b1_4.conv1.weight": (128, 256, 3, 3),
    "m2.b2_plus_1.bn3.running_mean": (64,),
    "m3.b3_1.conv3.weight": (64, 64, 3, 3),
    "top_m_3.bn1.num_batches_tracked": (),
    "conv_last3.weight": (256, 256, 1, 1),
    "bn_end3.bias": (256,),
    "l3.weight": (99, 256, 1, 1),
    "l3.bias": (99,),
    "bl2.weight": (256, 256, 1, 1),
    "al2.weight": (256, 99, 1, 1),
}


def _released_layout_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    sd = AWingFAN().state_dict()
    g = torch.Generator().manual_seed(seed)
    for k, v in sd.items():  # BN statistics away from the identity, so they take part
        if k.endswith("running_var"):
            v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif k.endswith("running_mean"):
            v.copy_(torch.randn(v.shape, generator=g) * 0.1)
    return sd


@pytest.fixture(scope="module")
def fan_file(tmp_path_factory) -> Path:
    """A file in alignment_WFLW_4HG.pth's format: ``{'state_dict': ...}``, torch zip format."""
    path = tmp_path_factory.mktemp("fan") / "alignment_WFLW_4HG.pth"
    torch.save({"state_dict": _released_layout_state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def fan(fan_file) -> AWingFAN:
    return load_awing_fan(fan_file)


def test_the_released_key_names_and_shapes(fan):
    sd = fan.state_dict()
    assert len(sd) == 1137  # 1137 entries in facexlib's FAN(4 stacks, 98 points)
    for k, shape in RELEASED_SHAPES.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith(("m4.", "bl3.", "al3.")) for k in sd)  # 4 stacks, 3 links


def test_the_file_loads_strictly_through_the_weights_override(fan_file, monkeypatch, tmp_path):
    monkeypatch.setenv(OVERRIDE, str(fan_file))
    path = wts.resolve(FAN)
    assert path == fan_file
    net = load_awing_fan(path)
    saved = torch.load(fan_file, weights_only=True)["state_dict"]
    assert all(torch.equal(net.state_dict()[k], v) for k, v in saved.items())
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    # a file missing a tensor, with an extra one or with a wrong shape is refused, naming it
    for name, change in (("missing", lambda sd: sd.pop("l3.bias")),
                         ("extra", lambda sd: sd.__setitem__("l4.weight", torch.zeros(1))),
                         ("shape", lambda sd: sd.__setitem__("al0.weight", torch.zeros(256, 98, 1, 1)))):
        sd = dict(saved)
        change(sd)
        bad = tmp_path / f"{name}.pth"
        torch.save({"state_dict": sd}, bad)
        with pytest.raises(WeightsIntegrityError, match=r"l3\.bias|l4\.weight|al0\.weight"):
            load_awing_fan(bad)
    # a file saved before PyTorch 0.4.1 (no BN batch counters) loads, as PyTorch loads it
    old = tmp_path / "old.pth"
    torch.save({"state_dict": {k: v for k, v in saved.items() if "num_batches_tracked" not in k}}, old)
    assert torch.equal(load_awing_fan(old).l3.weight, saved["l3.weight"])


def test_output_shapes_and_the_crop_coordinates(fan):
    crop = (np.random.default_rng(0).random((150, 120, 3)) * 255).astype(np.uint8)
    inp = fan_input(crop)
    assert tuple(inp.shape) == (1, 3, 256, 256) and inp.dtype == torch.float32
    assert 0.0 <= float(inp.min()) and float(inp.max()) <= 1.0
    lm = fan_landmarks(fan, crop)
    assert lm.shape == (98, 2) and lm.dtype == np.float64
    # heatmap decoding then scaling by the crop's size per axis (x: 120/64, y: 150/64)
    with torch.no_grad():
        heat = fan(inp)
    assert tuple(heat.shape) == (1, 99, 64, 64)  # 98 landmark maps + the boundary map
    np.testing.assert_array_equal(lm, decode_heatmaps(heat[0, :-1]) * np.array([120 / 64, 150 / 64]))
    with pytest.raises(ValueError, match="256"):
        fan(torch.zeros(1, 3, 128, 128))


def _gaussian(size: int, cx: float, cy: float, sigma: float = 1.5) -> np.ndarray:
    """A heatmap peaking at pixel-index coordinates (cx, cy)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def test_decoding_a_known_peak_to_the_quarter_pixel():
    # peak at (20.3, 37.8) in pixel indices: argmax pixel (20, 38); the right neighbour (0.7 away)
    # is above the left (1.3 away): +1/4; the upper neighbour row 37 (0.8) above row 39 (1.2): -1/4;
    # +1/2 for the corner origin -> (20.75, 38.25), i.e. (20.25, 37.75) in pixel indices
    heat = np.stack([_gaussian(64, 20.3, 37.8), _gaussian(64, 5.0, 9.0)])
    got = decode_heatmaps(heat)
    np.testing.assert_array_equal(got[0], [20.75, 38.25])
    # an exact pixel centre: equal neighbours, sign 0 -> the pixel's centre
    np.testing.assert_array_equal(got[1], [5.5, 9.5])
    # facexlib's image-wide rule: one landmark peaking in the last row makes every landmark's
    # lower neighbour the map's last pixel; landmark 0 (at (20.3, 37.2): normally +1/4 in y)
    # then compares that far-away pixel with its upper neighbour: -1/4
    alone = decode_heatmaps(np.stack([_gaussian(64, 20.3, 37.2), _gaussian(64, 5.0, 9.0)]))
    np.testing.assert_array_equal(alone[0], [20.75, 37.75])
    with_last_row = decode_heatmaps(np.stack([_gaussian(64, 20.3, 37.2), _gaussian(64, 30.0, 63.0)]))
    np.testing.assert_array_equal(with_last_row[0], [20.75, 37.25])
    # torch tensors decode the same
    np.testing.assert_array_equal(decode_heatmaps(torch.from_numpy(heat)), got)


def test_without_the_file_the_metric_is_na_with_the_fetch_command(demo_data_root):
    from faceblur_bench.engine import open_split
    from faceblur_bench.engine.scoring import setup_metrics

    assert wts.status([FAN])[0].path is None  # the genuine file is not on this machine
    with pytest.raises(WeightsMissingError) as err:
        metrics.get("lmd-fan")().setup(MetricContext("cpu"))
    assert "https://github.com/xinntao/facexlib/releases/download/v0.1.0/alignment_WFLW_4HG.pth" in err.value.hint
    (state,) = setup_metrics(["lmd-fan"], open_split("demo", demo_data_root), MetricContext("cpu"), strict=False)
    assert state.status == "unavailable"
    assert state.reason == ("weights missing: alignment_WFLW_4HG.pth not found "
                            "(`faceblur-bench weights fetch awing-fan` or --weights awing-fan=PATH)")
    from faceblur_bench.cli.weights import users_of

    assert "lmd-fan" in users_of(FAN)


def test_the_metric_on_a_file_in_the_released_format(fan_file, demo_data_root, monkeypatch):
    """Protocol properties that hold for any weights: a face against itself is 0.0; a restored
    image without a face, or a ground truth without one, is NaN; landmarks are found in the
    crop of the ground truth's box, on both sides."""
    from faceblur_bench.metrics.identity import mtcnn_detector
    from faceblur_bench.nets.align import main_face
    from test_landmark_distance import _batch

    monkeypatch.setenv(OVERRIDE, str(fan_file))
    ctx = MetricContext("cpu")
    metric = metrics.get("lmd-fan")()
    with wts.recording() as used:
        metric.setup(ctx)
    assert used == [(FAN, fan_file)]
    face, other = (read_image(p) for p in sorted((demo_data_root / "demo" / "sharp").glob("*.png"))[:2])
    gray = np.full_like(face, 128)
    got = metric.compute(_batch([face, gray, gray, other], [face, face, gray, face]))
    assert got[0] == 0.0
    assert np.isnan(got[1]) and np.isnan(got[2])
    # the other face, by hand: the ground truth's box, its crop cut from both images
    box = main_face(mtcnn_detector(ctx).detect(face)[0]).box
    h, w = face.shape[:2]
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    a = fan_landmarks(metric.net, np.ascontiguousarray(face[y0:y1, x0:x1]))
    b = fan_landmarks(metric.net, np.ascontiguousarray(other[y0:y1, x0:x1]))
    assert got[3] == pytest.approx(np.linalg.norm(a - b, axis=1).mean(), rel=1e-12)
