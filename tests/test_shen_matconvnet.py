"""The CVPR 2018 MatConvNet release: .mat files written here in the release's struct layout with
random values, checked against a forward pass written on the MATLAB layer names."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from faceblur_bench.errors import UsageError, WeightsIntegrityError
from faceblur_bench.methods.shen.matconvnet import find_release, load_release
from faceblur_bench.methods.shen.networks import half

K, W, R = 11, 8, 5  # classes, deblurring width, residual blocks (the release: 11, 64, 5)
P_ENC, P_KER, P_UP, P_HEAD = (4, 6, 6, 8, 8, 8), (3, 3, 5, 3, 3, 3), (5, 5, 5, 5, 5), 4


def _f32(*shape, rng, scale=0.1):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def make_release(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Struct arrays net_G (1×33: w, b) and net_P (1×12: w b bw bb bm upw upb), MATLAB layout."""
    def scale_layers(c_in):
        out = [(11, c_in, W)] + [(5, W, W)] * 2 + [(5, W, W)] * (2 * R) + [(5, W, W)] * 2
        return out + [(5, W, 3)]
    g_shapes = scale_layers(3 + K) + [None] + scale_layers(6 + K)
    net_G = np.zeros((1, len(g_shapes)), dtype=[("w", "O"), ("b", "O")])
    for j, s in enumerate(g_shapes):
        if s is None:  # transposed conv: H×W×Cout×Cin
            net_G[0, j]["w"], net_G[0, j]["b"] = _f32(4, 4, 3, 3, rng=rng), _f32(1, 3, rng=rng)
        else:
            k, ci, co = s
            net_G[0, j]["w"] = _f32(k, k, ci, co, rng=rng, scale=(1.0 / (k * k * ci)) ** 0.5)
            net_G[0, j]["b"] = _f32(1, co, rng=rng, scale=0.01)
    fields = [("w", "O"), ("b", "O"), ("bw", "O"), ("bb", "O"), ("bm", "O"), ("upw", "O"),
              ("upb", "O")]
    net_P = np.zeros((1, 12), dtype=fields)
    empty = np.zeros((0, 0))
    for j in range(12):
        for f, _ in fields:
            net_P[0, j][f] = empty

    def bn(j, c):
        net_P[0, j]["bw"] = (1 + _f32(c, 1, rng=rng)).astype(np.float32)
        net_P[0, j]["bb"] = _f32(c, 1, rng=rng)
        mu, sigma = _f32(c, 1, rng=rng), (0.5 + rng.random((c, 1))).astype(np.float32)
        net_P[0, j]["bm"] = np.concatenate([mu, sigma], 1)

    c = 3
    for j in range(6):
        k, co = P_KER[j], P_ENC[j]
        net_P[0, j]["w"], net_P[0, j]["b"] = _f32(k, k, c, co, rng=rng), _f32(co, 1, rng=rng)
        bn(j, co)
        c = co
    dec = (P_ENC[4], P_ENC[3], P_ENC[2], P_ENC[1], P_HEAD)
    for i in range(5):
        j = 6 + i
        net_P[0, j]["upw"] = _f32(4, 4, P_UP[i], c, rng=rng)
        net_P[0, j]["upb"] = _f32(P_UP[i], 1, rng=rng)
        net_P[0, j]["w"], net_P[0, j]["b"] = _f32(3, 3, P_UP[i], dec[i], rng=rng), _f32(
            dec[i], 1, rng=rng)
        bn(j, dec[i])
        c = dec[i]
    net_P[0, 11]["w"], net_P[0, 11]["b"] = _f32(3, 3, c, K, rng=rng), _f32(K, 1, rng=rng)
    return net_G, net_P


def write(tmp, net_G, net_P, release="P_S_F"):
    scipy.io.savemat(tmp / f"net_G_{release}.mat", {"net_G": net_G})
    scipy.io.savemat(tmp / f"net_P_{release}.mat", {"net_P": net_P})
    return tmp


