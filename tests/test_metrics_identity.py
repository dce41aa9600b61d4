"""d_VGG, d_ARC and ArcFace metrics against independent computations.

All weight files are format-faithful random files (same architecture, same keys, same file
names) placed where the real lookup finds them; no number here is a real metric value.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from faceblur_bench.data.base import Sample
from faceblur_bench.errors import WeightsIntegrityError, WeightsMissingError
from faceblur_bench.metrics.base import Batch, MetricContext


# -- helpers shared with the other identity test files ------------------------------------------
def face_crop(size: int = 128) -> np.ndarray:
    """uint8 (size, size, 3) RGB crop around the face of skimage's astronaut."""
    import skimage.data

    a = skimage.data.astronaut()
    return np.asarray(Image.fromarray(a[30:210, 135:315]).resize((size, size), Image.BICUBIC))


def group_photo() -> np.ndarray:
    """insightface's package photo t1.jpg (six faces), uint8 RGB."""
    import insightface

    p = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    return np.asarray(Image.open(p).convert("RGB"))


def to_batch(restored: list[np.ndarray], reference: list[np.ndarray] | None,
             metas: list[dict] | None = None) -> Batch:
    n = len(restored)
    metas = metas or [{} for _ in range(n)]
    samples = [Sample(id=f"s{i}", blurred=Path(f"/x/{i}.png"), sharp=Path(f"/x/gt{i}.png"), meta=metas[i])
               for i in range(n)]
    r = torch.from_numpy(np.stack(restored)).permute(0, 3, 1, 2).contiguous()
    g = None if reference is None else torch.from_numpy(np.stack(reference)).permute(0, 3, 1, 2).contiguous()
    return Batch(samples, r, g)


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Give BN layers non-trivial running statistics and affine parameters (eval mode matters)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
        if isinstance(m, torch.nn.PReLU):
            m.weight.data.uniform_(0.05, 0.4, generator=g)


@pytest.fixture()
def weight_dirs(tmp_path, monkeypatch):
    """Fresh cache roots for this test (the real lookup code runs against them)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("INSIGHTFACE_HOME", raising=False)
    monkeypatch.delenv("FACEBLUR_WEIGHTS", raising=False)
    faceblur = tmp_path / "cache" / "faceblur_bench" / "weights"
    faceblur.mkdir(parents=True)
    return {"faceblur": faceblur, "insightface": tmp_path / "home" / ".insightface"}


def make_arcface_onnx(root: Path, seed: int = 0) -> Path:
    """Random IResNet exported like buffalo_l's recogniser, at <root>/models/buffalo_l/w600k_r50.onnx."""
    from faceblur_bench.nets.iresnet import IResNet, export_onnx

    torch.manual_seed(seed)
    net = IResNet(layers=(1, 1, 1, 1), widths=(16, 16, 32, 32))
    randomise_bn(net, seed)
    return export_onnx(net, root / "models" / "buffalo_l" / "w600k_r50.onnx")


# -- d_VGG ----------------------------------------------------------------------------------------
def _save_vggface16(dirpath: Path, num_classes: int = 2622, seed: int = 0) -> dict:
    """VGGFace16.pth layout: ``{'state_dict': torchvision vgg16 keys}`` with ``num_classes`` outputs.

    The convolutional weights are random; the (large, unused by d_VGG) classifier matrices are
    stride-0 expansions of one random value each, so the file has every key and shape of the
    published one but is ~60 MB instead of ~540 MB.
    """
    from torchvision.models import vgg16

    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        keys = vgg16(weights=None, num_classes=num_classes).state_dict()
    sd = {}
    for k, v in keys.items():
        shape = tuple(v.shape)
        if k.startswith("classifier"):
            sd[k] = torch.randn(1, generator=g).expand(shape)
        elif k.endswith("weight"):  # He-scaled so activations stay finite through 13 convs
            sd[k] = torch.randn(shape, generator=g) * (2.0 / (shape[1] * 9)) ** 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.01
    torch.save({"state_dict": sd}, dirpath / "VGGFace16.pth")
    return sd


