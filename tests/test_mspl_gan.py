"""MSPL-GAN (`faceblur_bench/methods/mspl/`): generator, the authors' weight file, losses, method.

The authors' ``netG_last.pth`` cannot be downloaded here; the tests write random state dicts
under its module names (METHODS.md §D) and check our network against a forward pass written
below directly on those names with functional calls.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from faceblur_bench.cli import app
from faceblur_bench.errors import UsageError, WeightsIntegrityError, WeightsMissingError
from faceblur_bench.imageio import quantize, read_image, to_tensor01, write_png
from faceblur_bench.methods.dfpg.vggface import VGGFaceFeatures
from faceblur_bench.methods.mspl import losses as L
from faceblur_bench.methods.mspl import official
from faceblur_bench.methods.mspl.networks import (
    DiscriminatorConfig,
    GeneratorConfig,
    MSPLGenerator,
    MultiStageDiscriminator,
    count_parameters,
)
from faceblur_bench.metrics.pixel import psnr_u8
from faceblur_bench.registry import methods

runner = CliRunner()


# -- the authors' layout, written from METHODS.md §D -------------------------------------------
def authors_state_dict(width: int = 128, middle=(4, 4, 4, 4), level: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name, cin, cout, k, transpose=False):
        shape = (cin, cout, k, k) if transpose else (cout, cin, k, k)
        sd[f"{name}.weight"] = torch.randn(shape, generator=g) * (0.5 / (cin * k * k) ** 0.5)
        sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01

    def block(p):
        conv(f"{p}.blocks.0", width, width, 3)
        conv(f"{p}.blocks.2", width, width, 3)
        conv(f"{p}.blocks.3.channel_attention.0", width, width // 16, 1)
        conv(f"{p}.blocks.3.channel_attention.2", width // 16, width, 1)

    conv("from_rgb", 3, width, 1)
    for k in range(4):
        for grp, n in (
            ("en1", level),
            ("en2", level),
            ("middle", middle[k]),
            ("de1", level),
            ("de2", level),
        ):
            for i in range(n):
                block(f"net{k}.{grp}.{i}")
        conv(f"net{k}.down1", width, width, 4)
        conv(f"net{k}.down2", width, width, 4)
        conv(f"net{k}.up1", width, width, 4, transpose=True)
        conv(f"net{k}.up2", width, width, 4, transpose=True)
        conv(f"to_rgb{k}", width, 3, 1)
    return sd


def authors_forward(sd, x):
    """MSPL_Generator forward on the authors' key names; x in [-1, 1] -> (out0..out3)."""

    def c(name, t, stride=1, pad=None):
        w = sd[f"{name}.weight"]
        return F.conv2d(
            t,
            w,
            sd[f"{name}.bias"],
            stride=stride,
            padding=w.shape[-1] // 2 if pad is None else pad,
        )

    def rb(p, t):
        r = c(f"{p}.blocks.2", F.leaky_relu(c(f"{p}.blocks.0", t), 0.2))
        a = torch.sigmoid(
            c(
                f"{p}.blocks.3.channel_attention.2",
                F.relu(c(f"{p}.blocks.3.channel_attention.0", r.mean((2, 3), keepdim=True))),
            )
        )
        return t + r * a

    def seq(p, t):
        i = 0
        while f"{p}.{i}.blocks.0.weight" in sd:
            t = rb(f"{p}.{i}", t)
            i += 1
        return t

    def up(name, t):
        return F.conv_transpose2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=2, padding=1)

    feat = c("from_rgb", x)
    outs = []
    for k in range(4):
        e1 = seq(f"net{k}.en1", feat)
        e2 = seq(f"net{k}.en2", c(f"net{k}.down1", e1, stride=2, pad=1))
        res = c(f"net{k}.down2", e2, stride=2, pad=1)
        h = seq(f"net{k}.middle", res) + res
        h = seq(f"net{k}.de1", up(f"net{k}.up1", h) + e2)
        feat = seq(f"net{k}.de2", up(f"net{k}.up2", h) + e1)
        outs.append(torch.tanh(c(f"to_rgb{k}", feat)))
    return outs