# -- MatConvNet operators, written independently of the loader ---------------------------------
def vl_nnconv(x, w, b, pad):
    """Correlation with an H×W×Cin×Cout filter (unfold + matrix product)."""
    w = torch.from_numpy(np.asarray(w, np.float32))
    if w.dim() == 3:
        w = w.unsqueeze(-1)
    kh, kw, ci, co = w.shape
    n, _, h, wd = x.shape
    cols = F.unfold(x, (kh, kw), padding=pad)  # (N, Cin·kh·kw, L) ordered (cin, i, j)
    mat = w.permute(2, 0, 1, 3).reshape(ci * kh * kw, co)
    out = torch.einsum("nkl,ko->nol", cols, mat).reshape(n, co, h + 2 * pad - kh + 1,
                                                          wd + 2 * pad - kw + 1)
    return out + torch.from_numpy(np.asarray(b, np.float32).reshape(1, -1, 1, 1))


def vl_nnconvt(x, w, b, upsample=2, crop=1):
    """Transposed conv with an H×W×Cout×Cin filter: zero insertion, full correlation with the
    rotated filter, crop."""
    w = torch.from_numpy(np.asarray(w, np.float32))  # (kh, kw, Cout, Cin)
    kh = w.shape[0]
    n, ci, h, wd = x.shape
    up = x.new_zeros(n, ci, (h - 1) * upsample + 1, (wd - 1) * upsample + 1)
    up[:, :, ::upsample, ::upsample] = x
    rot = torch.flip(w, (0, 1)).permute(0, 1, 3, 2).numpy()  # (kh, kw, Cin, Cout)
    full = vl_nnconv(up, rot, np.asarray(b, np.float32), pad=kh - 1)
    return full[:, :, crop:full.shape[2] - crop, crop:full.shape[3] - crop]


def vl_nnbnorm(x, g, bias, moments=None, epsilon=1e-4):
    g = torch.from_numpy(np.asarray(g).reshape(1, -1, 1, 1))
    bias = torch.from_numpy(np.asarray(bias).reshape(1, -1, 1, 1))
    if moments is None:  # statistics of this single image
        mu = x.mean((0, 2, 3), keepdim=True)
        sigma = torch.sqrt(((x - mu) ** 2).mean((0, 2, 3), keepdim=True) + epsilon)
    else:
        m = torch.from_numpy(np.asarray(moments))
        mu, sigma = m[:, 0].view(1, -1, 1, 1), m[:, 1].view(1, -1, 1, 1)
    return g * (x - mu) / sigma + bias


def relu(x):
    return torch.clamp(x, min=0)


def pool(x):
    return F.max_pool2d(x, 2, 2)