def test_dvgg_equals_torchvision_vgg16_pool5_mse(weight_dirs):
    from torchvision.models import vgg16

    from faceblur_bench.metrics.identity import DVGG

    sd = _save_vggface16(weight_dirs["faceblur"])
    rng = np.random.default_rng(1)
    gt = [face_crop(64), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    out = [np.clip(g.astype(int) + rng.integers(-40, 41, g.shape), 0, 255).astype(np.uint8) for g in gt]
    m = DVGG()
    m.setup(MetricContext("cpu"))
    got = m.compute(to_batch(out, gt))

    with torch.device("meta"):
        ref_net = vgg16(weights=None, num_classes=2622)
    ref_net.load_state_dict(sd, assign=True)
    feats = ref_net.eval().features[:31]
    expect = []
    for o, g in zip(out, gt):
        x = torch.from_numpy(o).permute(2, 0, 1)[None].float()  # raw 0-255, no mean subtraction
        y = torch.from_numpy(g).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            expect.append(F.mse_loss(feats(x), feats(y)).item())
    assert got.dtype == np.float64 and got.shape == (2,)
    np.testing.assert_allclose(got, expect, rtol=1e-4)
    assert np.all(got > 0)
    # identical images: zero distance
    assert m.compute(to_batch(gt, gt)).max() == 0.0


def test_dvgg_refuses_an_imagenet_vgg16_under_the_same_name(weight_dirs):
    from faceblur_bench.metrics.identity import DVGG

    _save_vggface16(weight_dirs["faceblur"], num_classes=1000)
    with pytest.raises(WeightsIntegrityError,
                       match=r"'classifier\.6\.weight' has shape \(1000, 4096\), VGGFace16 expects \(2622, 4096\)"):
        DVGG().setup(MetricContext("cpu"))


def test_dvgg_missing_weights_names_file_and_fix(weight_dirs):
    from faceblur_bench.metrics.identity import DVGG

    with pytest.raises(WeightsMissingError) as ei:
        DVGG().setup(MetricContext("cpu"))
    assert "VGGFace16.pth" in str(ei.value) and "Google Drive" in (ei.value.hint or "")


def test_dvgg_weight_override_path(tmp_path, weight_dirs):
    from faceblur_bench.metrics.identity import DVGG

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _save_vggface16(elsewhere)
    os.rename(elsewhere / "VGGFace16.pth", elsewhere / "my_vggface.pth")
    m = DVGG()
    m.setup(MetricContext("cpu", weights_overrides={"vggface16": str(elsewhere / "my_vggface.pth")}))
    img = face_crop(64)
    assert m.compute(to_batch([img], [img]))[0] == 0.0


# -- d_ARC ----------------------------------------------------------------------------------------
def _reference_resnet_arcface(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Functional forward of GFPGAN's ResNetArcFace-18 (eval mode), written from its description."""
    def bn(t, p):
        return F.batch_norm(t, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                            sd[p + ".bias"], training=False, eps=1e-5)

    def conv(t, p, stride=1, pad=1):
        return F.conv2d(t, sd[p + ".weight"], None, stride, pad)

    x = F.max_pool2d(F.prelu(bn(conv(x, "conv1"), "bn1"), sd["prelu.weight"]), 2, 2)
    for li in range(1, 5):
        for bi in range(2):
            p = f"layer{li}.{bi}"
            stride = 2 if (li > 1 and bi == 0) else 1
            a = sd[p + ".prelu.weight"]
            y = F.prelu(bn(conv(bn(x, p + ".bn0"), p + ".conv1"), p + ".bn1"), a)
            y = bn(conv(y, p + ".conv2", stride), p + ".bn2")
            skip = x
            if p + ".downsample.0.weight" in sd:
                skip = bn(F.conv2d(x, sd[p + ".downsample.0.weight"], None, stride), p + ".downsample.1")
            x = F.prelu(y + skip, a)
    x = bn(x, "bn4").flatten(1)
    x = F.linear(x, sd["fc5.weight"], sd["fc5.bias"])
    return F.batch_norm(x, sd["bn5.running_mean"], sd["bn5.running_var"], sd["bn5.weight"], sd["bn5.bias"],
                        training=False, eps=1e-5)


def test_darc_equals_independent_resnetarcface_forward(weight_dirs):
    from faceblur_bench.metrics.identity import DARC
    from faceblur_bench.nets.arcface_resnet import ResNetArcFace18

    torch.manual_seed(3)
    net = ResNetArcFace18()
    randomise_bn(net, 3)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    # the published file is a DataParallel state dict
    torch.save({"module." + k: v for k, v in sd.items()}, weight_dirs["faceblur"] / "arcface_resnet18.pth")
    assert sd["fc5.weight"].shape == (512, 512 * 8 * 8) and "layer1.0.bn0.running_mean" in sd
    assert "layer1.0.downsample.0.weight" not in sd and "layer2.0.downsample.0.weight" in sd
    assert not any(".se." in k for k in sd)

    rng = np.random.default_rng(4)
    gt = [face_crop(96), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)]
    out = [np.clip(g.astype(int) + rng.integers(-30, 31, g.shape), 0, 255).astype(np.uint8) for g in gt]
    m = DARC()
    m.setup(MetricContext("cpu"))
    batch = to_batch(out, gt)
    got = m.compute(batch)

    def prep(img):  # gray 0.2989/0.587/0.114 on 0-255, bilinear to 128
        t = torch.from_numpy(img).double()
        g = (0.2989 * t[..., 0] + 0.587 * t[..., 1] + 0.114 * t[..., 2])[None, None].float()
        return F.interpolate(g, (128, 128), mode="bilinear", align_corners=False)

    with torch.no_grad():
        expect = [F.mse_loss(_reference_resnet_arcface(sd, prep(o)), _reference_resnet_arcface(sd, prep(g))).item()
                  for o, g in zip(out, gt)]
    np.testing.assert_allclose(got, expect, rtol=2e-4)
    assert np.all(got > 0)
    # the raw embeddings are memoised for other metrics (verification, ...)
    assert any(k[0] == "arcface-resnet18" and k[2] == "restored" for k in batch.cache)


def test_darc_refuses_file_with_se_blocks(weight_dirs):
    from faceblur_bench.metrics.identity import DARC
    from faceblur_bench.nets.arcface_resnet import ResNetArcFace18

    sd = ResNetArcFace18().state_dict()
    sd["layer1.0.se.fc.0.weight"] = torch.zeros(4, 64)
    torch.save({"module." + k: v for k, v in sd.items()}, weight_dirs["faceblur"] / "arcface_resnet18.pth")
    with pytest.raises(WeightsIntegrityError, match="unexpected keys"):
        DARC().setup(MetricContext("cpu"))


# -- ArcFace (standard) -----------------------------------------------------------------------------
def test_arcface_matches_insightface_arcfaceonnx_directly(weight_dirs):
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.utils import face_align

    from faceblur_bench.metrics.identity import ArcFaceDistance

    onnx_path = make_arcface_onnx(weight_dirs["insightface"])
    gt = face_crop(128)
    rng = np.random.default_rng(5)
    noisy = np.clip(gt.astype(int) + rng.integers(-25, 26, gt.shape), 0, 255).astype(np.uint8)
    destroyed = np.full_like(gt, 128)  # a restoration that removed the face
    blank = np.full_like(gt, 90)

    m = ArcFaceDistance()
    ctx = MetricContext("cpu")
    m.setup(ctx)
    got = m.compute(to_batch([noisy, destroyed, gt], [gt, gt, blank]))

    # independent: facenet-pytorch MTCNN landmarks of the ground truth, insightface norm_crop and
    # ArcFaceONNX.get_feat (BGR), cosine
    from facenet_pytorch import MTCNN

    det = MTCNN(keep_all=True, thresholds=[0.6, 0.7, 0.8], factor=0.707, min_face_size=20)
    _, _, pts = det.detect(torch.from_numpy(gt.copy())[None], landmarks=True)
    lm = np.asarray(pts[0].tolist(), dtype=np.float32)[0]
    rec = ArcFaceONNX(model_file=str(onnx_path))

    def emb(img):
        crop = face_align.norm_crop(img, landmark=lm, image_size=112)
        return rec.get_feat(crop[:, :, ::-1].copy()).ravel().astype(np.float64)

    def dist(a, b):
        return 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))

    e_gt = emb(gt)
    np.testing.assert_allclose(got[0], dist(emb(noisy), e_gt), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[1], dist(emb(destroyed), e_gt), rtol=1e-4, atol=1e-6)
    assert np.isfinite(got[1]), "a destroyed face must still be scored (ground-truth alignment)"
    assert np.isnan(got[2]), "no face in the ground truth -> NaN (counted by the engine)"
    assert 0 < got[0] < 2


