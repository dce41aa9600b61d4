"""The generator weights saved by the authors' SAPPGAN code load into `--method sappgan`/`dfpg`.

The test writes a random state dict in the authors' naming (module names of SAPPGAN's
test/DFPGNet_G.py + model_utils.py, paper configuration) and checks our restore() against a
forward pass written here directly on those names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import pytest

from faceblur_bench.errors import WeightsIntegrityError
from faceblur_bench.registry import methods

WIDTHS = (64, 128, 256)


def authors_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name, cin, cout, k, transpose=False):
        shape = (cin, cout, k, k) if transpose else (cout, cin, k, k)
        sd[f"{name}.weight"] = torch.randn(shape, generator=g) * (0.5 / (cin * k * k) ** 0.5)
        sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01

    def group(prefix, c, n):
        for b in range(n):
            conv(f"{prefix}.main.{b}.blocks.0", c, c, 3)
            conv(f"{prefix}.main.{b}.blocks.2", c, c, 3)
            conv(f"{prefix}.main.{b}.blocks.3.channel_attention.0", c, c // 16, 1)
            conv(f"{prefix}.main.{b}.blocks.3.channel_attention.2", c // 16, c, 1)

    def affine(prefix, c):
        for a in ("scale", "shift"):
            conv(f"{prefix}.{a}.0", c, c, 3)
            conv(f"{prefix}.{a}.2", c, c, 3)

    conv("from_rgb", 3, 64, 3)
    conv("to_rgb", 64, 3, 1)
    for i, c in enumerate(WIDTHS, 1):
        group(f"en{i}.0", c, 5)
        affine(f"vggf{i}.0", c)
        group(f"vggf{i}.1", c, 10)
    conv("down1", 64, 128, 4)
    conv("down2", 128, 256, 4)
    group("middle.0", 256, 5)
    for i, c in zip((1, 2, 3), (256, 128, 64)):
        affine(f"ft{i}", c)
        group(f"de{i}.0", c, 5)
    conv("up1", 256, 128, 4, transpose=True)
    conv("up2", 128, 64, 4, transpose=True)
    return sd


def authors_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """DFPGnet forward on the authors' key names (input and output in [-1, 1])."""

    def c(name, t, stride=1, pad=None):
        w = sd[f"{name}.weight"]
        return F.conv2d(t, w, sd[f"{name}.bias"], stride=stride, padding=w.shape[-1] // 2 if pad is None else pad)

    def group(prefix, t, n):
        h = t
        for b in range(n):
            p = f"{prefix}.main.{b}.blocks"
            r = c(f"{p}.2", F.leaky_relu(c(f"{p}.0", h), 0.2))
            a = torch.sigmoid(c(f"{p}.3.channel_attention.2",
                                F.relu(c(f"{p}.3.channel_attention.0", r.mean((2, 3), keepdim=True)))))
            h = h + r * a
        return h + t

    def affine(prefix, t, cond):
        scale = c(f"{prefix}.scale.2", F.leaky_relu(c(f"{prefix}.scale.0", cond), 0.2))
        shift = c(f"{prefix}.shift.2", F.leaky_relu(c(f"{prefix}.shift.0", cond), 0.2))
        return t * (scale + 1) + shift

    def up(name, t):
        return F.conv_transpose2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=2, padding=1)

    res = c("from_rgb", x)
    e1 = group("en1.0", res, 5)
    v1 = group("vggf1.1", affine("vggf1.0", e1, e1), 10)
    e2 = group("en2.0", c("down1", e1, stride=2, pad=1), 5)
    v2 = group("vggf2.1", affine("vggf2.0", e2, e2), 10)
    e3 = group("en3.0", c("down2", e2, stride=2, pad=1), 5)
    v3 = group("vggf3.1", affine("vggf3.0", e3, e3), 10)
    h = group("middle.0", e3, 5)
    h = up("up1", group("de1.0", affine("ft1", h, v3), 5))
    h = up("up2", group("de2.0", affine("ft2", h, v2), 5))
    h = group("de3.0", affine("ft3", h, v1), 5) + res
    return torch.tanh(c("to_rgb", h))


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    sd = authors_state_dict()
    path = tmp_path_factory.mktemp("authors") / "G_LPIPS_best.pth"
    torch.save(sd, path)
    return sd, path


@pytest.mark.parametrize("name", ["sappgan", "dfpg"])
def test_authors_generator_weights_restore_like_their_network(official_file, name):
    sd, path = official_file
    m = methods.get(name)()
    m.load(path, "cpu")
    assert m.num_parameters() == sum(v.numel() for v in sd.values())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = (authors_forward(sd, x * 2 - 1) + 1) / 2
    got = m.restore(x)
    assert torch.allclose(got, expected.clamp(0, 1), atol=2e-5), (got - expected).abs().max()
    assert "authors" in m.identity()["trained"]["source"]


def test_dataparallel_prefix_is_accepted(official_file, tmp_path):
    sd, _ = official_file
    path = tmp_path / "G_dp.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    m = methods.get("sappgan")()
    m.load(path, "cpu")
    assert m.net is not None


def test_incomplete_authors_file_names_the_missing_key(official_file, tmp_path):
    sd, _ = official_file
    broken = dict(sd)
    broken.pop("de2.0.main.3.blocks.2.weight")
    path = tmp_path / "G_broken.pth"
    torch.save(broken, path)
    with pytest.raises(WeightsIntegrityError, match=r"missing \['dec2.blocks.3.conv2.weight'\]"):
        methods.get("sappgan")().load(path, "cpu")