def DL_deblur_net18(blurImg, blurImg0, net_G, net_P, use_moments):
    """DL_deblur_net18.m's forward pass, written on its layer names (one image)."""
    G = lambda j: net_G[0, j - 1]
    P = lambda j: net_P[0, j - 1]
    pads = {k: k // 2 for k in (3, 5)}
    h, skips = blurImg, []
    for j in range(1, 7):
        convImg = vl_nnconv(h, P(j)["w"], P(j)["b"], pad=pads[P(j)["w"].shape[0]])
        batchImg = vl_nnbnorm(convImg, P(j)["bw"], P(j)["bb"],
                              P(j)["bm"] if use_moments else None)
        reluImg = relu(batchImg)
        skips.append(reluImg)
        h = pool(reluImg) if j < 6 else reluImg
    for i, j in enumerate(range(7, 12)):
        de_deconv = vl_nnconvt(h, P(j)["upw"], P(j)["upb"])
        de_convImg = vl_nnconv(de_deconv, P(j)["w"], P(j)["b"], pad=1)
        de_reluImg = relu(vl_nnbnorm(de_convImg, P(j)["bw"], P(j)["bb"],
                                     P(j)["bm"] if use_moments else None))
        h = de_reluImg + skips[4 - i] if i < 4 else de_reluImg  # de_sumImg_1..4
    de_convImg_parsing = vl_nnconv(h, P(12)["w"], P(12)["b"], pad=1)
    G_softImg_1 = torch.softmax(de_convImg_parsing, 1)

    def scale(inp, j0):
        x = relu(vl_nnconv(inp, G(j0)["w"], G(j0)["b"], pad=5))
        x = relu(vl_nnconv(x, G(j0 + 1)["w"], G(j0 + 1)["b"], pad=2))
        G_reluImg_3 = relu(vl_nnconv(x, G(j0 + 2)["w"], G(j0 + 2)["b"], pad=2))
        sunImg, inp_r = G_reluImg_3, G_reluImg_3
        for r in range(R):
            a = j0 + 3 + 2 * r
            c1 = relu(vl_nnconv(inp_r, G(a)["w"], G(a)["b"], pad=2))
            sunImg = vl_nnconv(c1, G(a + 1)["w"], G(a + 1)["b"], pad=2) + sunImg
            inp_r = relu(sunImg)
        x = relu(vl_nnconv(inp_r, G(j0 + 13)["w"], G(j0 + 13)["b"], pad=2))
        x = relu(vl_nnconv(x, G(j0 + 14)["w"], G(j0 + 14)["b"], pad=2))
        return vl_nnconv(x, G(j0 + 15)["w"], G(j0 + 15)["b"], pad=2)

    G_convImg_6 = scale(torch.cat([blurImg0, pool(G_softImg_1)], 1), 1)
    de_deconv = vl_nnconvt(G_convImg_6, G(17)["w"], G(17)["b"])
    G_concatImg_2 = torch.cat([de_deconv, blurImg, G_softImg_1], 1)
    return scale(G_concatImg_2, 18)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    rng = np.random.default_rng(0)
    net_G, net_P = make_release(rng)
    return write(tmp_path_factory.mktemp("shen18"), net_G, net_P), net_G, net_P


@pytest.mark.parametrize("moments", ["stored", "per_image"])
def test_forward_matches_the_matlab_pass(release, moments):
    root, net_G, net_P = release
    net, info = load_release(root)
    assert info["config"]["res_blocks"] == R and info["config"]["num_classes"] == K
    assert info["config"]["parsing"]["up_widths"] == list(P_UP)
    net.parsing.bn_moments = moments
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ours = net(x).y
        ref = DL_deblur_net18(x, half(x), net_G, net_P, use_moments=moments == "stored")
    assert ours.shape == ref.shape == (1, 3, 64, 64)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4), (ours - ref).abs().max()


def test_bn_mapping_is_exact(release):
    root, _, net_P = release
    net, _ = load_release(root)
    bn = net.parsing.encoder[2]["bn"]
    bm = net_P[0, 2]["bm"]
    assert torch.allclose(bn.running_var + bn.eps, torch.from_numpy(bm[:, 1] ** 2), atol=1e-7)
    assert bn.eps == 1e-4
    assert net.parsing.encoder[2]["conv"].weight.shape == (6, 6, 5, 5)  # conv3 is 5x5


def test_file_lookup(release, tmp_path):
    root, _, _ = release
    g, p = find_release(root / "net_P_P_S_F.mat")
    assert g.name == "net_G_P_S_F.mat" and p.name == "net_P_P_S_F.mat"
    with pytest.raises(UsageError, match="net_G_P_S_F_GAN.mat"):
        find_release(root, "P_S_F_GAN")
    with pytest.raises(UsageError, match="unknown Shen release"):
        load_release(root, "GAN")


def test_bad_files_name_the_layer(release, tmp_path):
    _, net_G, net_P = release
    bad = net_G.copy()
    bad[0, 4]["w"] = bad[0, 4]["w"][:3, :3]  # net_G(1,5): 3x3 instead of 5x5
    write(tmp_path, bad, net_P)
    with pytest.raises(WeightsIntegrityError, match=r"net_G\(1,5\)\.w has shape \(3, 3, 8, 8\)"):
        load_release(tmp_path)
    bad = net_G.copy()
    bad[0, 19]["b"] = np.zeros((0, 0))  # net_G(1,20).b empty
    write(tmp_path, bad, net_P)
    with pytest.raises(WeightsIntegrityError, match=r"net_G\(1,20\)\.b is missing"):
        load_release(tmp_path)
    write(tmp_path, net_G[:, :32], net_P)  # a layer dropped
    with pytest.raises(WeightsIntegrityError, match="net_G has 32 layers"):
        load_release(tmp_path)
    badp = net_P.copy()
    badp[0, 8]["bm"] = badp[0, 8]["bm"][:, :1]
    write(tmp_path, net_G, badp)
    with pytest.raises(WeightsIntegrityError, match=r"net_P\(1,9\)\.bm has shape"):
        load_release(tmp_path)
    scipy.io.savemat(tmp_path / "net_P_P_S_F.mat", {"net": net_P})
    with pytest.raises(WeightsIntegrityError, match="no struct array 'net_P'"):
        load_release(tmp_path)