def test_arcface_lookup_follows_insightface_home_and_reports_missing(tmp_path, weight_dirs, monkeypatch):
    from faceblur_bench.metrics.identity import ArcFaceDistance

    with pytest.raises(WeightsMissingError) as ei:
        ArcFaceDistance().setup(MetricContext("cpu"))
    assert "w600k_r50.onnx" in str(ei.value)
    assert str(weight_dirs["insightface"] / "models" / "buffalo_l") in str(ei.value)
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "ifhome"))
    make_arcface_onnx(tmp_path / "ifhome")
    m = ArcFaceDistance()
    m.setup(MetricContext("cpu"))
    assert m.embedder.path == tmp_path / "ifhome" / "models" / "buffalo_l" / "w600k_r50.onnx"


def test_arcface_rejects_non_recognition_onnx(tmp_path, weight_dirs):
    """An ONNX file with a 96x96 input (an insightface attribute model shape) is refused."""
    from faceblur_bench.metrics.identity import ArcFaceDistance

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    path = tmp_path / "attr.onnx"
    torch.onnx.export(net.eval(), (torch.zeros(1, 3, 96, 96),), str(path), dynamo=False,
                      input_names=["data"], dynamic_axes={"data": {0: "n"}})
    with pytest.raises(WeightsIntegrityError, match="not an ArcFace recognition model"):
        ArcFaceDistance().setup(MetricContext("cpu", weights_overrides={"arcface-r50": str(path)}))


