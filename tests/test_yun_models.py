"""Yun et al. networks, released checkpoint format and the ``yun`` method (tiny widths)."""

from __future__ import annotations

import pytest
import torch

from faceblur_bench.errors import UsageError, WeightsIntegrityError, WeightsMissingError
from faceblur_bench.methods.yun import checkpoint as nb
from faceblur_bench.methods.yun.discriminators import (
    PatchDiscriminator,
    YunDiscriminatorConfig,
    global_discriminator,
    local_discriminator,
)
from faceblur_bench.methods.yun.networks import YunGenerator, YunGeneratorConfig, count_parameters
from faceblur_bench.registry import methods

TINY = YunGeneratorConfig(ngf=4, upscale_width=4)


def test_generator_shapes_32_to_256_and_ranges():
    torch.manual_seed(0)
    g = YunGenerator(TINY).eval()
    upx, blurred_hr, sharp_hr = g(torch.rand(2, 3, 32, 32) * 2 - 1)
    for t in (upx, blurred_hr, sharp_hr):
        assert t.shape == (2, 3, 256, 256)
    assert blurred_hr.abs().max() <= 1 and sharp_hr.abs().max() <= 1  # tanh outputs
    with pytest.raises(ValueError, match="32, 32"):
        g(torch.zeros(1, 3, 64, 64))


def test_parameter_counts_of_the_released_layer_list():
    assert count_parameters() == 58_295_494  # METHODS.md §B.1 (analytic count)
    with torch.device("meta"):
        dg = global_discriminator()
        dl = local_discriminator()
    assert sum(p.numel() for p in dg.parameters()) == 2_769_601
    assert sum(p.numel() for p in dl.parameters()) == 2_766_529
    assert methods.get("yun").scale == 8
    assert methods.get("yun")().num_parameters() == 58_295_494


def test_sharp_decoder_receives_the_blur_decoder_feature():
    # zeroing deconv2_0 (I_f) changes the sharp output; the blurred output never sees deconv2
    torch.manual_seed(0)
    g = YunGenerator(TINY).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    _, b0, s0 = g(x)
    with torch.no_grad():
        for p in g.deconv2.parameters():
            p.mul_(0.0)
    _, b1, s1 = g(x)
    assert torch.equal(b0, b1) and not torch.allclose(s0, s1)
    with torch.no_grad():
        for p in g.deconv2_0.parameters():
            p.mul_(0.0)
    _, b2, s2 = g(x)
    assert not torch.allclose(b1, b2) and not torch.allclose(s1, s2)


@pytest.mark.parametrize("layers,out", [(5, (30, 30)), (7, (1, 1))])
def test_discriminator_outputs(layers, out):
    cfg = YunDiscriminatorConfig(ndf=4, layers=layers)
    d6, d3 = PatchDiscriminator(6, cfg), PatchDiscriminator(3, cfg)
    assert d6(torch.zeros(2, 6, 256, 256)).shape == (2, 1) + out
    assert d3(torch.zeros(2, 3, 256, 256)).shape == (2, 1) + out
    assert sum(isinstance(m, torch.nn.Conv2d) for m in d6.modules()) == layers


def test_norm_choice_changes_the_state_dict():
    bn = YunGenerator(YunGeneratorConfig(ngf=4, upscale_width=4, norm="batch")).state_dict()
    inn = YunGenerator(YunGeneratorConfig(ngf=4, upscale_width=4, norm="instance")).state_dict()
    assert "conv2.2.running_mean" in bn and "deconv4_0.2.weight" in bn
    assert not any(k.startswith("conv2.2") for k in inn)
    assert {k for k in bn if k.endswith(".1.weight")} == {k for k in inn if k.endswith(".1.weight")}
    # the released key names (METHODS.md §B.4)
    for k in ("upscale8.0.weight", "upscale8.2.weight", "upscale8.5.weight", "upscale8.8.weight",
              "upscale8.11.weight", "conv1.weight", "conv1.bias", "conv8.1.weight", "deconv8.2.running_var",
              "deconv1.1.weight", "deconv1_0.1.bias", "deconv2_0.2.num_batches_tracked"):
        assert k in bn, k


@pytest.mark.parametrize("prefixed", [False, True])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_notebook_checkpoint_loads_through_the_method(tmp_path, prefixed, norm):
    torch.manual_seed(1)
    ref = YunGenerator(YunGeneratorConfig(ngf=4, upscale_width=4, norm=norm)).eval()
    if norm == "batch":  # non-trivial running stats, as a trained file has
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = nb.save_notebook_state(ref, tmp_path / "generator-551.pkl", data_parallel=prefixed)
    raw = torch.load(path, weights_only=True)
    assert all(k.startswith("module.") for k in raw) == prefixed
    m = methods.get("yun")()
    m.load(path, "cpu")
    assert m.generator_config == ref.config
    x = torch.rand(2, 3, 32, 32)
    y = m.restore(x)
    assert y.shape == (2, 3, 256, 256) and 0 <= float(y.min()) and float(y.max()) <= 1
    with torch.no_grad():
        want = (ref(x * 2 - 1)[2] + 1) / 2
    assert torch.allclose(y, want.clamp(0, 1), atol=1e-6)
    assert m.num_parameters() == sum(p.numel() for p in ref.parameters())
    assert m.identity()["checkpoint_sha256"]


def test_method_refuses_wrong_inputs_and_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBLUR_CHECKPOINTS", str(tmp_path / "none"))
    m = methods.get("yun")()
    with pytest.raises(WeightsMissingError, match="yun.pth"):
        m.load(None, "cpu")
    with pytest.raises(UsageError, match="not found"):
        m.load(tmp_path / "missing.pkl", "cpu")
    bad = tmp_path / "bad.pkl"
    sd = YunGenerator(TINY).state_dict()
    sd.pop("deconv1.1.bias")
    torch.save(sd, bad)
    with pytest.raises(WeightsIntegrityError, match="deconv1.1.bias"):
        m.load(bad, "cpu")
    m.load(nb.save_notebook_state(YunGenerator(TINY), tmp_path / "g.pkl"), "cpu")
    with pytest.raises(UsageError, match="32x32"):
        m.restore(torch.rand(1, 3, 128, 128))


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    p = tmp_path / "evil.pkl"
    torch.save({"upscale8.0.weight": Evil()}, p)
    with pytest.raises(WeightsIntegrityError, match="weights_only"):
        methods.get("yun")().load(p, "cpu")


def test_contract_options_give_a_small_untrained_net():
    cls = methods.get("yun")
    m = cls(**cls.contract_options)
    m.init_untrained("cpu", tiny=True)
    y = m.restore(torch.rand(2, 3, 32, 32))
    assert y.shape == (2, 3, 256, 256) and 0 <= float(y.min()) and float(y.max()) <= 1
    assert m.num_parameters() < 1_000_000  # vs 58.3 M
    with pytest.raises(UsageError, match="unknown option"):
        cls(width=3)
