"""LPIPS metrics against the lpips package, with random backbone weights saved under torchvision's
file names in a temporary TORCH_HOME (the real lookup and loading path runs; values are not
meaningful LPIPS numbers, only equalities between the two implementations are asserted)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
import torchvision
from scipy.ndimage import gaussian_filter
from skimage import data as skdata

from faceblur_bench import weights
from faceblur_bench.data.base import Sample
from faceblur_bench.errors import WeightsIntegrityError, WeightsMissingError
from faceblur_bench.imageio import read_image
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.registry import metrics

TID = Path(__file__).parent / "data" / "tid2013"
FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


@pytest.fixture(scope="module")
def fake_torch_home(tmp_path_factory) -> Path:
    """$TORCH_HOME with random-valued torchvision AlexNet and VGG16 files (same keys/shapes)."""
    home = tmp_path_factory.mktemp("torch_home")
    ck = home / "hub" / "checkpoints"
    ck.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), ck / FILES["alex"])
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), ck / FILES["vgg"])
    return home


@pytest.fixture()
def env(fake_torch_home, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(fake_torch_home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FACEBLUR_WEIGHTS", raising=False)
    # the random files cannot have upstream's sha256 prefix: test files skip the hash check
    for name in ("lpips-alex-backbone", "lpips-vgg-backbone"):
        e = weights.KNOWN[name]
        monkeypatch.setitem(
            weights.KNOWN, name, dataclasses.replace(e, sha256=None, sha256_prefix=None)
        )

    def no_download(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return fake_torch_home


def _pairs():
    img = skdata.astronaut()
    rng = np.random.default_rng(1)
    gts, outs = [], []
    for i in range(3):
        gt = img[30 + 10 * i : 126 + 10 * i, 170 + 8 * i : 266 + 8 * i]
        o = gaussian_filter(gt.astype(float), (0.5 + 0.5 * i, 0.5 + 0.5 * i, 0)) + rng.normal(
            0, 3, gt.shape
        )
        gts.append(gt)
        outs.append(np.clip(np.round(o), 0, 255).astype(np.uint8))
    return outs, gts


def _t(imgs):
    return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).copy())


def _batch(outs, gts):
    return Batch(
        samples=[Sample(id=str(i), blurred=Path(f"{i}.png")) for i in range(len(outs))],
        restored=_t(outs),
        reference=_t(gts),
    )


_REF: dict[str, torch.nn.Module] = {}


def _reference_values(net: str, outs, gts, mode: str) -> np.ndarray:
    """The lpips package used directly, one pair at a time, trunk loaded by torchvision from TORCH_HOME."""
    if net not in _REF:  # TORCH_HOME is the same module-scoped fake folder in every test
        _REF[net] = lpips.LPIPS(net=net, version="0.1", verbose=False).eval()
    ref = _REF[net]
    vals = []
    with torch.no_grad():
        for o, g in zip(outs, gts):
            x = torch.from_numpy(o.transpose(2, 0, 1).copy())[None].float()
            y = torch.from_numpy(g.transpose(2, 0, 1).copy())[None].float()
            if mode == "pm1":
                vals.append(ref(x / 255.0, y / 255.0, normalize=True).item())
            elif mode == "01":
                vals.append(ref(x / 255.0, y / 255.0).item())
            else:
                vals.append(ref(x, y).item())
    return np.array(vals)


@pytest.mark.parametrize(
    "net,protocols",
    [
        ("alex", (("lpips-alex", "pm1"), ("lpips-alex-01", "01"))),
        ("vgg", (("lpips-vgg", "pm1"), ("lpips-vgg-255", "255"))),
    ],
)
def test_lpips_matches_package(env, net, protocols):
    outs, gts = _pairs()
    ctx = MetricContext("cpu")  # one network per run, shared by both protocols of a backbone
    for name, mode in protocols:
        m = metrics.get(name)()
        m.setup(ctx)
        got = m.compute(_batch(outs, gts))
        want = _reference_values(net, outs, gts, mode)
        assert got.shape == (3,) and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=name)
        # a nonzero distance for distorted pairs, zero for identical pairs
        assert np.all(got > 0)
        assert np.allclose(m.compute(_batch(gts[:1], gts[:1])), 0.0, atol=1e-7)
    # the two input conventions give different numbers
    assert not np.allclose(want, _reference_values(net, outs, gts, protocols[0][1]), rtol=1e-3)


def test_lpips_alex_on_tid2013_matches_package(env):
    names = sorted(p.name for p in (TID / "ref_dir").iterdir())[:2]
    # a 192x256 crop keeps the test quick; the full-size official values need the real weights
    dist = [read_image(TID / "dist_dir" / n)[96:288, 128:384] for n in names]
    ref = [read_image(TID / "ref_dir" / n)[96:288, 128:384] for n in names]
    m = metrics.get("lpips-alex")()
    m.setup(MetricContext("cpu"))
    np.testing.assert_allclose(
        m.compute(_batch(dist, ref)),
        _reference_values("alex", dist, ref, "pm1"),
        rtol=2e-5,
        atol=1e-6,
    )


def test_lpips_network_shared_between_protocols(env):
    ctx = MetricContext("cpu")
    a, b = metrics.get("lpips-vgg")(), metrics.get("lpips-vgg-255")()
    a.setup(ctx)
    b.setup(ctx)
    assert a.model is b.model
    assert not a.model.training
    assert all(not p.requires_grad for p in a.model.parameters())


def test_lpips_missing_backbone_names_file(env, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    m = metrics.get("lpips-alex")()
    with pytest.raises(WeightsMissingError) as ei:
        m.setup(MetricContext("cpu"))
    msg = str(ei.value)
    assert "alexnet-owt-7be5be79.pth" in msg and "hub" in msg and "checkpoints" in msg


def test_lpips_wrong_file_is_refused(fake_torch_home, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(fake_torch_home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # with the real entry, a random file fails the sha256 prefix check named in the file name
    with pytest.raises(WeightsIntegrityError, match="7be5be79"):
        metrics.get("lpips-alex")().setup(MetricContext("cpu"))
    # a file of the wrong architecture under the right name is refused with a clear message
    bad = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, bad)
    e = weights.KNOWN["lpips-alex-backbone"]
    monkeypatch.setitem(
        weights.KNOWN,
        "lpips-alex-backbone",
        dataclasses.replace(e, sha256=None, sha256_prefix=None),
    )
    ctx = MetricContext("cpu", weights_overrides={"lpips-alex-backbone": str(bad)})
    # ... before anything is copied, naming the tensor and the shape the architecture expects
    with pytest.raises(WeightsIntegrityError, match=r"'features.0.weight' has shape \(3, 3, 3, 3\).*\(64, 3, 11, 11\)"):
        metrics.get("lpips-alex")().setup(ctx)


def test_lpips_alex_official_tid2013_values_with_genuine_weights():
    """Calibration against IQA-PyTorch's official LPIPS (AlexNet v0.1) values; runs only where the
    genuine torchvision AlexNet file is installed (its sha256 prefix is checked by the lookup)."""
    try:
        weights.resolve("lpips-alex-backbone")
    except (WeightsMissingError, WeightsIntegrityError):
        pytest.skip("genuine alexnet-owt-7be5be79.pth not installed (faceblur-bench weights fetch lpips-alex-backbone)")
    import csv

    with open(TID / "results_official.csv", newline="") as f:
        rows = {r[0]: r[1:] for r in csv.reader(f)}
    official = dict(zip(rows["Method"], map(float, rows["lpips"])))
    names = sorted(official)
    dist = [read_image(TID / "dist_dir" / n) for n in names]
    ref = [read_image(TID / "ref_dir" / n) for n in names]
    m = metrics.get("lpips-alex")()
    m.setup(MetricContext("cpu"))
    got = m.compute(_batch(dist, ref))
    for n, v in zip(names, got):
        assert v == pytest.approx(official[n], abs=2e-4), n