@pytest.fixture(scope="module")
def paper_file(tmp_path_factory):
    sd = authors_state_dict()
    path = tmp_path_factory.mktemp("authors") / "netG_last.pth"
    torch.save(sd, path)
    return sd, path


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    """A reduced-width file in the authors' layout (16 channels, 1-2 middle blocks)."""
    sd = authors_state_dict(width=16, middle=(1, 2, 1, 2), level=1, seed=3)
    path = tmp_path_factory.mktemp("authors_tiny") / "netG_last.pth"
    torch.save(sd, path)
    return sd, path


# -- generator ---------------------------------------------------------------------------------
def test_paper_generator_has_18_47_M_parameters_shown_by_the_methods_command():
    assert count_parameters() == 18_471_308
    assert methods.get("mspl-gan")().num_parameters() == 18_471_308
    r = runner.invoke(app, ["methods", "--json"])
    assert r.exit_code == 0, r.output
    rec = next(x for x in json.loads(r.output) if x["name"] == "mspl-gan")
    assert rec["params_M"] == 18.471 and "faceblur_bench.methods.mspl" in rec["origin"]


def test_generator_gives_four_tanh_stage_images_and_config_roundtrips():
    cfg = GeneratorConfig(width=8, middle_blocks=(1, 1, 2, 1), level_blocks=1, se_reduction=4)
    assert GeneratorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="4 U-Nets"):
        GeneratorConfig(middle_blocks=(4, 4, 4))
    with pytest.raises(ValueError, match="unknown MSPL generator config keys"):
        GeneratorConfig.from_dict({"widht": 8})
    net = MSPLGenerator(cfg)
    with torch.no_grad():
        outs = net(torch.rand(2, 3, 16, 12) * 2 - 1)
    assert len(outs) == 4 and all(o.shape == (2, 3, 16, 12) for o in outs)
    assert all(float(o.abs().max()) < 1 for o in outs)
    assert not torch.equal(outs[0], outs[3])


# -- the authors' netG_last.pth ----------------------------------------------------------------
def test_authors_paper_file_restores_like_their_network(paper_file):
    sd, path = paper_file
    m = methods.get("mspl-gan")()
    m.load(path, "cpu")
    assert m.generator_config == GeneratorConfig()
    assert m.num_parameters() == sum(v.numel() for v in sd.values()) == 18_471_308
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = authors_forward(sd, x * 2 - 1)
        ours = m.net(x * 2 - 1)
    for k in range(4):
        assert float((ours[k] - ref[k]).abs().max()) < 1e-5, k
    got = m.restore(x)
    assert float((got - ((ref[3] + 1) / 2).clamp(0, 1)).abs().max()) < 1e-5
    assert "authors" in m.identity()["trained"]["source"]
    assert m.identity()["checkpoint_sha256"]


def test_reduced_authors_file_infers_its_configuration_and_pads_odd_sizes(tiny_file):
    sd, path = tiny_file
    assert official.config_of(sd) == GeneratorConfig(
        width=16, middle_blocks=(1, 2, 1, 2), level_blocks=1
    )
    m = methods.get("mspl-gan")()
    m.load(path, "cpu")
    x = torch.rand(1, 3, 30, 26, generator=torch.Generator().manual_seed(2))
    got = m.restore(x)
    assert got.shape == x.shape
    xp = F.pad(x * 2 - 1, (0, 2, 0, 2), mode="reflect")
    with torch.no_grad():
        ref = (authors_forward(sd, xp)[3][..., :30, :26] + 1) / 2
    assert float((got - ref.clamp(0, 1)).abs().max()) < 1e-5


def test_dataparallel_prefix_and_layout_errors(tiny_file, tmp_path):
    sd, _ = tiny_file
    p = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, p)
    methods.get("mspl-gan")().load(p, "cpu")

    broken = dict(sd)
    broken.pop("net2.de1.0.blocks.2.weight")
    torch.save(broken, p)
    with pytest.raises(WeightsIntegrityError, match=r"missing \['unets.2.dec2.0.conv2.weight'\]"):
        methods.get("mspl-gan")().load(p, "cpu")

    extra = dict(sd)
    extra["net0.extra.weight"] = torch.zeros(1)
    torch.save(extra, p)
    with pytest.raises(WeightsIntegrityError, match=r"unexpected keys \['net0.extra.weight'\]"):
        methods.get("mspl-gan")().load(p, "cpu")

    wrong = dict(sd)
    wrong["net1.up2.weight"] = torch.zeros(16, 16, 3, 3)
    torch.save(wrong, p)
    with pytest.raises(WeightsIntegrityError, match=r"net1.up2.weight has shape \(16, 16, 3, 3\)"):
        methods.get("mspl-gan")().load(p, "cpu")

    torch.save({"weight": torch.zeros(2)}, p)
    with pytest.raises(WeightsIntegrityError, match="neither the authors' MSPL-GAN generator"):
        methods.get("mspl-gan")().load(p, "cpu")


