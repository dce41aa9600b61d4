"""Yun et al. losses (seed 001 eqs. 1–6) against hand-computed values; VGG-19 loading."""

from __future__ import annotations

import pytest
import torch

from faceblur_bench import weights
from faceblur_bench.errors import UnknownNameError, WeightsMissingError
from faceblur_bench.methods.yun import losses as L
from faceblur_bench.methods.yun.vgg19 import (
    LAYER_INDEX,
    VGG19Features,
    load_vgg19,
    save_random_vgg19,
)


def test_lsgan_terms_by_hand():
    real = torch.tensor([[[[1.0, 0.5], [0.0, 2.0]]]])  # (D(real) - 1)^2: 0, .25, 1, 1 -> mean .5625
    fake = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]])  # D(fake)^2: 0, 1, 1, .25 -> mean .5625
    assert L.lsgan_d_loss(real, fake).item() == pytest.approx(1.125)
    # generator side: (D(fake) - 1)^2 = 1, 0, 4, .25 -> mean 1.3125
    assert L.lsgan_g_loss(fake).item() == pytest.approx(1.3125)
    # the notebooks' joint D loss: 0.25 * (4 terms); staged first phase: D_g only
    l_real, l_fake = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)  # a perfect D_l: 0
    assert L.discriminators_loss(real, fake, l_real, l_fake).item() == pytest.approx(0.25 * 1.125)
    assert L.discriminators_loss(real, fake, None, None).item() == pytest.approx(0.5 * 1.125)


def test_pixel_loss_three_l1_terms_by_hand():
    z = torch.zeros(1, 3, 2, 2)
    blurred_hat = z + 0.5             # |0.5 - 0| -> 0.5
    sharp = torch.zeros(1, 3, 2, 2)
    sharp_hat = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)  # L1 mean .25
    mask = torch.tensor([0.0, 1.0, 1.0, 1.0]).view(1, 1, 2, 2)  # masks out the one wrong pixel
    assert L.pixel_loss(blurred_hat, z, sharp_hat, sharp, mask).item() == pytest.approx(0.5 + 0.25 + 0.0)
    mask_all = torch.ones(1, 1, 2, 2)
    assert L.pixel_loss(blurred_hat, z, sharp_hat, sharp, mask_all).item() == pytest.approx(1.0)


def test_vgg_loss_weighted_l1_by_hand():
    a = [torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]
    b = [torch.zeros(1, 2, 2, 2), torch.full((1, 1, 1, 1), 3.0)]
    assert L.vgg_loss(a, b, [1 / 32, 1.0]).item() == pytest.approx(1 / 32 + 3.0)
    with pytest.raises(ValueError, match="one weight per VGG layer"):
        L.vgg_loss(a, b, [1.0])


def test_total_generator_loss_eq6():
    g_fake, l_fake = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0)  # 1 and 1
    pix, vgg = torch.tensor(0.01), torch.tensor(0.2)
    assert L.generator_loss(g_fake, l_fake, pix, vgg).item() == pytest.approx(1 + 1 + 100 * 0.01 + 10 * 0.2)
    assert L.generator_loss(g_fake, None, pix, vgg).item() == pytest.approx(1 + 1 + 2)


def test_vgg19_layer_indices_match_torchvision():
    from torchvision.models import vgg19

    with torch.device("meta"):
        feats = vgg19().features
    assert len(feats) == LAYER_INDEX["pool5"] + 1
    for name, i in LAYER_INDEX.items():
        kind = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}[name[:4]]
        assert isinstance(feats[i], kind), name
    with pytest.raises(UnknownNameError, match="relu2_1"):
        VGG19Features(["relu2_l"])


def test_vgg19_loads_a_format_faithful_file_through_the_registry(tmp_path, monkeypatch):
    from torchvision.models.vgg import cfgs, make_layers

    path = save_random_vgg19(tmp_path / "vgg19-dcbb9e9d.pth", seed=3, upto="relu3_1")
    overrides = {"vgg19": str(path)}
    assert weights.resolve("vgg19", overrides, verify=False) == path
    layers = ["relu1_1", "pool1", "relu2_1", "relu3_1"]
    # the real file's name carries a sha256 prefix: a random file is refused by the check
    from faceblur_bench.errors import WeightsIntegrityError

    with pytest.raises(WeightsIntegrityError, match="dcbb9e9d"):
        load_vgg19(layers, overrides=overrides)
    monkeypatch.setattr(weights, "check", lambda wf, p: None)
    net = load_vgg19(layers, overrides=overrides)
    ref = make_layers(cfgs["E"])  # torchvision's own VGG-19 feature stack
    sd = torch.load(path, weights_only=True)
    ref.load_state_dict({k.removeprefix("features."): v for k, v in sd.items() if k.startswith("features.")})
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out = net(x)
    assert [tuple(t.shape) for t in out] == [(1, 64, 32, 32), (1, 64, 16, 16), (1, 128, 16, 16),
                                             (1, 256, 8, 8)]
    with torch.no_grad():
        want = ref[: LAYER_INDEX["relu3_1"] + 1](x)
    assert torch.allclose(out[-1], want, atol=1e-5)
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training


def test_vgg19_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FACEBLUR_WEIGHTS", raising=False)
    with pytest.raises(WeightsMissingError, match="vgg19-dcbb9e9d.pth"):
        load_vgg19(["relu1_1"])


def test_vgg19_wrong_file_is_named(tmp_path):
    p = tmp_path / "x.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, p)
    with pytest.raises(WeightsMissingError, match="not a torchvision VGG-19"):
        VGG19Features(["relu1_1"]).load_torchvision(p)
