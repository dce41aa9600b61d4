"""DFPGnet: generator shapes and parameter count, feature discriminator, VGGFace loading, losses by hand."""

from __future__ import annotations

import math

import pytest
import torch

from faceblur_bench.errors import UnknownNameError, UsageError, WeightsMissingError
from faceblur_bench.methods.dfpg import losses as L
from faceblur_bench.methods.dfpg import presets
from faceblur_bench.methods.dfpg.discriminator import (
    ChannelAttentionFeatureDiscriminator,
    FeatureDiscriminatorConfig,
)
from faceblur_bench.methods.dfpg.model import (
    DFPGGenerator,
    GeneratorConfig,
    SelfFeatureTransform,
    SpatialFeatureTransform,
    count_parameters,
)
from faceblur_bench.methods.dfpg.vggface import VGGFaceFeatures, load_vggface, save_random_vggface16
from faceblur_bench.registry import methods

TINY = dict(widths=(8, 16, 32), base_blocks=1, prior_blocks=1, se_reduction=4)


def test_paper_generator_parameter_count_within_one_percent_of_44_7M():
    n = count_parameters(GeneratorConfig())
    assert abs(n - 44.7e6) / 44.7e6 < 0.01, n
    # the registered methods report the same count without loading anything
    assert methods.get("dfpg")().num_parameters() == n
    assert methods.get("sappgan")().num_parameters() == n
    # and the meta-device count equals a real build of a small configuration
    cfg = GeneratorConfig(**TINY)
    assert count_parameters(cfg) == sum(p.numel() for p in DFPGGenerator(cfg).parameters())


def test_generator_output_and_prior_shapes():
    torch.manual_seed(0)
    g = DFPGGenerator(GeneratorConfig(**TINY))
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    y, priors = g(x)
    assert y.shape == x.shape
    assert y.abs().max() < 1.0  # tanh output
    assert [tuple(p.shape) for p in priors] == [(2, 64, 32, 48), (2, 128, 16, 24), (2, 256, 8, 12)]
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 3, 30, 32))


def test_ablation_generators_differ_as_table_4_says():
    b1 = DFPGGenerator(GeneratorConfig(**TINY, prior_stream=False))
    b3 = DFPGGenerator(GeneratorConfig(**TINY, feature_transform=False))
    b4 = DFPGGenerator(GeneratorConfig(**TINY))
    assert b1(torch.zeros(1, 3, 16, 16))[1] == ()
    kinds = lambda m: {type(x) for x in m.modules()}
    assert SelfFeatureTransform not in kinds(b3) and SpatialFeatureTransform not in kinds(b3)
    assert SelfFeatureTransform in kinds(b4) and SpatialFeatureTransform in kinds(b4)
    n1, n3, n4 = (sum(p.numel() for p in m.parameters()) for m in (b1, b3, b4))
    assert n1 < n3 < n4


def test_generator_config_roundtrip_and_unknown_key():
    cfg = GeneratorConfig(**TINY)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown generator config keys"):
        GeneratorConfig.from_dict({"width": [1, 2, 3]})


def test_feature_discriminator_shapes_and_channel_attention():
    torch.manual_seed(0)
    priors = [torch.rand(2, 64, 16, 16), torch.rand(2, 128, 8, 8), torch.rand(2, 256, 4, 4)]
    d = ChannelAttentionFeatureDiscriminator(FeatureDiscriminatorConfig(width=4, se_reduction=8))
    assert d(priors).shape == (2,)
    att = d.attend(0, priors[0])
    ratio = att / priors[0]
    # CA rescales every channel by one factor in (0, 1), the same at all positions
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-6)
    assert (ratio > 0).all() and (ratio < 1).all()
    plain = ChannelAttentionFeatureDiscriminator(FeatureDiscriminatorConfig(width=4, channel_attention=False))
    assert torch.equal(plain.attend(1, priors[1]), priors[1])