def test_file_with_code_inside_is_refused(tmp_path):
    p = tmp_path / "evil.pth"
    torch.save({"from_rgb.weight": torch.zeros(1), "x": np.float64(1.0), "f": os.getcwd}, p)
    with pytest.raises(UsageError, match="weights_only"):
        methods.get("mspl-gan")().load(p, "cpu")


def test_refuses_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBLUR_CHECKPOINTS", str(tmp_path / "none"))
    m = methods.get("mspl-gan")()
    with pytest.raises(WeightsMissingError, match=r"mspl-gan needs trained weights.*mspl-gan\.pth"):
        m.load(None, "cpu")
    with pytest.raises(UsageError, match="no trained weights loaded"):
        m.restore(torch.rand(1, 3, 8, 8))
    with pytest.raises(UsageError, match="not found"):
        m.load(tmp_path / "missing.pth", "cpu")


# -- losses, against hand-computed values ------------------------------------------------------
def _tiny_batch():
    # 1 image of 2x2 pixels, 1 channel broadcast to 3; label classes [[0, 1], [2, 3]]
    sharp = torch.tensor([[0.5, -0.5], [1.0, 0.0]]).expand(1, 3, 2, 2).clone()
    labels = torch.tensor([[[0, 1], [2, 3]]])
    outs = [torch.full((1, 3, 2, 2), v) for v in (0.1, 0.2, 0.3, 0.4)]
    return sharp, labels, outs


def test_stage_masks_targets_and_l1_by_hand():
    sharp, labels, outs = _tiny_batch()
    onehot = L.one_hot(labels)
    assert onehot.shape == (1, 4, 2, 2) and torch.equal(onehot.sum(1), torch.ones(1, 2, 2))
    t = L.stage_targets(sharp, onehot)
    assert torch.equal(t[0][0, 0], torch.tensor([[0.0, -0.5], [0.0, 0.0]]))  # class 1 pixel only
    assert torch.equal(t[1][0, 0], torch.tensor([[0.0, 0.0], [1.0, 0.0]]))  # class 2
    assert torch.equal(
        t[2][0, 0], torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    )  # class 3 (sharp = 0 there)
    assert torch.equal(t[3], sharp)
    # stage 0: only the class-1 pixel differs: |0.1 - (-0.5)| = 0.6 over 4 pixels -> 0.15
    # stage 1: |0.2 - 1.0| = 0.8 -> 0.2; stage 2: |0.3 - 0| = 0.3 -> 0.075
    # stage 3: (|0.4-0.5| + |0.4+0.5| + |0.4-1| + |0.4-0|) / 4 = 2.0 / 4 = 0.5
    got = L.stage_l1_loss(outs, sharp, onehot)
    assert float(got) == pytest.approx(0.15 + 0.2 + 0.075 + 0.5, abs=1e-6)


def test_adversarial_and_vgg_terms_by_hand():
    sp = float(np.log1p(np.exp(-2.0)))  # softplus(-2)
    sp_pos = float(np.log1p(np.exp(1.0)))  # softplus(1)
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), 1.0)
    # D: ½ (-log σ(2) - log(1 - σ(1))) = ½ (softplus(-2) + softplus(1))
    assert float(L.discriminator_loss(real, fake)) == pytest.approx(0.5 * (sp + sp_pos), abs=1e-6)
    # G: -log σ(2) = softplus(-2)
    assert float(L.generator_adv_loss(real)) == pytest.approx(sp, abs=1e-6)
    a = torch.tensor([[[[1.0, -2.0]]]])
    b = torch.tensor([[[[0.5, 1.0]]]])
    assert float(L.vgg_l1_loss(a, b)) == pytest.approx((0.5 + 3.0) / 2, abs=1e-6)