def test_shared_networks_and_detections_built_once(weight_dirs):
    from faceblur_bench.metrics.identity import ArcFaceDistance, batch_faces

    make_arcface_onnx(weight_dirs["insightface"])
    ctx = MetricContext("cpu")
    a, b = ArcFaceDistance(), ArcFaceDistance()
    a.setup(ctx)
    b.setup(ctx)
    assert a.embedder is b.embedder and a.detector is b.detector
    gt = face_crop(128)
    batch = to_batch([gt], [gt])
    va, vb = a.compute(batch), b.compute(batch)
    assert va[0] == vb[0] and abs(va[0]) < 1e-5  # identical images
    faces = batch_faces(batch, "reference", a.detector)
    assert batch_faces(batch, "reference", a.detector) is faces and len(faces[0]) == 1


def test_faceless_batch_gives_nan_rows_of_the_model_width(weight_dirs):
    from faceblur_bench.metrics.identity import ArcFaceDistance, arcface_pair_embeddings

    make_arcface_onnx(weight_dirs["insightface"])
    m = ArcFaceDistance()
    ctx = MetricContext("cpu")
    m.setup(ctx)
    blank = np.full((128, 128, 3), 77, np.uint8)
    batch = to_batch([blank, blank], [blank, blank])
    assert np.isnan(m.compute(batch)).all()
    e = arcface_pair_embeddings(batch, ctx, m.embedder, m.detector)
    assert e["restored"].shape == (2, 512) and not e["face"].any()


def test_damaged_weight_file_is_refused_with_its_path(weight_dirs):
    from faceblur_bench.metrics.identity import DARC

    bad = weight_dirs["faceblur"] / "arcface_resnet18.pth"
    bad.write_bytes(b"<html>Google Drive virus scan warning</html>")
    with pytest.raises(WeightsIntegrityError, match="cannot read weight file .*arcface_resnet18.pth"):
        DARC().setup(MetricContext("cpu"))
    torch.save({"module.conv1.weight": [1, 2, 3]}, bad)
    with pytest.raises(WeightsIntegrityError, match="does not hold a tensor state dict"):
        DARC().setup(MetricContext("cpu"))
