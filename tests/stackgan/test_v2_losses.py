"""StackGAN++ losses: colour consistency by hand, label rules, KL, detachment."""
import math

import torch
from torch import nn

from stackgan import losses as shared
from stackgan.v2 import losses


def hand_mean_cov(img):
    """Per-image channel means and biased covariances, computed pixel by pixel."""
    b, c, h, w = img.shape
    mus, covs = [], []
    for i in range(b):
        pixels = [img[i, :, y, x] for y in range(h) for x in range(w)]
        mu = sum(pixels) / len(pixels)
        cov = sum(torch.outer(p - mu, p - mu) for p in pixels) / len(pixels)
        mus.append(mu)
        covs.append(cov)
    return torch.stack(mus), torch.stack(covs)


def test_mean_covariance_against_a_hand_computation():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 3, 4) * 2 - 1
    mu, cov = losses.mean_covariance(img)
    hmu, hcov = hand_mean_cov(img)
    assert torch.allclose(mu.view(2, 3), hmu, atol=1e-6)
    assert torch.allclose(cov, hcov, atol=1e-6)


def test_color_consistency_against_a_hand_computation():
    torch.manual_seed(1)
    fakes = [torch.rand(2, 3, s, s, requires_grad=True) * 2 - 1 for s in (2, 4, 8)]
    fakes = [f.detach().requires_grad_(True) for f in fakes]
    alpha = 50.0
    terms = losses.color_consistency(fakes, alpha)
    m = [hand_mean_cov(f.detach()) for f in fakes]

    def mse(a, b):
        return ((a - b) ** 2).sum() / a.numel()

    expected = {"like_mu2": alpha * mse(m[2][0], m[1][0]),
                "like_cov2": 5 * alpha * mse(m[2][1], m[1][1]),
                "like_mu1": alpha * mse(m[1][0], m[0][0]),
                "like_cov1": 5 * alpha * mse(m[1][1], m[0][1])}
    assert set(terms) == set(expected)
    for name, value in expected.items():
        assert torch.allclose(terms[name], value, rtol=1e-5), name
    sum(terms.values()).backward()
    # the lower-resolution image of each pair is detached: the 64 branch gets no gradient
    assert fakes[0].grad is None
    assert fakes[1].grad.abs().sum() > 0 and fakes[2].grad.abs().sum() > 0


def test_color_consistency_pairs_by_branch_count():
    one = [torch.zeros(1, 3, 2, 2)]
    assert losses.color_consistency(one, 50.0) == {}
    two = one + [torch.zeros(1, 3, 4, 4)]
    assert set(losses.color_consistency(two, 50.0)) == {"like_mu2", "like_cov2"}


def test_kl_is_an_elementwise_mean():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    hand = -0.5 * ((1 + 0 - 1 - 1) + (1 + 1 - 0 - torch.e)) / 2
    assert torch.isclose(shared.kl_loss(mu, logvar), torch.tensor(hand))


class Fixed(nn.Module):
    """A 'discriminator' that returns preset logits per input, to check the label rules."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, image, mu=None):
        return self.table[int(image.flatten()[0])]


def test_conditional_d_labels_wrong_images_real_for_the_uncond_head():
    real, wrong, fake = (torch.full((2, 1), float(i)) for i in range(3))
    lc = [torch.tensor([0.3, -0.2]), torch.tensor([1.1, 0.4]), torch.tensor([-0.7, 2.0])]
    lu = [torch.tensor([0.5, 0.1]), torch.tensor([-1.0, 0.2]), torch.tensor([0.9, -0.3])]
    d = Fixed({i: [lc[i], lu[i]] for i in range(3)})
    bce = nn.BCELoss()
    p = [torch.sigmoid(x) for x in lc]
    q = [torch.sigmoid(x) for x in lu]
    one, zero = torch.ones(2), torch.zeros(2)
    out = losses.d_loss_conditional(d, real, wrong, fake, None, 1.0)
    expected = (bce(p[0], one) + bce(q[0], one) + bce(p[1], zero) + bce(q[1], one)
                + bce(p[2], zero) + bce(q[2], zero))
    assert torch.isclose(out["total"], expected, rtol=1e-5)
    out0 = losses.d_loss_conditional(d, real, wrong, fake, None, 0.0)
    expected0 = bce(p[0], one) + 0.5 * (bce(p[1], zero) + bce(p[2], zero))
    assert torch.isclose(out0["total"], expected0, rtol=1e-5)


def test_generator_adversarial_and_unconditional_d():
    d = Fixed({0: [torch.tensor([0.2, -0.4]), torch.tensor([1.0, 0.0])],
               1: [torch.tensor([0.3, 0.3])]})
    bce, one, zero = nn.BCELoss(), torch.ones(2), torch.zeros(2)
    g = losses.g_adversarial(d, torch.zeros(2, 1), torch.zeros(2, 3), 2.0)
    expected = bce(torch.sigmoid(torch.tensor([0.2, -0.4])), one) \
        + 2.0 * bce(torch.sigmoid(torch.tensor([1.0, 0.0])), one)
    assert torch.isclose(g, expected, rtol=1e-5)
    du = Fixed({0: [torch.tensor([0.5, 0.5])], 1: [torch.tensor([-0.5, 0.1])]})
    out = losses.d_loss_unconditional(du, torch.zeros(2, 1), torch.ones(2, 1))
    expected = bce(torch.sigmoid(torch.tensor([0.5, 0.5])), one) \
        + bce(torch.sigmoid(torch.tensor([-0.5, 0.1])), zero)
    assert torch.isclose(out["total"], expected, rtol=1e-5)


def test_every_term_takes_the_loss_form():
    """Logit +20 with label 0 (float32's sigmoid is 1 there): sigmoid + BCELoss gives its
    clamp's 100, BCE with logits 20; logit -120 with label 1: 100 (the log clamp) against 120."""
    sure, low, high, far = (torch.tensor([v]) for v in (20.0, -20.0, 20.0, -120.0))
    forms = ("sigmoid_bce", "logits")
    # conditional: real (1, 1), wrong (0, 1), fake (0, 0); the fake's cond head is sure
    d = Fixed({0: [high, high], 1: [low, high], 2: [sure, low]})
    inputs = [torch.full((1, 1), float(i)) for i in range(3)]
    totals = [losses.d_loss_conditional(d, *inputs, None, 1.0, form)["total"]
              for form in forms]
    assert math.isclose((totals[0] - totals[1]).item(), 80.0, rel_tol=1e-4)
    du = Fixed({0: [high], 1: [sure]})
    totals = [losses.d_loss_unconditional(du, inputs[0], inputs[1], form)["total"]
              for form in forms]
    assert math.isclose((totals[0] - totals[1]).item(), 80.0, rel_tol=1e-4)
    dg = Fixed({0: [far, far]})
    g = [losses.g_adversarial(dg, inputs[0], torch.zeros(1, 3), 2.0, form) for form in forms]
    assert g[0].item() == 300.0 and math.isclose(g[1].item(), 360.0)