def test_generator_objective_weights_and_totals():
    sharp, labels, outs = _tiny_batch()
    onehot = L.one_hot(labels)

    def disc(stages):  # constant logits 2 (kept in the graph of its inputs)
        return torch.full((1, 1, 2, 2), 2.0) + 0 * sum(s.sum() for s in stages)

    def vgg(x):  # a linear "feature" map: hand-computable
        return (x * 3.0,)

    total, logs = L.generator_objective(outs, sharp, onehot, disc, vgg)
    l1 = 0.925
    adv = float(np.log1p(np.exp(-2.0)))
    feat = 3.0 * 0.5  # |3*out3 - 3*sharp| mean = 3 * 0.5
    assert float(logs["g_l1"]) == pytest.approx(l1, abs=1e-6)
    assert float(logs["g_adv"]) == pytest.approx(adv, abs=1e-6)
    assert float(logs["g_vgg"]) == pytest.approx(feat, abs=1e-6)
    assert float(total) == pytest.approx(l1 + 0.05 * adv + 0.05 * feat, abs=1e-6)


def _tiny_nets(seed=0):
    torch.manual_seed(seed)
    g = MSPLGenerator(
        GeneratorConfig(width=8, middle_blocks=(1, 1, 1, 1), level_blocks=1, se_reduction=4)
    )
    d = MultiStageDiscriminator(DiscriminatorConfig(width=4))
    vgg = VGGFaceFeatures((L.VGG_LAYER,))
    for (
        p
    ) in vgg.features.parameters():  # random frozen weights: only the gradient path matters here
        p.data.normal_(0, 0.1)
    return g, d, vgg


@pytest.mark.parametrize("term", ["adv", "vgg"])
def test_adversarial_and_vgg_gradients_reach_the_generator(term):
    """The released trainer detached the outputs before D and VGG; ours must not."""
    g, d, vgg = _tiny_nets()
    sharp = torch.rand(2, 3, 32, 32) * 2 - 1
    labels = torch.randint(0, 4, (2, 32, 32), generator=torch.Generator().manual_seed(0))
    outs = g(torch.rand(2, 3, 32, 32) * 2 - 1)
    d.requires_grad_(False)  # frozen in the generator step, as the trainer does
    total, logs = L.generator_objective(
        outs,
        sharp,
        L.one_hot(labels),
        d if term == "adv" else None,
        vgg if term == "vgg" else None,
        lambda_l1=0.0,
    )
    assert f"g_{term}" in logs and float(logs["g_total"]) > 0
    total.backward()
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0
    assert (
        float(g.head.weight.grad.abs().sum()) > 0
    )  # reaches the first layer, not only out3's tail
    assert all(p.grad is None for p in d.parameters()) and all(
        p.grad is None for p in vgg.parameters()
    )


def test_discriminator_objective_does_not_reach_the_generator():
    g, d, _ = _tiny_nets()
    sharp = torch.rand(2, 3, 32, 32) * 2 - 1
    labels = torch.randint(0, 4, (2, 32, 32), generator=torch.Generator().manual_seed(1))
    loss, logs = L.discriminator_objective(
        g(torch.rand(2, 3, 32, 32) * 2 - 1), sharp, L.one_hot(labels), d
    )
    loss.backward()
    assert all(p.grad is None for p in g.parameters())
    assert sum(float(p.grad.abs().sum()) for p in d.parameters() if p.grad is not None) > 0
    assert 0 < float(logs["d_real_p"]) < 1 and float(logs["d_loss"]) > 0


def test_discriminator_shape_and_stage_count():
    d = MultiStageDiscriminator(DiscriminatorConfig(width=4))
    x = [torch.rand(3, 3, 64, 64)] * 4
    assert d(x).shape == (3, 1, 6, 6)
    with pytest.raises(ValueError, match="4 stage images"):
        d(x[:3])


