"""Yun et al.'s w/N forward (``--option noise=wN``): a notebook checkpoint (DataParallel ``module.``
keys, batch norm) run through the method equals a forward written here from the notebook's key
names with the noise multiplied in after the input and every encoder/decoder layer (METHODS.md
§B.1); the noise is N(1, 0.1); outputs are reproducible per seed, independent of the batch, and
the option is part of the run key. Weights are random (format-faithful file): no number is
reported."""

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
from faceblur_bench.methods.yun.networks import MultiplicativeNoise, YunGenerator, YunGeneratorConfig
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
    """``outHR`` of the notebooks' Generator from its state dict (keys without ``module.``), eval
    mode, with ``noise(t)`` after the input and after every encoder and decoder layer except
    the two tanh outputs; ``noise`` = identity gives the plain notebooks' forward."""
    def bn(name, t):
        return F.batch_norm(t, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                            sd[f"{name}.weight"], sd[f"{name}.bias"], False, 0.0, 1e-5)

    def down(i, t):  # conv{i}: LReLU, Conv4x4 s2, BN
        t = F.conv2d(F.leaky_relu(t, 0.2), sd[f"conv{i}.1.weight"], sd[f"conv{i}.1.bias"], 2, 1)
        return bn(f"conv{i}.2", t)

    def up(name, t):  # ReLU, ConvT4x4 s2, BN (dropout: off in eval mode)
        t = F.conv_transpose2d(F.relu(t), sd[f"{name}.1.weight"], sd[f"{name}.1.bias"], 2, 1)
        return bn(f"{name}.2", t)

    h = noise(x)
    h = F.leaky_relu(F.conv2d(h, sd["upscale8.0.weight"], None, 1, 4), 0.2)
    for i in (2, 5, 8):
        h = F.leaky_relu(F.pixel_shuffle(F.conv2d(h, sd[f"upscale8.{i}.weight"], None, 1, 1), 2), 0.2)
    upx = F.conv2d(h, sd["upscale8.11.weight"], None, 1, 1)
    c = [noise(F.conv2d(upx, sd["conv1.weight"], sd["conv1.bias"], 2, 1))]
    for i in range(2, 9):
        c.append(noise(down(i, c[-1])))
    d = noise(up("deconv8", c[7]))
    for i, skip in zip(range(7, 1, -1), (c[6], c[5], c[4], c[3], c[2], c[1])):
        d = noise(up(f"deconv{i}", torch.cat([skip, d], 1)))
    u = noise(up("deconv4_0", c[3]))
    u = noise(up("deconv3_0", torch.cat([c[2], u], 1)))
    feat = noise(up("deconv2_0", torch.cat([c[1], u], 1)))
    z = torch.cat([c[0], d + feat], 1)
    return torch.tanh(F.conv_transpose2d(F.relu(z), sd["deconv1.1.weight"], sd["deconv1.1.bias"], 2, 1))


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
        noisy = ((notebook_forward(sd, x * 2 - 1, MultiplicativeNoise(seeds)) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(_restore(notebook_file, x), plain, rtol=0, atol=2e-6)
    torch.testing.assert_close(_restore(notebook_file, x, noise="none"), plain, rtol=0, atol=2e-6)
    got = _restore(notebook_file, x, noise="wN", noise_seed=7)
    torch.testing.assert_close(got, noisy, rtol=0, atol=2e-6)
    assert float((got - plain).abs().mean()) > 1e-3  # the noise changes the output


def test_noise_is_n_1_01_per_image_and_reproducible():
    t = torch.ones(2, 64, 128, 128)
    n = MultiplicativeNoise([1, 2])(t)
    assert abs(float(n.mean()) - 1.0) < 2e-3 and abs(float(n.std()) - 0.1) < 2e-3
    assert torch.equal(MultiplicativeNoise([1, 2])(t), n)  # same seeds, same draw
    assert torch.equal(MultiplicativeNoise([2])(t[:1]), n[1:])  # an image's stream is its own
    with pytest.raises(ValueError, match="2 images"):
        MultiplicativeNoise([1, 2])(t[:1])


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
