"""Shen et al. networks: shapes, parameter counts per variant, residual stream, BN moments."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceblur_bench.errors import UnknownNameError
from faceblur_bench.methods.shen import presets
from faceblur_bench.methods.shen.networks import (
    DiscriminatorConfig,
    ParsingConfig,
    ParsingNet,
    ResBlock,
    ShenConfig,
    ShenDiscriminator,
    ShenNet,
    count_discriminator,
    count_parameters,
)

TINY_P = ParsingConfig(encoder_widths=(4, 4, 4, 4, 4, 4), head_width=4)


def tiny(**kw) -> ShenConfig:
    return ShenConfig.from_dict({**ShenConfig().to_dict(), "width": 8, "res_blocks": 1,
                                 "first_kernel": 3, "kernel": 3, "parsing": TINY_P.to_dict(), **kw})


def test_deblurring_counts_match_the_stated_widths():
    # analytic: per scale 18 convs at 64 ch, 11x11 first layer, 4x4 3->3 ConvT between scales
    body = 2 * (25 * 64 * 64 + 64) + 12 * (25 * 64 * 64 + 64) + 2 * (25 * 64 * 64 + 64) \
        + (25 * 64 * 3 + 3)
    first = lambda c: 121 * c * 64 + 64
    convt = 4 * 4 * 3 * 3 + 3
    c = count_parameters(ShenConfig())
    assert c["coarse"] == 2 * body + first(3) + first(6) + convt == 3_358_425
    assert c["fine"] == 2 * body + first(17) + first(20) + convt == 3_575_257
    cv = count_parameters(presets.variant_config("cvpr2018"))
    assert cv["coarse"] == 0
    assert cv["fine"] == 2 * (body - 2 * (25 * 64 * 64 + 64)) + first(14) + first(17) + convt
    assert cv["fine"] == 3_118_937
    # default P widths are chosen so the CVPR 2018 total is Table 12's 14.8 M
    assert round(cv["total"] / 1e6, 1) == 14.8


def test_table7_deltas_are_the_fine_net_first_layers():
    # Table 7: 5/9/11/13 -> 14.56/14.70/14.80/14.92 M; our G_f first layers (sum Cin = 37):
    fine = {k: count_parameters(presets.variant_config(f"k{k}" if k != 11 else "ijcv"))["fine"]
            for k in (5, 9, 11, 13)}
    assert fine[11] - fine[5] == 37 * 64 * (121 - 25)
    assert fine[13] - fine[11] == 37 * 64 * (169 - 121)


def test_cascade_and_sharing_counts():
    one = count_parameters(presets.variant_config("ijcv"))
    two = count_parameters(presets.variant_config("n2"))
    shared = count_parameters(presets.variant_config("n3-shared"))
    assert two["fine"] == 2 * one["fine"]
    assert shared == one


@pytest.mark.parametrize("variant", ["ijcv", "cvpr2018", "n2", "n2-shared"])
def test_shapes_per_variant(variant):
    torch.manual_seed(0)
    cfg = ShenConfig.from_dict({**tiny().to_dict(), **presets.variant_overrides(variant),
                                "res_blocks": 1})
    net = ShenNet(cfg).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = net(x)
    assert out.y.shape == (2, 3, 64, 64)
    assert out.logits.shape == (2, 11, 64, 64)
    assert torch.allclose(out.probs.sum(1), torch.ones(2, 64, 64), atol=1e-5)
    n = cfg.fine_nets
    assert len(out.fine) == n and all(t.shape == (2, 3, 32, 32) for t in out.fine_half)
    if variant == "cvpr2018":
        assert out.coarse is None and net.coarse is None
    else:
        assert out.coarse.shape == (2, 3, 64, 64) and out.coarse_half.shape == (2, 3, 32, 32)
    if variant.endswith("shared"):
        assert len(net.fine.nets) == 1 and not torch.equal(out.fine[0], out.fine[1])


def test_fine_net_sees_the_parsing_map():
    """Changing P's weights changes y (the map enters G_f) but not y_c."""
    torch.manual_seed(0)
    net = ShenNet(tiny()).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = net(x)
        net.parsing.classifier.bias.add_(torch.arange(11.0))
        b = net(x)
    assert torch.equal(a.coarse, b.coarse)
    assert not torch.allclose(a.y, b.y)