# -- the shen-cvpr18 / shen methods on the release ----------------------------------------------
def test_method_runs_the_release(release):
    from faceblur_bench.registry import methods

    root, _, _ = release
    m = methods.get("shen-cvpr18")()
    m.load(root, "cpu")
    net, _ = load_release(root)
    torch.manual_seed(1)
    x = torch.rand(2, 3, 128, 128)
    y = m.restore(x)
    with torch.no_grad():
        want = net(x * 255.0 / 256.0).y.clamp(0, 1)  # the release reads uint8 / 256
    assert torch.allclose(y, want, atol=1e-5)
    assert m.num_parameters() == sum(p.numel() for p in net.parameters())
    ident = m.identity()
    assert set(ident["trained"]["sha256"]) == {"net_G_P_S_F.mat", "net_P_P_S_F.mat"}
    assert isinstance(ident["checkpoint_sha256"], str) and len(ident["checkpoint_sha256"]) == 64
    # sides that are not multiples of 64 go through 128x128 and back, as the release resizes
    assert m.restore(torch.rand(1, 3, 100, 90)).shape == (1, 3, 100, 90)
    per_image = methods.get("shen-cvpr18")(bn_moments="per_image")
    per_image.load(root / "net_G_P_S_F.mat", "cpu")
    assert not torch.allclose(per_image.restore(x), y)
    with pytest.raises(UsageError, match="bn_moments"):
        methods.get("shen-cvpr18")(bn_moments="running")


def test_methods_refuse_without_weights_or_with_the_wrong_model(release, tmp_path, monkeypatch):
    from faceblur_bench.errors import WeightsMissingError
    from faceblur_bench.registry import methods

    monkeypatch.setenv("FACEBLUR_CHECKPOINTS", str(tmp_path / "none"))
    with pytest.raises(WeightsMissingError, match="needs trained weights") as exc:
        methods.get("shen")().load(None, "cpu")
    assert "--checkpoint" in exc.value.hint and "train shen" in exc.value.hint
    with pytest.raises(WeightsMissingError) as exc:
        methods.get("shen-cvpr18")().load(None, "cpu")
    assert "net_G_P_S_F.mat" in exc.value.hint
    root, _, _ = release
    with pytest.raises(UsageError, match="--method shen-cvpr18"):
        methods.get("shen")().load(root, "cpu")
    with pytest.raises(UsageError, match="not found"):
        methods.get("shen")().load(tmp_path / "nope.pth", "cpu")
    with pytest.raises(UsageError, match="no trained weights loaded"):
        methods.get("shen")().restore(torch.rand(1, 3, 64, 64))


def test_run_cli_with_the_release_folder(release, demo_data_root, tmp_path):
    import json
    import os
    import subprocess

    root, _, _ = release
    env = dict(os.environ, FACEBLUR_DATA=str(demo_data_root))
    out = tmp_path / "results"
    proc = subprocess.run(
        ["faceblur-bench", "run", "--method", "shen-cvpr18", "--checkpoint", str(root), "--split",
         "demo", "--out", str(out), "--metrics", "psnr", "--limit", "2", "-o", "bn_moments=per_image",
         "--leaderboard", str(tmp_path / "lb.md"), "--device", "cpu"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    s = json.loads(next(out.glob("runs/demo/shen-cvpr18/*/summary.json")).read_text())
    assert s["counts"]["ok"] == 2 and len(s["checkpoint_sha256"]) == 64
    assert s["method_options"] == {"bn_moments": "per_image"}