def test_prior_loss_by_hand_with_and_without_attention():
    # one image, 2 channels, 1x2 positions per level; the same numbers at all three levels
    p = torch.tensor([[[[3.0, 0.0]], [[4.0, 1.0]]]])  # positions: (3,4) and (0,1)
    t = torch.tensor([[[[4.0, 2.0]], [[3.0, 0.0]]]])  # positions: (4,3) and (2,0)
    # normalised: (0.6,0.8) vs (0.8,0.6) -> 0.04+0.04 = 0.08 ; (0,1) vs (1,0) -> 2
    per_level_mean = (0.08 + 2.0) / 2
    got = L.prior_loss([p, p, p], [t, t, t])
    assert got.item() == pytest.approx(3 * per_level_mean, rel=1e-6)
    assert L.prior_loss([p, p, p], [t, t, t], reduction="sum").item() == pytest.approx(3 * 2.08, rel=1e-6)
    # attention weights (2, 1) per channel: p' = (6,4),(0,1) ; t' = (8,3),(4,0)
    attend = lambda i, x: x * torch.tensor([2.0, 1.0]).view(1, 2, 1, 1)
    a = torch.tensor([6.0, 4.0]) / math.hypot(6, 4)
    b = torch.tensor([8.0, 3.0]) / math.hypot(8, 3)
    d1 = float(((a - b) ** 2).sum())
    d2 = 2.0  # (0,1) vs (1,0)
    assert L.prior_loss([p], [t], attend).item() == pytest.approx((d1 + d2) / 2, rel=1e-6)
    with pytest.raises(ValueError):
        L.prior_loss([p], [t[..., :1]])


def test_adversarial_and_pixel_losses_by_hand():
    real = torch.tensor([0.0, math.log(3.0)])
    fake = torch.tensor([math.log(3.0), 0.0])
    # -log sigmoid(0) = ln2 ; -log sigmoid(ln3) = ln(4/3) ; -log(1 - sigmoid(ln3)) = ln4
    want_d = (math.log(2) + math.log(4 / 3)) / 2 + (math.log(4) + math.log(2)) / 2
    assert L.discriminator_loss(real, fake).item() == pytest.approx(want_d, rel=1e-6)
    assert L.generator_adv_loss(fake).item() == pytest.approx((math.log(4 / 3) + math.log(2)) / 2, rel=1e-6)
    a, b = torch.tensor([0.0, 1.0, -1.0, 0.5]), torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert L.pixel_loss(a, b).item() == pytest.approx((1 + 0 + 2 + 0.5) / 4)
    fa, fb = [torch.ones(1, 2, 1, 1)], [torch.zeros(1, 2, 1, 1)]
    assert L.feature_loss(fa * 2, fb * 2).item() == pytest.approx(2.0)


def test_vggface_features_load_through_registry(tmp_path, monkeypatch):
    from torchvision.models import vgg16

    path = save_random_vggface16(tmp_path / "VGGFace16.pth", seed=3)
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(tmp_path))
    net = load_vggface()
    full = vgg16(num_classes=2622)
    full.load_state_dict(torch.load(path, weights_only=True)["state_dict"])  # same keys/shapes as the release
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    f1, f2, f3 = net(x)
    assert torch.allclose(f1, full.features[:4](x), atol=1e-5)
    assert torch.allclose(f3, full.features[:16](x), atol=1e-4)
    assert (f1 >= 0).all() and f2.shape == (1, 128, 8, 8)
    assert not any(p.requires_grad for p in net.parameters())
    pre = VGGFaceFeatures(("conv1_2",)).load_vggface16(path)
    assert (pre(x)[0] < 0).any()  # pre-ReLU tap of the released code is available by name


def test_vggface_missing_or_wrong_file_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="VGGFace16.pth"):
        load_vggface()
    torch.save({"state_dict": {"features.0.weight": torch.zeros(3)}}, tmp_path / "VGGFace16.pth")
    with pytest.raises(WeightsMissingError, match="not a torchvision VGG-16"):
        load_vggface()


def test_dfpg_presets_match_table_4():
    flags = {}
    for name in ("B1", "B2", "B3", "B4", "B5", "B6"):
        p = presets.preset(name)
        flags[name] = (p["model"]["generator"]["prior_stream"], p["model"]["generator"]["feature_transform"],
                       p["loss"]["perceptual"], p["loss"]["adversarial"], p["model"]["discriminator"]["channel_attention"])
    assert flags["B1"] == (False, False, False, False, False)
    assert flags["B2"][2] is True
    assert flags["B3"][:2] == (True, False)
    assert flags["B4"][:2] == (True, True) and flags["B4"][3] is False
    assert flags["B5"][3:] == (True, False)
    assert flags["B6"][3:] == (True, True)
    assert presets.preset("b6") == presets.preset("B6")
    with pytest.raises(UnknownNameError, match="B6"):
        presets.preset("B7")


def test_method_refuses_to_run_without_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FACEBLUR_CHECKPOINTS", raising=False)
    m = methods.get("dfpg")()
    with pytest.raises(UsageError, match="no trained weights"):
        m.restore(torch.zeros(1, 3, 8, 8))
    with pytest.raises(WeightsMissingError) as e:
        m.load(None, "cpu")
    assert str(tmp_path / "faceblur_bench" / "checkpoints" / "dfpg.pth") in str(e.value)
    with pytest.raises(UsageError, match="not found"):
        m.load(tmp_path / "nope.pth", "cpu")
