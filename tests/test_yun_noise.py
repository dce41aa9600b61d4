"""Yun et al.'s w/N forward (``--option noise=wN``): a notebook checkpoint (DataParallel ``module.``
keys, batch norm) run through the method equals a forward written here from the notebook's key
names and from the w/N notebooks' ``Generator.forward`` (JungUnYun/Face_SRnDeblur,
``FaceSRnDeblur_wN_train.ipynb``, repeated in ``FaceSRnDeblur_wN_test.ipynb``): noise from
N(1, 0.1) *added* to the input, to each encoder output on its way into the next layer (the skips
stay noiseless) and to every decoder skip concatenation — 19 tensors, in that order; outputs are
reproducible per seed, independent of the batch, and the option is part of the run key. Weights
are random (format-faithful file): no number is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_yun_run import write_sr8_tree

from faceblur_bench import engine
from faceblur_bench.errors import UsageError
from faceblur_bench.methods.yun import checkpoint as nb
from faceblur_bench.methods.yun.method import noise_seed_of
from faceblur_bench.methods.yun.networks import NOISE_AT, AdditiveNoise, YunGenerator, YunGeneratorConfig
from faceblur_bench.registry import methods

G = 4  # ngf and x8-CNN width (released: 64)


@pytest.fixture
def notebook_file(tmp_path) -> Path:
    """``generator-551.pkl`` as the w/N train notebook saves it: DataParallel keys, batch norm
    with non-trivial running statistics."""
    torch.manual_seed(5)
    net = YunGenerator(YunGeneratorConfig(ngf=G, upscale_width=G)).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return nb.save_notebook_state(net, tmp_path / "generator-551.pkl", data_parallel=True)


def notebook_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, noise) -> torch.Tensor:
    """``outHR`` of the w/N notebooks' Generator from its state dict (keys without ``module.``),
    eval mode, with ``noise(t)`` where that notebook adds its ``normal_(mean=1.0, std=0.1)``
    tensors, in its order; ``noise`` = identity gives the plain notebooks' forward."""
    def bn(name, t):
        return F.batch_norm(t, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                            sd[f"{name}.weight"], sd[f"{name}.bias"], False, 0.0, 1e-5)

    def down(i, t):  # conv{i}: LReLU, Conv4x4 s2, BN
        t = F.conv2d(F.leaky_relu(t, 0.2), sd[f"conv{i}.1.weight"], sd[f"conv{i}.1.bias"], 2, 1)
        return bn(f"conv{i}.2", t)

    def up(name, t):  # ReLU, ConvT4x4 s2, BN (dropout: off in eval mode)
        t = F.conv_transpose2d(F.relu(t), sd[f"{name}.1.weight"], sd[f"{name}.1.bias"], 2, 1)
        return bn(f"{name}.2", t)

    def out(name, t):  # ReLU, ConvT4x4 s2, tanh
        return torch.tanh(F.conv_transpose2d(F.relu(t), sd[f"{name}.1.weight"], sd[f"{name}.1.bias"], 2, 1))

    inN = noise(x)  # inN = x + noise
    h = F.leaky_relu(F.conv2d(inN, sd["upscale8.0.weight"], None, 1, 4), 0.2)
    for i in (2, 5, 8):
        h = F.leaky_relu(F.pixel_shuffle(F.conv2d(h, sd[f"upscale8.{i}.weight"], None, 1, 1), 2), 0.2)
    upx = F.conv2d(h, sd["upscale8.11.weight"], None, 1, 1)
    c1 = F.conv2d(upx, sd["conv1.weight"], sd["conv1.bias"], 2, 1)
    c1_n = noise(c1)
    c2 = down(2, c1_n); c2_n = noise(c2)  # noqa: E702 — the notebook's line pairs
    c3 = down(3, c2_n); c3_n = noise(c3)  # noqa: E702
    c4 = down(4, c3_n); c4_n = noise(c4)  # noqa: E702
    c5 = down(5, c4_n); c5_n = noise(c5)  # noqa: E702
    c6 = down(6, c5_n); c6_n = noise(c6)  # noqa: E702
    c7 = down(7, c6_n); c7_n = noise(c7)  # noqa: E702
    c8 = down(8, c7_n); c8_n = noise(c8)  # noqa: E702
    # upper (LR) branch first, as the notebook runs it
    d3_n = noise(torch.cat((c3, up("deconv4_0", c4_n)), 1))
    d2_n = noise(torch.cat((c2, up("deconv3_0", d3_n)), 1))
    d1_0 = up("deconv2_0", d2_n)
    d1_n = noise(torch.cat((c1, d1_0), 1))
    out("deconv1_0", d1_n)  # outLR: not returned, but its noise draw comes before the HR branch's
    d17_n = noise(torch.cat((c7, up("deconv8", c8_n)), 1))
    d16_n = noise(torch.cat((c6, up("deconv7", d17_n)), 1))
    d15_n = noise(torch.cat((c5, up("deconv6", d16_n)), 1))
    d14_n = noise(torch.cat((c4, up("deconv5", d15_n)), 1))
    d13_n = noise(torch.cat((c3, up("deconv4", d14_n)), 1))
    d12_n = noise(torch.cat((c2, up("deconv3", d13_n)), 1))
    d1 = up("deconv2", d12_n) + d1_0
    d11_n = noise(torch.cat((c1, d1), 1))
    return out("deconv1", d11_n)