def test_residual_stream_carries_the_pre_relu_sum():
    torch.manual_seed(0)
    blk = ResBlock(4, 3)
    s = torch.randn(1, 4, 8, 8)  # a pre-ReLU sum with negative values
    want = blk.conv2(F.relu(blk.conv1(F.relu(s)))) + s
    assert torch.equal(blk(s), want)
    assert (want < 0).any()  # the skip keeps negative values (no ReLU on the stream)


def test_bn_moments_option():
    torch.manual_seed(0)
    p = ParsingNet(TINY_P, 11)
    for m in p.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    p.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        stored = p(x)
        p.bn_moments = "per_image"
        per_image = p(x)
        one = p(x[:1])
    assert not torch.allclose(stored, per_image)
    assert torch.allclose(per_image[:1], one, atol=1e-5)  # no statistics shared across the batch
    # per-image moments = instance normalisation with the BN affine parameters
    conv, bn = p.encoder[0]["conv"], p.encoder[0]["bn"]
    h = conv(x)
    mu, var = h.mean((2, 3), keepdim=True), h.var((2, 3), unbiased=False, keepdim=True)
    ref = (h - mu) / torch.sqrt(var + 1e-4) * bn.weight[:, None, None] + bn.bias[:, None, None]
    assert torch.allclose(bn(h), ref, atol=1e-5)
    with pytest.raises(ValueError, match="bn_moments"):
        p.bn_moments = "running"


def test_discriminator_and_errors():
    d = ShenDiscriminator(DiscriminatorConfig(widths=(4, 4, 4, 4, 4, 8), image_size=64))
    assert d(torch.rand(3, 3, 64, 64)).shape == (3,)
    with pytest.raises(ValueError, match="64, 64"):
        d(torch.rand(1, 3, 128, 128))
    assert count_discriminator() == sum(p.numel() for p in ShenDiscriminator().parameters())
    with pytest.raises(ValueError, match="multiples of 64"):
        ShenNet(tiny())(torch.rand(1, 3, 96, 96))
    with pytest.raises(UnknownNameError, match="did you mean 'n2'"):
        presets.variant_overrides("n22")
    with pytest.raises(ValueError, match="unknown ShenConfig keys"):
        ShenConfig.from_dict({"widht": 3})


def test_config_round_trip():
    cfg = presets.variant_config("n3-shared", num_classes=14)
    assert ShenConfig.from_dict(cfg.to_dict()) == cfg


def test_bf16_autocast_forward():
    """The antialiased down-sampling runs in float32 under bf16 autocast (no bf16 kernel)."""
    torch.manual_seed(0)
    net = ShenNet(tiny()).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.rand(1, 3, 64, 64))
    assert out.y.shape == (1, 3, 64, 64) and torch.isfinite(out.y.float()).all()


@pytest.mark.parametrize("name", ["shen", "shen-cvpr18", "shen-n2", "shen-n3"])
def test_registered_methods_untrained_contract(name):
    from faceblur_bench.registry import methods

    m = methods.get(name)()
    assert m.num_parameters() == count_parameters(m.paper_config())["total"] > 10_000_000
    m.init_untrained("cpu", tiny=True)
    assert m.num_parameters() < 100_000  # the contract's small net
    y = m.restore(torch.rand(2, 3, 64, 64))
    assert y.shape == (2, 3, 64, 64) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    with torch.device("meta"):  # the untrained paper-size net (timing), built without memory
        m.init_untrained("meta")
    assert m.num_parameters() == count_parameters(m.paper_config())["total"]
