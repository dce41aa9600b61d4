"""The authors' released CFMD-GAN generator state dict (METHODS.md §A.4 key names), written by the
test with random values at a reduced width, loaded through ``--checkpoint`` and compared with a
forward pass written here from the layer list (functional ops on the state dict's tensors)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from faceblur_bench.engine import make_method
from faceblur_bench.errors import UsageError, WeightsIntegrityError, WeightsMissingError
from faceblur_bench.methods.cfmd import official

B, R = 8, 2  # base width and ContAda blocks per level (released: 32 and 8)


def released_names(b: int = B, r: int = R, cadc: bool = True, caca: bool = True
                   ) -> dict[str, tuple[int, ...]]:
    """Every tensor of the released CMD_MIMOUNet with its shape, from METHODS.md §A.1/§A.4; with
    ``cadc``/``caca`` False those of a ``use_CADC``/``use_CACA=False`` ablation generator, on the
    authors' names (the plain conv that replaces CADC is a ``BasicConv``: ``conv2.main.0``)."""
    s: dict[str, tuple[int, ...]] = {}

    def conv(name, cin, cout, k, bias=True, transpose=False):
        s[f"{name}.weight"] = (cin, cout, k, k) if transpose else (cout, cin, k, k)
        if bias:
            s[f"{name}.bias"] = (cout,)

    for i in range(8):
        conv(f"mapping_net.shared.{i}.layer.0", 1 if i == 0 else b, b, 1)
    for j, c in enumerate((b, 2 * b, 4 * b)):
        conv(f"mapping_net.enc_unshared.{j}.layer.0", b, c, 1)
    for j, c in enumerate((4 * b, 2 * b, b)):
        conv(f"mapping_net.dec_unshared.{j}.layer.0", b, c, 1)
    for part, widths in (("Encoder", (b, 2 * b, 4 * b)), ("Decoder", (4 * b, 2 * b, b))):
        for lvl, c in enumerate(widths):
            for k in range(r):
                p = f"{part}.{lvl}.layers.{k}"
                conv(f"{p}.conv1.main.0", c, c, 3)
                if cadc:
                    conv(f"{p}.conv2.conv", 2 * c, c, 1, bias=False)
                    conv(f"{p}.conv2.offset_conv", c, 18, 3)
                    conv(f"{p}.conv2.modulator_conv", c, 9, 3)
                    conv(f"{p}.conv2.regular_conv", c, c, 3, bias=False)
                else:
                    conv(f"{p}.conv2.main.0", c, c, 3)
                if caca:
                    conv(f"{p}.ch_att.conv", 2 * c, c, 1, bias=False)
                conv(f"{p}.ch_att.conv_du.0", c, c // 4, 1, bias=False)
                conv(f"{p}.ch_att.conv_du.2", c // 4, c, 1, bias=False)
    for i, (cin, cout, k, t) in enumerate([(3, b, 3, False), (b, 2 * b, 3, False), (2 * b, 4 * b, 3, False),
                                          (4 * b, 2 * b, 4, True), (2 * b, b, 4, True), (b, 3, 3, False)]):
        conv(f"feat_extract.{i}.main.0", cin, cout, k, transpose=t)
    conv("Convs.0.main.0", 4 * b, 2 * b, 1)
    conv("Convs.1.main.0", 2 * b, b, 1)
    conv("ConvsOut.0.main.0", 4 * b, 3, 3)
    conv("ConvsOut.1.main.0", 2 * b, 3, 3)
    for j, c in enumerate((b, 2 * b)):
        conv(f"AFFs.{j}.conv.0.main.0", 7 * b, c, 1)
        conv(f"AFFs.{j}.conv.1.main.0", c, c, 3)
    conv("FAM1.merge.main.0", 4 * b, 4 * b, 3)
    conv("FAM2.merge.main.0", 2 * b, 2 * b, 3)
    for name, out in (("SCM1", 4 * b), ("SCM2", 2 * b)):
        for i, (cin, cout, k) in enumerate([(3, out // 4, 3), (out // 4, out // 2, 1),
                                            (out // 2, out // 2, 3), (out // 2, out - 3, 1)]):
            conv(f"{name}.main.{i}.main.0", cin, cout, k)
        conv(f"{name}.conv.main.0", out, out, 1)
    return s


def random_state(seed: int = 0, cadc: bool = True, caca: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in released_names(cadc=cadc, caca=caca).items():
        if len(shape) > 1:
            fan_in = shape[1] * shape[2] * shape[3]
            std = 0.05 if ("offset_conv" in k or "modulator_conv" in k) else (1.0 / fan_in) ** 0.5
        else:
            std = 0.05
        out[k] = torch.randn(shape, generator=g) * std
    return out


# -- the forward pass, written from the layer list ------------------------------------------------------
def _lrelu(x):
    return F.leaky_relu(x, 0.2)


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, u: float, cadc: bool = True,
                      caca: bool = True) -> torch.Tensor:
    def conv(name, z, act=True, stride=1):
        w = sd[f"{name}.weight"]
        y = F.conv2d(z, w, sd.get(f"{name}.bias"), stride, w.shape[-1] // 2)
        return _lrelu(y) if act else y

    def convT(name, z):
        return _lrelu(F.conv_transpose2d(z, sd[f"{name}.weight"], sd[f"{name}.bias"], 2, 1))

    def block(p, z, uf):
        fo = conv(f"{p}.conv1.main.0", z)
        if cadc:
            fu = F.conv2d(torch.cat([fo, uf], 1), sd[f"{p}.conv2.conv.weight"])
            off = conv(f"{p}.conv2.offset_conv", fu, act=False)
            mask = 2 * torch.sigmoid(conv(f"{p}.conv2.modulator_conv", fu, act=False))
            fdc = deform_conv2d(fu, off, sd[f"{p}.conv2.regular_conv.weight"], padding=1, mask=mask)
        else:  # the harness's reading: a plain 3x3 conv of F_o, no activation (METHODS.md §A.1)
            fdc = conv(f"{p}.conv2.main.0", fo, act=False)
        # with CACA, X = conv1x1([F_dc, u]); without, a plain RCAN attention on F_dc
        xx = F.conv2d(torch.cat([fdc, uf], 1), sd[f"{p}.ch_att.conv.weight"]) if caca else fdc
        a = torch.sigmoid(F.conv2d(_lrelu(F.conv2d(xx.mean((2, 3), keepdim=True),
                                                    sd[f"{p}.ch_att.conv_du.0.weight"])),
                                   sd[f"{p}.ch_att.conv_du.2.weight"]))
        return z + xx * a

    def blocks(part, lvl, z, uf):
        for k in range(R):
            z = block(f"{part}.{lvl}.layers.{k}", z, uf)
        return z

    def scm(name, z):
        y = z
        for i in range(4):
            y = conv(f"{name}.main.{i}.main.0", y)
        return conv(f"{name}.conv.main.0", torch.cat([z, y], 1), act=False)

    near = lambda z, s: F.interpolate(z, scale_factor=s, mode="nearest")
    t = torch.full((x.shape[0], 1, x.shape[2], x.shape[3]), u)
    for i in range(8):
        t = conv(f"mapping_net.shared.{i}.layer.0", t)
    pyr = [t, near(t, 0.5), near(t, 0.25)]
    enc = [conv(f"mapping_net.enc_unshared.{j}.layer.0", pyr[j]) for j in range(3)]
    dec = [conv(f"mapping_net.dec_unshared.{j}.layer.0", pyr[2 - j]) for j in range(3)]
    x2, x4 = near(x, 0.5), near(near(x, 0.5), 0.5)
    res1 = blocks("Encoder", 0, conv("feat_extract.0.main.0", x), enc[0])
    z = conv("feat_extract.1.main.0", res1, stride=2)
    z = z + conv("FAM2.merge.main.0", z * scm("SCM2", x2), act=False)
    res2 = blocks("Encoder", 1, z, enc[1])
    z = conv("feat_extract.2.main.0", res2, stride=2)
    z = z + conv("FAM1.merge.main.0", z * scm("SCM1", x4), act=False)
    z = blocks("Encoder", 2, z, enc[2])
    aff = lambda j, *zs: conv(f"AFFs.{j}.conv.1.main.0", conv(f"AFFs.{j}.conv.0.main.0", torch.cat(zs, 1)),
                              act=False)
    a2 = aff(1, near(res1, 0.5), res2, near(z, 2))
    a1 = aff(0, res1, near(res2, 2), near(z, 4))
    z = blocks("Decoder", 0, z, dec[0])
    z = conv("Convs.0.main.0", torch.cat([convT("feat_extract.3.main.0", z), a2], 1))
    z = blocks("Decoder", 1, z, dec[1])
    z = conv("Convs.1.main.0", torch.cat([convT("feat_extract.4.main.0", z), a1], 1))
    z = blocks("Decoder", 2, z, dec[2])
    return conv("feat_extract.5.main.0", z, act=False) + x


@pytest.fixture()
def released_file(tmp_path):
    path = tmp_path / "model_best.pth"
    torch.save(random_state(), path)
    return path


@pytest.mark.parametrize("u", [0.0, 0.5, 1.0])
def test_released_state_dict_matches_the_written_forward(released_file, u):
    m = make_method("cfmd-gan")
    m.load(released_file, "cpu")
    assert m.generator_config.base_channels == B and m.generator_config.num_res == R
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    got = m.restore(x, [{"moment": u}, {"moment": u}])
    with torch.no_grad():
        want = reference_forward(random_state(), x, u).clamp(0, 1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert 0.0 < float((got - x).abs().mean())  # not the identity
    assert m.identity()["checkpoint_sha256"] is not None


@pytest.mark.parametrize(("cadc", "caca"), [(True, True), (True, False), (False, True), (False, False)])
def test_table5_ablation_state_dicts_load_on_the_authors_names(tmp_path, cadc, caca):
    """The four switch settings of seed 003 Table 5, each written on the authors' key names
    (``use_CADC=False``: ``….conv2.main.0.*``), load and match the written forward."""
    st = random_state(3, cadc=cadc, caca=caca)
    assert any(".conv2.main.0." in k for k in st) == (not cadc)
    p = tmp_path / "netG_last.pth"
    torch.save({f"module.{k}": v for k, v in st.items()}, p)
    m = make_method("cfmd-gan")
    m.load(p, "cpu")
    cfg = m.generator_config
    assert (cfg.cadc, cfg.caca, cfg.variant) == (cadc, caca, "released")
    assert m.num_parameters() == sum(v.numel() for v in st.values())
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    got = m.restore(x, [{"moment": 0.3}])
    with torch.no_grad():
        want = reference_forward(st, x, 0.3, cadc=cadc, caca=caca).clamp(0, 1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # the harness's own layout (conv2.weight) still loads, to the same network
    own = official.to_harness_keys(st)
    assert not any(".conv2.main.0." in k for k in own)
    torch.save(own, tmp_path / "own.pth")
    m2 = make_method("cfmd-gan")
    m2.load(tmp_path / "own.pth", "cpu")
    torch.testing.assert_close(m2.restore(x, [{"moment": 0.3}]), got)


def test_moments_come_from_meta_else_the_option(released_file):
    m = make_method("cfmd-gan", {"moment": "0.25"})
    m.load(released_file, "cpu")
    x = torch.rand(1, 3, 28, 36)  # not multiples of 4: padded and cropped back
    a = m.restore(x)
    b = m.restore(x, [{"moment": 0.25}])
    c = m.restore(x, [{"moment": 0.9}])
    assert a.shape == x.shape
    torch.testing.assert_close(a, b)
    assert float((a - c).abs().max()) > 1e-4
    with pytest.raises(UsageError, match=r"outside \[0, 1\]"):
        m.restore(x, [{"moment": 1.2}])
    with pytest.raises(UsageError, match=r"outside \[0, 1\]"):
        make_method("cfmd-gan", {"moment": 2})


def test_dataparallel_prefix_and_wrapper(tmp_path):
    st = {f"module.{k}": v for k, v in random_state().items()}
    p = tmp_path / "netG_psnr_best.pth"
    torch.save({"state_dict": st}, p)
    m = make_method("cfmd-gan")
    m.load(p, "cpu")
    assert m.num_parameters() == sum(v.numel() for v in random_state().values())


def test_wrong_files_are_refused(tmp_path):
    st = random_state()
    bad = dict(st)
    bad["Encoder.0.layers.0.conv1.main.0.weight"] = torch.zeros(B, B, 5, 5)
    torch.save(bad, tmp_path / "shape.pth")
    with pytest.raises(WeightsIntegrityError, match=r"conv1\.main\.0\.weight has shape"):
        make_method("cfmd-gan").load(tmp_path / "shape.pth", "cpu")
    less = {k: v for k, v in st.items() if not k.startswith("AFFs.1.")}
    torch.save(less, tmp_path / "missing.pth")
    with pytest.raises(WeightsIntegrityError, match="missing"):
        make_method("cfmd-gan").load(tmp_path / "missing.pth", "cpu")
    with pytest.raises(UsageError, match="not found"):
        make_method("cfmd-gan").load(tmp_path / "absent.pth", "cpu")


def test_no_checkpoint_is_refused_not_random(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBLUR_CHECKPOINTS", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="needs trained weights"):
        make_method("cfmd-gan").load(None, "cpu")
    assert official.is_official(random_state())


def test_untrained_contract_size_and_unknown_options():
    from faceblur_bench.errors import UnknownNameError

    m = make_method("cfmd-gan")
    m.init_untrained("cpu", tiny=True)
    assert m.generator_config.base_channels == 8 and m.num_parameters() < 200_000
    y = m.restore(torch.rand(2, 3, 16, 20), [{"moment": 0.0}, {"moment": 1.0}])
    assert y.shape == (2, 3, 16, 20) and float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(UnknownNameError, match="did you mean 'moment'"):
        make_method("cfmd-gan", {"momnet": 0.5})
    full = make_method("cfmd-gan")
    full.init_untrained("cpu")
    assert sum(p.numel() for p in full.net.parameters()) == full.num_parameters() == 9_246_323