# -- `faceblur-bench run --method mspl-gan` on every MSPL split --------------------------------
@pytest.fixture(scope="module")
def mspl_root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mspl_data")
    rng = np.random.default_rng(0)
    write_png(tmp / "sharp" / "face1.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    for variant in ("center", "random"):
        r = runner.invoke(
            app,
            [
                "make-split",
                "--sharp",
                str(tmp / "sharp"),
                "--protocol",
                "mspl",
                "--variant",
                variant,
                "--out",
                str(tmp / "data"),
                "--subset",
                "ffhq",
            ],
        )
        assert r.exit_code == 0, r.output
    return tmp / "data"


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["faceblur-bench", *args], check=False, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("split", ["mspl-center/ffhq", "mspl-random/ffhq"])
def test_run_on_mspl_splits_with_the_authors_file(split, tiny_file, mspl_root, tmp_path):
    sd, path = tiny_file
    out = tmp_path / "results"
    proc = _cli(
        "run",
        "--method",
        "mspl-gan",
        "--checkpoint",
        str(path),
        "--split",
        split,
        "--data-root",
        str(mspl_root),
        "--out",
        str(out),
        "--metrics",
        "psnr,ssim",
        "--limit",
        "12",
        "--leaderboard",
        str(tmp_path / "lb.md"),
        "--device",
        "cpu",
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summaries = list(out.glob(f"runs/{split.split('/')[0]}*/mspl-gan/*/summary.json"))
    assert len(summaries) == 1, list(out.rglob("summary.json"))
    s = json.loads(summaries[0].read_text())
    assert s["counts"]["ok"] == 12 and s["num_parameters"] == sum(v.numel() for v in sd.values())
    rows = [
        json.loads(line) for line in (summaries[0].parent / "rows.jsonl").read_text().splitlines()
    ]
    from faceblur_bench.engine import open_split

    sample = next(x for x in open_split(split, mspl_root).samples() if x.id == rows[5]["id"])
    blurred = to_tensor01([read_image(sample.blurred)])
    with torch.no_grad():
        ref = ((authors_forward(sd, blurred * 2 - 1)[3] + 1) / 2).clamp(0, 1)
    sharp = torch.from_numpy(np.array(read_image(sample.sharp))).permute(2, 0, 1)[None]
    assert float(psnr_u8(quantize(ref), sharp)[0]) == pytest.approx(
        rows[5]["metrics"]["psnr"], abs=1e-4
    )


def test_run_without_weights_refuses(mspl_root, tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("FACEBLUR_CHECKPOINTS", None)
    proc = _cli(
        "run",
        "--method",
        "mspl-gan",
        "--split",
        "mspl-center/ffhq",
        "--data-root",
        str(mspl_root),
        "--out",
        str(tmp_path / "r"),
        "--metrics",
        "psnr",
        "--leaderboard",
        str(tmp_path / "lb.md"),
        "--device",
        "cpu",
        env=env,
    )
    assert proc.returncode != 0
    msg = proc.stdout + proc.stderr
    assert "mspl-gan needs trained weights" in msg and "netG_last.pth" in msg
    assert not list((tmp_path / "r").rglob("rows.jsonl"))


# -- `faceblur-bench train mspl-gan` -----------------------------------------------------------
@pytest.fixture(scope="module")
def train_env(tmp_path_factory):
    from faceblur_bench.methods.dfpg.vggface import save_random_vggface16
    from faceblur_bench.registry import trainers

    tmp = tmp_path_factory.mktemp("mspl_train")
    root = trainers.get("mspl-gan").write_smoke_data(tmp / "data")
    save_random_vggface16(tmp / "w" / "VGGFace16.pth")
    return root, dict(os.environ, FACEBLUR_WEIGHTS=str(tmp / "w")), tmp


def _train(root, out, env, *extra):
    proc = _cli(
        "train",
        "mspl-gan",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--tiny",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--no-progress",
        *extra,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def _csv(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_two_steps_resume_exact_then_run_the_checkpoint(train_env, mspl_root, tmp_path):
    from faceblur_bench.methods import checkpoint as ckpt_io

    root, env, _ = train_env
    # 4 synthetic images, 2 held out for validation -> one step of batch 2 per epoch
    _train(root, tmp_path / "full", env, "--epochs", "2")
    _train(root, tmp_path / "half", env, "--epochs", "1")
    _train(root, tmp_path / "half", env, "--epochs", "2", "--resume")
    a, b = _csv(tmp_path / "full" / "steps.csv"), _csv(tmp_path / "half" / "steps.csv")
    assert len(a) == len(b) == 2
    for key in ("g_total", "g_l1", "g_adv", "g_vgg", "d_loss", "kernel"):
        assert np.isfinite(float(a[1][key])) and a[1][key] == b[1][key], key
    assert a[0]["g_total"] != a[1]["g_total"]
    ca = ckpt_io.load(tmp_path / "full" / "checkpoints" / "last.pth")
    cb = ckpt_io.load(tmp_path / "half" / "checkpoints" / "last.pth")
    assert ca["trainer"] == "mspl-gan" and ca["preset"] == "full" and ca["step"] == 2
    assert set(ca["modules"]) == {"generator", "discriminator"}
    for name in ca["modules"]:
        assert all(
            torch.equal(ca["modules"][name][k], cb["modules"][name][k]) for k in ca["modules"][name]
        )
    cfg = ca["config"]
    assert cfg["data"]["labels"] == "cls4" and cfg["data"]["color_jitter"] == 0.5
    assert cfg["vgg_layers"] == ["conv3_2"] and cfg["optim"]["lr_d"] == 1e-4
    assert float(_csv(tmp_path / "full" / "log.csv")[1]["lr_generator"]) == pytest.approx(
        1e-4 * 0.99
    )

    # the trained (tiny) generator runs through `run --method mspl-gan`, exported or not
    exported = tmp_path / "mspl_tiny.pth"
    last = tmp_path / "full" / "checkpoints" / "last.pth"
    r = runner.invoke(app, ["train", "export", str(last), str(exported)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "results"
    args = [
        "run",
        "--method",
        "mspl-gan",
        "--checkpoint",
        str(exported),
        "--split",
        "mspl-center/ffhq",
    ]
    args += ["--data-root", str(mspl_root), "--out", str(out), "--metrics", "psnr", "--limit", "3"]
    args += ["--leaderboard", str(tmp_path / "lb.md"), "--device", "cpu"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    s = json.loads(next(out.glob("runs/*/mspl-gan/*/summary.json")).read_text())
    m = methods.get("mspl-gan")()
    m.load(exported, "cpu")
    assert s["counts"]["ok"] == 3 and s["num_parameters"] == m.num_parameters() < 100_000
    assert m.identity()["trained"] == {"preset": "full", "epoch": 2, "step": 2}
    g = MSPLGenerator(GeneratorConfig.from_dict(cfg["model"]["generator"]))
    g.load_state_dict(ca["modules"]["generator"])
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m.restore(x), ((g(x * 2 - 1)[3] + 1) / 2).clamp(0, 1), atol=1e-6)


def test_checkpoint_of_another_trainer_is_refused(train_env, tmp_path):
    from faceblur_bench.methods import checkpoint as ckpt_io

    ck = {
        "format": ckpt_io.FORMAT,
        "trainer": "dfpg",
        "method": "dfpg",
        "config": {},
        "modules": {},
    }
    p = tmp_path / "dfpg.pth"
    torch.save(ck, p)
    with pytest.raises(UsageError, match="trained by 'dfpg'"):
        methods.get("mspl-gan")().load(p, "cpu")


def test_label_maps_auto_choose_four_classes(tmp_path):
    from faceblur_bench.data.training import make_layout
    from faceblur_bench.registry import trainers
    from faceblur_bench.train.config import build_config

    cls = trainers.get("mspl-gan")
    cfg = build_config("mspl-gan")
    assert cfg["epochs"] == 200 and cfg["batch_size"] == 16 and cfg["loss"]["lambda_adv"] == 0.05
    r19 = make_layout(tmp_path / "a", n_images=1, size=32, labels="cls19", kernel_sizes=())
    assert cls.prepare_config(build_config("mspl-gan"), r19, False)["data"]["labels"] == "cls19to4"
    r4 = make_layout(tmp_path / "b", n_images=1, size=32, labels="cls4", kernel_sizes=())
    assert cls.prepare_config(build_config("mspl-gan"), r4, False)["data"]["labels"] == "cls4"
    with pytest.raises(UsageError, match="4-class label maps"):
        build_config("mspl-gan", overrides={"data": {"labels": "cls19"}})
    with pytest.raises(UsageError, match="did you mean"):
        build_config("mspl-gan", preset="no_adv")


def test_untrained_contract_net_restores_shape_and_range():
    m = methods.get("mspl-gan")()
    m.init_untrained("cpu", tiny=True)
    assert m.num_parameters() == count_parameters(
        GeneratorConfig.from_dict(m.contract_options["generator"])
    )
    x = torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(4))
    y = m.restore(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0 and not torch.equal(y, x)
    assert "untrained" in m.identity()["trained"]["source"]
