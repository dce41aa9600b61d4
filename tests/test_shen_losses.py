"""Shen et al. loss terms on tiny tensors against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from faceblur_bench.errors import WeightsIntegrityError
from faceblur_bench.methods.shen import losses as L
from faceblur_bench.methods.shen.vggface import VGGFaceTaps, save_random_dag

LABELS = torch.tensor([[0, 2, 2, 0],
                       [0, 4, 0, 0],
                       [0, 0, 6, 6],
                       [0, 0, 6, 6]])
V = torch.tensor([[0.0, 0.1, 0.3, 0.0],
                  [0.0, 0.5, 0.0, 0.0],
                  [0.0, 0.0, 0.2, 0.4],
                  [0.0, 0.0, 0.6, 0.8]])


def _pair():
    """Batch of 2: image 0 with the hand-made map; image 1 all background."""
    out = torch.zeros(2, 3, 4, 4)
    tgt = V.expand(2, 3, 4, 4).clone()
    labels = torch.stack([LABELS, torch.zeros_like(LABELS)])
    return out, tgt, labels


def test_adaptive_structural_loss_by_hand():
    out, tgt, labels = _pair()
    m = L.component_masks(labels)
    assert m.shape == (2, 8, 4, 4) and m[0].sum() == 7  # 2 brow + 1 eye + 4 nose pixels
    # image 0: brow (A=2) 3·(0.1+0.3)/2 = 0.6; eye (A=1) 3·0.5 = 1.5;
    # nose (A=4) 3·(0.2+0.4+0.6+0.8)/4 = 1.5 -> 3.6; image 1 has no component -> 0; mean 1.8
    assert L.structural_loss(out, tgt, m).item() == pytest.approx(1.8, abs=1e-6)
    # equal weights c/(H·W): 3·(0.4 + 0.5 + 2.0)/16 = 0.54375 for image 0 -> mean 0.271875
    assert L.structural_loss(out, tgt, m, "equal").item() == pytest.approx(0.271875, abs=1e-6)
    assert L.structural_loss(out, tgt, m, c=2.0).item() == pytest.approx(3.6, abs=1e-6)
    # textureless classes (face, hair, background) never count
    far = tgt.clone()
    far[:, :, LABELS == 0] += 10.0
    assert L.structural_loss(out, far, m).item() == pytest.approx(1.8 + 0.0, abs=1e-5)


def test_structural_loss_half_scale_masks():
    out, tgt, labels = _pair()
    mh = L.half_masks(L.component_masks(labels))
    assert mh.shape == (2, 8, 2, 2)
    # brow covers a quarter of coarse pixels (0,0) and (0,1): A = 2 fine px = 0.5 coarse px
    assert mh[0, 0].tolist() == [[0.25, 0.25], [0.0, 0.0]]
    oh, th = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2)
    # per present component: Σ M·3 / Σ M = 3 (brow, eye, nose) -> image 0: 9; mean 4.5
    assert L.structural_loss(oh, th, mh).item() == pytest.approx(4.5, abs=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        L.structural_loss(out, tgt, mh)


def test_content_loss_by_hand():
    out, tgt, _ = _pair()
    per_image = 3 * V.sum().item()  # 3 channels · 2.9
    assert L.content_loss([out], [tgt]).item() == pytest.approx(per_image, rel=1e-6)
    assert L.content_loss([out, out], [tgt, tgt]).item() == pytest.approx(2 * per_image, rel=1e-6)
    assert L.content_loss([out], [tgt], "mean").item() == pytest.approx(V.mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="one target per output"):
        L.content_loss([out], [])


def test_parsing_loss_by_hand():
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1).expand(1, 2, 1, 2).clone()
    labels = torch.tensor([[[1, 0]]])  # p = (1/4, 3/4) at both pixels
    want = -math.log(0.75) - math.log(0.25)
    assert L.parsing_loss(logits, labels).item() == pytest.approx(want, rel=1e-6)
    assert L.parsing_loss(logits, labels, "mean").item() == pytest.approx(want / 2, rel=1e-6)


def test_adversarial_terms_by_hand():
    z = torch.zeros(4)
    assert L.adversarial_loss(z).item() == pytest.approx(math.log(2))
    assert L.discriminator_loss(z, z).item() == pytest.approx(2 * math.log(2))
    # D(ŷ) = sigmoid(ln 3) = 3/4 -> -log(3/4)
    assert L.adversarial_loss(torch.full((2,), math.log(3))).item() == pytest.approx(
        -math.log(0.75))


def test_perceptual_loss_by_hand():
    a = (torch.zeros(2, 2, 2, 2), torch.zeros(2, 4, 1, 1))
    b = (torch.full((2, 2, 2, 2), 0.5), torch.ones(2, 4, 1, 1))
    # per image: 8·0.5 + 4·1 = 8
    assert L.perceptual_loss(a, b).item() == pytest.approx(8.0)
    assert L.perceptual_loss(a, b, "mean").item() == pytest.approx(0.5 + 1.0)


def test_eq11_weights():
    assert (L.LAMBDA_S, L.LAMBDA_P, L.LAMBDA_VGG, L.LAMBDA_ADV, L.C_STRUCT) == (
        50.0, 1e-4, 1e-5, 5e-5, 1.0)
    assert [L.HELEN_CLASSES[k] for k in L.STRUCTURAL_CLASSES] == [
        "left eyebrow", "right eyebrow", "left eye", "right eye", "nose", "upper lip", "teeth",
        "lower lip"]


def test_vggface_dag_loading(tmp_path):
    path = save_random_dag(tmp_path / "vgg_face_dag.pth")
    assert path.stat().st_size < 2_000_000  # broadcast views keep the fake file small
    sd = torch.load(path, weights_only=True)
    taps = VGGFaceTaps().load_dag(path)
    assert torch.equal(taps.convs["conv5_3"].weight, sd["conv5_3.weight"])
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    p2, p5 = taps(x)
    assert p2.shape == (2, 128, 8, 8) and p5.shape == (2, 512, 1, 1)
    # the input is scaled to 0-255 and the mean RGB removed before conv1_1
    manual = torch.relu(taps.convs["conv1_1"](x * 255 - torch.tensor(
        [129.186, 104.762, 93.594]).view(1, 3, 1, 1)))
    manual = torch.nn.functional.max_pool2d(
        torch.relu(taps.convs["conv1_2"](manual)), 2)
    assert torch.allclose(VGGFaceTaps(("pool1",)).load_dag(path)(x)[0], manual, atol=1e-4)
    L.perceptual_loss((p2, p5), (p2.detach() + 1, p5.detach())).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in taps.parameters())
    # refused: a missing layer, a wrong shape
    del sd["conv4_2.weight"]
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(WeightsIntegrityError, match="conv4_2.weight"):
        VGGFaceTaps().load_dag(tmp_path / "bad.pth")
    sd["conv4_2.weight"] = torch.zeros(512, 512, 5, 5)
    torch.save(sd, tmp_path / "bad2.pth")
    with pytest.raises(WeightsIntegrityError, match=r"conv4_2.weight has shape \(512, 512, 5, 5\)"):
        VGGFaceTaps().load_dag(tmp_path / "bad2.pth")