def _restore(path: Path, x: torch.Tensor, **options) -> torch.Tensor:
    m = methods.get("yun")(**options)
    m.load(path, "cpu")
    return m.restore(x)


def test_wn_forward_matches_the_notebook_layers_with_noise(notebook_file):
    sd = nb.strip_prefix(torch.load(notebook_file, weights_only=True))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = ((notebook_forward(sd, x * 2 - 1, lambda t: t) + 1) / 2).clamp(0, 1)
        seeds = [noise_seed_of(7, xi * 2 - 1) for xi in x]
        noisy = ((notebook_forward(sd, x * 2 - 1, AdditiveNoise(seeds)) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(_restore(notebook_file, x), plain, rtol=0, atol=2e-6)
    torch.testing.assert_close(_restore(notebook_file, x, noise="none"), plain, rtol=0, atol=2e-6)
    got = _restore(notebook_file, x, noise="wN", noise_seed=7)
    torch.testing.assert_close(got, noisy, rtol=0, atol=2e-6)
    assert float((got - plain).abs().mean()) > 1e-3  # the noise changes the output


def test_noise_is_added_n_1_01_per_image_and_reproducible():
    t = torch.full((2, 64, 128, 128), 3.0)
    n = AdditiveNoise([1, 2])(t) - t  # added, not multiplied: t + N(1, 0.1)
    assert abs(float(n.mean()) - 1.0) < 2e-3 and abs(float(n.std()) - 0.1) < 2e-3
    assert torch.equal(AdditiveNoise([1, 2])(t) - t, n)  # same seeds, same draw
    assert torch.equal(AdditiveNoise([2])(t[:1]) - t[:1], n[1:])  # an image's stream is its own
    with pytest.raises(ValueError, match="2 images"):
        AdditiveNoise([1, 2])(t[:1])


def test_the_noise_places_and_their_order():
    """The 19 tensors the w/N notebook adds noise to, in its order, pinned by shape (channels at
    width g, side): the generator draws for exactly these and the test's notebook forward too."""
    g = G
    expected = [(3, 32)] + [(c, s) for c, s in zip((g, 2 * g, 4 * g, 8 * g, 8 * g, 8 * g, 8 * g, 8 * g),
                                                    (128, 64, 32, 16, 8, 4, 2, 1))]
    expected += [(8 * g, 32), (4 * g, 64), (2 * g, 128)]  # [c3,deconv4_0] [c2,deconv3_0] [c1,deconv2_0]
    expected += [(16 * g, 2), (16 * g, 4), (16 * g, 8), (16 * g, 16), (8 * g, 32), (4 * g, 64),
                 (2 * g, 128)]  # [c7,deconv8] ... [c1,deconv2 + I_f]
    assert len(expected) == len(NOISE_AT) == 19

    def recorder(seen):
        def noise(t):
            seen.append((t.shape[1], t.shape[-1]))
            return t + 1.0  # the noise's mean, no spread: the same as a draw of std 0
        return noise

    torch.manual_seed(3)
    net = YunGenerator(YunGeneratorConfig(ngf=G, upscale_width=G)).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    ours, theirs = [], []
    with torch.no_grad():
        got = net(x, recorder(ours))[2]
        want = notebook_forward(net.state_dict(), x, recorder(theirs))
    assert ours == theirs == expected
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
    # the +1 offset matters: the same forward without noise differs
    with torch.no_grad():
        assert float((net(x)[2] - got).abs().mean()) > 1e-3


def test_seed_and_batch(notebook_file):
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = _restore(notebook_file, x, noise="wN")
    torch.testing.assert_close(_restore(notebook_file, x, noise="wN", noise_seed=0), a, rtol=0, atol=0)
    assert float((_restore(notebook_file, x, noise="wN", noise_seed=1) - a).abs().max()) > 1e-3
    # one image alone gets its own noise: the same output as inside the batch (float rounding)
    torch.testing.assert_close(_restore(notebook_file, x[2:], noise="wN"), a[2:], rtol=0, atol=1e-5)


def test_noise_option_is_checked_and_part_of_the_run_key(tmp_path, notebook_file):
    with pytest.raises(UsageError, match="did you mean 'wN'"):
        methods.get("yun")(noise="wn")
    with pytest.raises(UsageError, match="did you mean 'noise'"):
        methods.get("yun")(nosie="wN")
    root = write_sr8_tree(tmp_path / "data", n=2)
    dirs = {}
    for opts in ({}, {"noise": "wN"}, {"noise": "wN", "noise_seed": 3}):
        cfg = engine.RunConfig(method="yun", split="celebahq-sr8", data_root=root, metrics=("psnr-yun",),
                               results_dir=tmp_path / "res", device="cpu", checkpoint=notebook_file,
                               method_options=opts, allow_partial=True)
        s = engine.evaluate(cfg)
        assert s["counts"]["ok"] == 2 and s["method_options"] == opts
        dirs[json.dumps(opts)] = s["run_dir"]
    assert len(set(dirs.values())) == 3  # three runs, never mixed
