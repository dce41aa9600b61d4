"""CFMD-GAN generator and discriminator: shapes, parameter counts, the moment control factor u."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceblur_bench.errors import UnknownNameError, UsageError
from faceblur_bench.methods.cfmd import presets
from faceblur_bench.methods.cfmd.discriminator import CFMDDiscriminator, DiscriminatorConfig
from faceblur_bench.methods.cfmd.networks import (
    CADC,
    CFMDGenerator,
    GeneratorConfig,
    count_parameters,
    u_map,
)

TINY = GeneratorConfig(base_channels=8, num_res=1)


def randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """He-normal weights and N(0, 0.1) biases everywhere (offsets/mask convs small): PyTorch's
    default init shrinks the u signal through the 8 mapping layers to ~1e-6 at the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                std = 0.01 if ("offset_conv" in name or "modulator_conv" in name) else (2.0 / fan_in) ** 0.5
                p.copy_(torch.randn(p.shape, generator=g) * std)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net


def _gen(cfg: GeneratorConfig = TINY, seed: int = 0) -> CFMDGenerator:
    return randomize(CFMDGenerator(cfg), seed).eval()


def test_released_parameter_counts():
    # METHODS.md §A.1: analytic count from the released layer list
    assert count_parameters() == 9_246_323
    with torch.device("meta"):
        d = CFMDDiscriminator()
    assert sum(p.numel() for p in d.parameters()) == 40_296_448
    # per-block counts at the three widths (22.5 C² + 244 C + 27)
    with torch.device("meta"):
        g = CFMDGenerator()
    per_block = [sum(p.numel() for p in g.Encoder[i].layers[0].parameters()) for i in range(3)]
    assert per_block == [30_875, 107_803, 399_899]
    assert sum(p.numel() for p in g.mapping_net.parameters()) == 22_240


def test_generator_output_shapes_and_residuals():
    g = _gen()
    x = torch.rand(2, 3, 32, 48)
    outs = g(x, 0.5)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 8, 12), (2, 3, 16, 24), (2, 3, 32, 48)]
    with pytest.raises(UsageError, match="multiples of 4"):
        g(torch.rand(1, 3, 30, 32), 0.5)


def test_two_moments_give_different_outputs_and_per_sample_u():
    g = _gen()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = g(x, 0.0)[-1], g(x, 1.0)[-1]
        assert (a - b).abs().max() > 1e-4
        # a batch with per-sample u equals the single-sample calls
        both = g(torch.cat([x, x]), torch.tensor([0.0, 1.0]))[-1]
    torch.testing.assert_close(both[0], a[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both[1], b[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("u", [-0.01, 1.5, float("nan"), [0.2, 2.0]])
def test_moment_outside_unit_interval_is_refused(u):
    with pytest.raises(UsageError, match=r"outside \[0, 1\]"):
        u_map(u, torch.zeros(2, 3, 8, 8))
    with pytest.raises(UsageError, match="moment"):
        u_map([0.1, 0.2, 0.3], torch.zeros(2, 3, 8, 8))


def test_u_map_is_constant_per_sample():
    m = u_map([0.25, 0.75], torch.zeros(2, 3, 4, 6))
    assert m.shape == (2, 1, 4, 6)
    assert torch.all(m[0] == 0.25) and torch.all(m[1] == 0.75)


@pytest.mark.parametrize("mask_scale,start", [(2.0, 1.0), (1.0, 0.5)])  # released, paper
def test_cadc_starts_as_scaled_convolution_and_uses_offsets(mask_scale, start):
    torch.manual_seed(1)
    m = CADC(8, mask_scale)
    f = torch.randn(2, 8, 9, 9)
    plain = F.conv2d(f, m.regular_conv.weight, padding=1)
    torch.testing.assert_close(m.deform(f), start * plain, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # a one-pixel shift of every tap: the output moves by one pixel
        m.offset_conv.bias.zero_()
        m.offset_conv.bias[1::2] = 1.0  # (dy, dx) pairs: dx = +1
    shifted = m.deform(f)
    torch.testing.assert_close(shifted[..., :, :-2], start * plain[..., :, 1:-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["cadc-only", "caca-only", "paper-block"])
def test_ablation_presets_build_and_respond_to_u(name):
    cfg = presets.generator_config(name, base_channels=8, num_res=1)
    g = _gen(cfg)
    names = {k for k, _ in g.named_parameters()}
    if name == "cadc-only":
        assert not cfg.caca and any("offset_conv" in k for k in names) and not any(".ch_att.conv." in k for k in names)
    if name == "caca-only":
        assert not cfg.cadc and not any("offset_conv" in k for k in names)
    if name == "paper-block":
        assert cfg.variant == "paper" and any(".control." in k for k in names)
        assert not any("unshared" in k for k in names)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert (g(x, 0.1)[-1] - g(x, 0.9)[-1]).abs().max() > 1e-5


def test_full_size_counts_differ_per_ablation():
    full = count_parameters()
    assert count_parameters(presets.generator_config("cadc-only")) < full
    assert count_parameters(presets.generator_config("caca-only")) < full


def test_unknown_names_suggest():
    with pytest.raises(UnknownNameError, match="did you mean 'cadc-only'"):
        presets.preset("cadc_only")
    with pytest.raises(UnknownNameError, match="variant"):
        GeneratorConfig(variant="relesed")
    with pytest.raises(UsageError, match="unknown CFMD-GAN generator option"):
        GeneratorConfig.from_dict({"widht": 3})


def test_discriminator_outputs():
    torch.manual_seed(0)
    d = CFMDDiscriminator(DiscriminatorConfig(widths=(8, 8, 16)))
    img, blur = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = d(img, blur)
    assert out["enc"].shape == (2, 1, 4, 4)
    assert out["dec"].shape == (2, 1, 32, 32) and out["q"].shape == (2, 1, 32, 32)
    for v in out.values():
        v = v.detach()
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0
    # image and blur play different roles (image first)
    assert (d(blur, img)["dec"] - out["dec"]).abs().max() > 0
    assert all(hasattr(m, "weight_orig") for m in d.modules() if isinstance(m, torch.nn.Conv2d))
    with pytest.raises(UsageError, match="multiples of 8"):
        d(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20))
