"""SAPPGAN: SAPP discriminator (shapes, pixel-wise projection), PW / encoder / adversarial losses by hand,
coarse-to-fine α, presets."""

from __future__ import annotations

import math

import pytest
import torch

from faceblur_bench.errors import UnknownNameError
from faceblur_bench.methods.sappgan import losses as L
from faceblur_bench.methods.sappgan import presets
from faceblur_bench.methods.sappgan.discriminator import SAPPDiscriminator, SAPPDiscriminatorConfig

LN2, LN3 = math.log(2.0), math.log(3.0)


def test_discriminator_outputs_per_image_and_per_pixel():
    torch.manual_seed(0)
    d = SAPPDiscriminator(SAPPDiscriminatorConfig(ch=4, n_classes=5))
    x = torch.rand(3, 3, 64, 32) * 2 - 1
    y = torch.randint(0, 5, (3, 64, 32))
    enc, dec = d(x, y)
    assert enc.shape == (3,) and dec.shape == (3, 1, 64, 32)
    with pytest.raises(ValueError, match="label map"):
        d(x)
    with pytest.raises(ValueError, match="multiples of 32"):
        d(torch.zeros(1, 3, 48, 48), torch.zeros(1, 48, 48, dtype=torch.long))
    u = SAPPDiscriminator(SAPPDiscriminatorConfig(ch=4, conditional=False, attention=False))
    assert u.embedding is None and u(x)[1].shape == (3, 1, 64, 32)


def test_decoder_output_is_marginal_plus_pixelwise_projection():
    torch.manual_seed(1)
    d = SAPPDiscriminator(SAPPDiscriminatorConfig(ch=2, levels=1, n_classes=3, attention=False)).eval()
    x = torch.rand(2, 3, 4, 6) * 2 - 1
    y = torch.randint(0, 3, (2, 4, 6))
    captured = {}
    d.up[-1].register_forward_hook(lambda m, i, o: captured.__setitem__("L", o))
    _, q = d(x, y)
    feat = captured["L"]  # (N, d, H, W)
    v = d.embedding.weight.detach()  # (N_cls, d), spectrally normalised as used
    marginal = d.dec_head(feat)
    m = torch.zeros(2, 1, 4, 6)
    for n in range(2):
        for i in range(4):
            for j in range(6):  # M_ij = V[y_ij] . L_ij  (eq. 5)
                m[n, 0, i, j] = torch.dot(v[y[n, i, j]], feat[n, :, i, j])
    assert torch.allclose(q, marginal + m, atol=1e-5)
    # the one-hot matrix form of eq. 4 gives the same F
    onehot = torch.nn.functional.one_hot(y, 3).float().view(2, -1, 3)
    f = (onehot @ v).view(2, 4, 6, 2).permute(0, 3, 1, 2)
    assert torch.allclose(d.project(feat, y), (f * feat).sum(1, keepdim=True), atol=1e-6)


def test_pw_decoder_loss_by_hand():
    q_real = torch.tensor([0.0, LN3]).view(1, 1, 1, 2)
    q_fake = torch.tensor([LN3, -LN3]).view(1, 1, 1, 2)
    # p_r = (1/2, 3/4): weights 1-p_r = (1/2, 1/4) -> ξ = (2/3, 1/3); A(-Q_r) = (ln2, ln(4/3))
    real = 2 / 3 * LN2 + 1 / 3 * math.log(4 / 3)
    # p_f = (3/4, 1/4) -> ξ = (3/4, 1/4); A(Q_f) = (ln4, ln(4/3))
    fake = 3 / 4 * math.log(4) + 1 / 4 * math.log(4 / 3)
    assert L.decoder_loss(q_real, q_fake).item() == pytest.approx(real + fake, rel=1e-6)
    plain = (LN2 + math.log(4 / 3)) / 2 + (math.log(4) + math.log(4 / 3)) / 2
    assert L.decoder_loss(q_real, q_fake, prediction_weighted=False).item() == pytest.approx(plain, rel=1e-6)
    # ξ normalises per image: a batch of two copies has the same loss
    two = L.decoder_loss(q_real.repeat(2, 1, 1, 1), q_fake.repeat(2, 1, 1, 1))
    assert two.item() == pytest.approx(real + fake, rel=1e-6)
    assert torch.allclose(L.xi(torch.tensor([[[[1.0, 3.0]]]])), torch.tensor([[[[0.25, 0.75]]]]))


def test_encoder_and_generator_adversarial_losses_by_hand():
    l_real, l_fake = torch.tensor([LN3]), torch.tensor([-LN3])
    # -log sigmoid(ln3) - log(1 - sigmoid(-ln3)) = 2 ln(4/3)
    assert L.encoder_loss(l_real, l_fake).item() == pytest.approx(2 * math.log(4 / 3), rel=1e-6)
    assert L.adv_enc_loss(l_fake).item() == pytest.approx(math.log(4), rel=1e-6)
    q_fake = torch.tensor([LN3, -LN3]).view(1, 1, 1, 2)
    # 1 - p_f = (1/4, 3/4) -> ξ same; A(-Q_f) = (ln(4/3), ln4)
    dec = 1 / 4 * math.log(4 / 3) + 3 / 4 * math.log(4)
    assert L.adv_dec_loss(q_fake).item() == pytest.approx(dec, rel=1e-6)
    alpha = 0.3
    got = L.adv_loss(l_fake, q_fake, alpha).item()
    assert got == pytest.approx(alpha * math.log(4) + (1 - alpha) * dec, rel=1e-6)


def test_coarse_to_fine_alpha_schedule():
    assert L.c2f_alpha(0, 300) == 1.0
    assert L.c2f_alpha(150, 300) == 0.5
    assert L.c2f_alpha(299, 300) == pytest.approx(1 / 300)
    alphas = [L.c2f_alpha(e, 10) for e in range(10)]
    assert all(a > b for a, b in zip(alphas, alphas[1:]))
    assert L.c2f_alpha(7, 10, coarse_to_fine=False) == L.ALPHA_WITHOUT_C2F
    with pytest.raises(ValueError):
        L.c2f_alpha(10, 10)


def test_feat_loss_distances_and_lambdas():
    a = [torch.ones(2, 1, 2, 2), torch.zeros(2, 2, 1, 1)]
    b = [torch.zeros(2, 1, 2, 2), torch.full((2, 2, 1, 1), 3.0)]
    assert L.feat_loss(a, b).item() == pytest.approx(1.0 + 9.0)
    assert L.feat_loss(a, b, "l2").item() == pytest.approx(2.0 + math.sqrt(18.0))
    assert (L.LAMBDA_PIXEL, L.LAMBDA_FEAT, L.LAMBDA_ADV) == (1.0, 1.0, 0.06)


def test_sappgan_presets_match_table_3():
    def flags(n):
        p = presets.preset(n)
        return (p["loss"]["adversarial"], p["model"]["discriminator"]["conditional"],
                p["loss"]["prediction_weighted"], p["loss"]["coarse_to_fine"])

    assert flags("S0") == (False, False, False, False)
    assert flags("S1") == (True, False, False, False)
    assert flags("S2") == (True, False, True, False)
    assert flags("S3") == (True, True, False, False)
    assert flags("S4") == (True, True, True, False)
    assert flags("S5") == (True, True, True, True) and presets.FULL == "S5"
    with pytest.raises(UnknownNameError, match="S5"):
        presets.preset("S6")
