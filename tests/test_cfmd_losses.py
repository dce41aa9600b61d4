"""CFMD-GAN loss terms against values computed by hand on tiny tensors."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision

from faceblur_bench import weights
from faceblur_bench.errors import WeightsIntegrityError, WeightsMissingError
from faceblur_bench.methods.cfmd import losses as L


def _const(v: float, shape=(1, 1, 2, 2)) -> torch.Tensor:
    return torch.full(shape, v)


def test_bce_and_regression():
    p = torch.tensor([0.9, 0.2])
    assert float(L.bce(p, True)) == pytest.approx(-(math.log(0.9) + math.log(0.2)) / 2, rel=1e-6)
    assert float(L.bce(p, False)) == pytest.approx(-(math.log(0.1) + math.log(0.8)) / 2, rel=1e-6)
    # saturated probabilities stay finite
    assert math.isfinite(float(L.bce(torch.tensor([0.0]), True)))
    assert float(L.regression(_const(0.7), _const(0.5))) == pytest.approx(0.04, rel=1e-6)


def test_charbonnier():
    pred, target = torch.tensor([0.0, 0.003]), torch.zeros(2)
    want = (math.sqrt(1e-6) + math.sqrt(0.003**2 + 1e-6)) / 2
    assert float(L.charbonnier(pred, target, 1e-3)) == pytest.approx(want, rel=1e-6)


def _square_pattern() -> torch.Tensor:
    """4x4 image with v[i, j] = (4i + j)² / 225 in all three channels."""
    k = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    return (k * k / 225.0).expand(1, 3, 4, 4).contiguous()


def test_pixel_loss_sums_three_scales_with_bilinear_ground_truth():
    sharp = _square_pattern()
    outs = [torch.zeros(1, 3, 1, 1), torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 4, 4)]
    # full: mean of k² (k = 0..15) = 1240/16 = 77.5; ½: means of the 2x2 blocks (10.5, 24.5,
    # 114.5, 160.5) -> 77.5; ¼ (bilinear samples the centre): (25 + 36 + 81 + 100)/4 = 60.5
    assert float(L.pixel_loss(outs, sharp, "l1")) == pytest.approx((77.5 + 77.5 + 60.5) / 225, rel=1e-6)
    eps = 1e-3
    full = [(k * k) / 225 for k in range(16)]
    half = [10.5 / 225, 24.5 / 225, 114.5 / 225, 160.5 / 225]
    quarter = [60.5 / 225]
    want = sum(sum(math.sqrt(v * v + eps * eps) for v in vs) / len(vs) for vs in (full, half, quarter))
    assert float(L.pixel_loss(outs, sharp, "charbonnier", eps)) == pytest.approx(want, rel=1e-5)


def _d(enc: float, dec: float, q: float) -> dict[str, torch.Tensor]:
    return {"enc": _const(enc), "dec": _const(dec, (1, 1, 4, 4)), "q": _const(q, (1, 1, 4, 4))}


def test_discriminator_and_generator_adversarial_terms():
    real, fake, u = _d(0.8, 0.6, 0.3), _d(0.4, 0.1, 0.7), _const(0.5, (1, 1, 4, 4))
    l_enc = -math.log(0.8) - math.log(0.6)
    l_dec = -math.log(0.6) - math.log(0.9)
    l_q = 0.2**2 + 0.2**2
    total, parts = L.discriminator_loss(real, fake, u, lambda_q=0.05, gan_scale=1.0)  # paper eq. 13
    assert float(total) == pytest.approx(l_enc + l_dec + 0.05 * l_q, rel=1e-6)
    assert float(parts["d_enc"]) == pytest.approx(l_enc, rel=1e-6)
    assert float(parts["d_dec"]) == pytest.approx(l_dec, rel=1e-6)
    assert float(parts["d_q"]) == pytest.approx(l_q, rel=1e-6)
    released, _ = L.discriminator_loss(real, fake, u, lambda_q=0.5, gan_scale=0.5)
    assert float(released) == pytest.approx(0.5 * (l_enc + l_dec) + 0.5 * l_q, rel=1e-6)
    assert float(L.adversarial_loss(fake)) == pytest.approx(-math.log(0.4) - math.log(0.1), rel=1e-6)


# -- LPIPS with random trunk weights written by the test ---------------------------------------------
@pytest.fixture()
def alex_file(tmp_path, monkeypatch) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    e = weights.KNOWN[L.LPIPS_BACKBONE]  # a random file cannot carry upstream's hash
    monkeypatch.setitem(weights.KNOWN, L.LPIPS_BACKBONE, dataclasses.replace(e, sha256=None, sha256_prefix=None))
    return path


def _lpips_by_hand(x01: torch.Tensor, y01: torch.Tensor, alex_path: Path) -> torch.Tensor:
    """LPIPS v0.1 (Zhang et al. 2018 eq. 1) written out: scaling layer, AlexNet relu1..relu5,
    unit-normalised channels, squared difference weighted by the package's linear heads,
    spatial mean, sum over layers."""
    import lpips

    feats = torchvision.models.alexnet(weights=None).features
    feats.load_state_dict({k[len("features."):]: v for k, v in
                           torch.load(alex_path, weights_only=True).items() if k.startswith("features.")})
    heads = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu",
                       weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def relus(z):
        z = (z * 2 - 1 - shift) / scale
        out = []
        for i, layer in enumerate(feats[:12]):
            z = layer(z)
            if i in (1, 4, 7, 9, 11):
                out.append(z)
        return out

    total = torch.zeros(x01.shape[0])
    for li, (a, b) in enumerate(zip(relus(x01), relus(y01))):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = heads[f"lin{li}.model.1.weight"]
        total += F.conv2d((a - b) ** 2, w).mean((1, 2, 3))
    return total.mean()


def test_lpips_term_matches_the_formula(alex_file):
    loss = L.LPIPSLoss({L.LPIPS_BACKBONE: str(alex_file)})
    torch.manual_seed(3)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        got = loss(x, y)
        want = _lpips_by_hand(x, y, alex_file)
    assert float(got) == pytest.approx(float(want), rel=1e-4)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    # gradients reach the restored image, not the frozen network
    xr = x.clone().requires_grad_(True)
    loss(xr, y).backward()
    assert xr.grad is not None and float(xr.grad.abs().sum()) > 0
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.net.training


def test_lpips_term_refuses_missing_or_wrong_trunk(tmp_path, alex_file, monkeypatch):
    from faceblur_bench.errors import WeightsOverrideError

    # an explicit override that does not exist is refused by name (never replaced by another file)
    with pytest.raises(WeightsOverrideError, match="alexnet-owt"):
        L.LPIPSLoss({L.LPIPS_BACKBONE: str(tmp_path / "absent.pth")})
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.delenv(f"FACEBLUR_WEIGHTS_{L.LPIPS_BACKBONE.upper().replace('-', '_')}", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(WeightsMissingError, match="alexnet-owt"):
        L.LPIPSLoss({})
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, bad)
    with pytest.raises(WeightsIntegrityError, match="AlexNet"):
        L.LPIPSLoss({L.LPIPS_BACKBONE: str(bad)})
