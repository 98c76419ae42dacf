"""StackGAN v1 loss terms (and the KL term both versions share) against values by hand."""
import math

import torch

from common.losses import bce
from stackgan.losses import kl_loss
from stackgan.v1 import losses

LN2 = math.log(2.0)


def test_bce_on_logits_by_hand():
    # sigmoid(0) = 0.5: -log 0.5 for either label; sigmoid(ln 3) = 0.75
    assert math.isclose(bce(torch.zeros(4), 1.0).item(), LN2, rel_tol=1e-6)
    assert math.isclose(bce(torch.tensor([math.log(3.0)]), 1.0).item(),
                        -math.log(0.75), rel_tol=1e-6)
    assert math.isclose(bce(torch.tensor([math.log(3.0)]), 0.0).item(),
                        -math.log(0.25), rel_tol=1e-6)


def test_kl_is_an_elementwise_mean():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # elements: 0.5*mu^2 + 0.5*(exp(lv) - 1 - lv): 0.5, 0.5*(1 - ln 2), 0, 0 -> mean of four
    expected = (0.5 + 0.5 * (1 - LN2)) / 4
    assert math.isclose(kl_loss(mu, logvar).item(), expected, rel_tol=1e-6)
    assert kl_loss(torch.zeros(3, 5), torch.zeros(3, 5)).item() == 0.0


def test_stage1_discriminator_weights():
    real, wrong, fake = torch.tensor([math.log(3.0)]), torch.zeros(2), torch.tensor([0.0])
    total, parts = losses.discriminator_loss(real, wrong, fake)
    expected = -math.log(0.75) + 0.5 * (LN2 + LN2)
    assert math.isclose(total.item(), expected, rel_tol=1e-6)
    assert math.isclose(parts["real"].item(), -math.log(0.75), rel_tol=1e-6)


def test_stage2_discriminator_weights():
    l3 = torch.tensor([math.log(3.0)])             # p = 0.75
    zero = torch.tensor([0.0])                      # p = 0.5
    total, parts = losses.discriminator_loss(real=l3, wrong=zero, fake=-l3,
                                             real_uncond=zero, fake_uncond=l3)
    real_c, real_u = -math.log(0.75), LN2
    fake_c = -math.log(0.75)                        # BCE(p=0.25, 0)
    wrong_c, fake_u = LN2, -math.log(0.25)          # BCE(p=0.75, 0)
    expected = (real_c + real_u) / 2 + (fake_c + wrong_c + fake_u) / 3
    assert math.isclose(total.item(), expected, rel_tol=1e-6)
    assert math.isclose(parts["fake"].item(), (fake_c + fake_u) / 2, rel_tol=1e-6)


def test_generator_adversarial_terms():
    l3 = torch.tensor([math.log(3.0)])
    assert math.isclose(losses.generator_adversarial_loss(l3).item(), -math.log(0.75),
                        rel_tol=1e-6)
    both = losses.generator_adversarial_loss(l3, torch.tensor([0.0]))
    assert math.isclose(both.item(), -math.log(0.75) + LN2, rel_tol=1e-6)


def test_every_term_takes_the_loss_form():
    """A fake or wrong pair D is sure of (logit +20, label 0): float32's sigmoid is 1 there, so
    sigmoid + BCELoss gives its clamp's 100 where BCE with logits gives 20; weight 1/3 each."""
    sure, low, high = torch.tensor([20.0]), torch.tensor([-20.0]), torch.tensor([20.0])
    for name in ("wrong", "fake", "fake_uncond"):
        terms = {"wrong": low, "fake": low, "fake_uncond": low, name: sure}
        totals = [losses.discriminator_loss(real=high, real_uncond=high, form=form, **terms)[0]
                  for form in ("sigmoid_bce", "logits")]
        assert math.isclose((totals[0] - totals[1]).item(), 80 / 3, rel_tol=1e-4), name
    # the generator on a fake D rejects outright (-120): the log clamp caps each term at 100
    far = torch.tensor([-120.0])
    assert losses.generator_adversarial_loss(far, far).item() == 200.0
    assert math.isclose(losses.generator_adversarial_loss(far, far, "logits").item(), 240.0)
