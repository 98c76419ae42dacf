"""Loss normalisations, weights, the mixed D batch, and Torch7's adam / adam_gan."""
import math

import torch
from torch import nn

from acvae import losses
from acvae.optim import TorchAdam, gan_factor


def test_gaussian_kl_matches_closed_form_and_is_per_sample_sum():
    torch.manual_seed(0)
    mu1, lv1, mu2, lv2 = (torch.randn(4, 3) for _ in range(4))
    p = torch.distributions.Normal(mu1, (0.5 * lv1).exp())
    q = torch.distributions.Normal(mu2, (0.5 * lv2).exp())
    expected = torch.distributions.kl_divergence(p, q).sum() / 4
    assert torch.isclose(losses.gaussian_kl(mu1, lv1, mu2, lv2), expected, rtol=1e-5)
    std = torch.distributions.Normal(torch.zeros(4, 3), torch.ones(4, 3))
    assert torch.isclose(losses.gaussian_kl(mu1, lv1),
                         torch.distributions.kl_divergence(p, std).sum() / 4, rtol=1e-5)


def test_kl_and_latent_weights_per_time_step():
    w = losses.kl_channel_weights(64, 8, 3e-4, 2e-4).flatten()
    assert torch.all(w[:24] == 3e-4) and torch.all(w[24:] == 2e-4)
    assert losses.kl_channel_weights(64, 4, 1.0, 2.0).flatten()[:32].eq(1).all()
    v = losses.latrec_channel_weights(64, 8).flatten()
    expected = [0.1] * 8 + [1.5] * 16 + [1.25] * 8 + [0.1] * 16 + [1.0] * 16
    assert torch.allclose(v, torch.tensor(expected))
    assert losses.latrec_channel_weights(64, 2).eq(1).all()


def test_weighted_kl_weights_the_gradients_of_both_gaussians():
    mu1 = torch.zeros(2, 64, 4, 4, requires_grad=True)
    mu2 = torch.ones(2, 64, 4, 4, requires_grad=True)
    lv = torch.zeros(2, 64, 4, 4)
    w = losses.kl_channel_weights(64, 8, 3.0, 1.0)
    losses.gaussian_kl(mu1, lv, mu2, lv, w).backward()
    # d/dmu1 = (mu1 - mu2)/var2 / B, times the channel weight
    assert torch.allclose(mu1.grad[0, 0], torch.full((4, 4), -1.5))
    assert torch.allclose(mu1.grad[0, 40], torch.full((4, 4), -0.5))
    assert torch.allclose(mu2.grad, -mu1.grad)


def test_mse_and_bce_are_means():
    assert losses.mse(torch.tensor([1.0, 3.0]), torch.zeros(2)) == 5.0
    b = losses.bce(torch.tensor([0.5, 1.0]), torch.tensor([1.0, 1.0]))
    assert torch.isclose(b, torch.tensor(-math.log(0.5) / 2), atol=1e-6)


def test_discriminator_batch_layout():
    torch.manual_seed(0)
    real = torch.arange(8.0).view(8, 1, 1, 1)
    recon, sample = real + 100, real + 200
    images, labels = losses.discriminator_batch(real, recon, sample, 4)
    flat = images.flatten()
    assert labels.tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    assert flat[0] == 0 and flat[4] == 4                       # real
    assert flat[3] == 103 and flat[7] == 107                   # i % 4 == 0 (1-based): recon
    assert flat[2] == 202 and flat[6] == 206                   # (i + 1) % 4 == 0: sample
    assert 0 <= flat[1] < 8 and 0 <= flat[5] < 8               # (i + 2) % 4 == 0: a real image
    rate = losses.error_rate(torch.tensor([0.5, 0.2, 0.9, 0.1]), torch.tensor([1.0, 0, 0, 0]))
    assert rate == 0.25                                        # 0.5 rounds up, as C's round


def _torch7_adam(x, grads, lr, beta1, t0=0, m=0.0, v=0.0):
    for g in grads:
        t0 += 1
        m = beta1 * m + (1 - beta1) * g
        v = 0.999 * v + 0.001 * g * g
        x = x - lr * math.sqrt(1 - 0.999 ** t0) / (1 - beta1 ** t0) * m / (math.sqrt(v) + 1e-8)
    return x


def test_torch_adam_matches_the_torch7_formula_and_clips():
    p = nn.Parameter(torch.tensor([1.0]))
    opt = TorchAdam([{"params": [p], "name": "x", "lr": 0.1, "beta1": 0.5, "clip": 5.0}])
    for g in (0.3, -7.0):
        p.grad = torch.tensor([g])
        opt.step()
    assert math.isclose(p.item(), _torch7_adam(1.0, [0.3, -5.0], 0.1, 0.5), rel_tol=1e-6)


def test_adam_gan_warmup_and_gating_count_calls():
    assert [gan_factor(c) for c in (0, 9, 10, 29, 30)] == [50, 50, 5, 5, 1]
    p = nn.Parameter(torch.tensor([0.0]))
    opt = TorchAdam([{"params": [p], "name": "disc", "lr": 0.5}])
    opt.set_mode("disc", "gan_skip")
    p.grad = torch.tensor([1.0])
    opt.step()
    assert p.item() == 0.0 and opt.group("disc")["gan_calls"] == 1
    opt.set_mode("disc", "gan")
    opt.step()                           # call 1 < 10: lr / 50, first Adam step is ~lr
    assert math.isclose(p.item(), -0.5 / 50, rel_tol=1e-5)
    assert opt.group("disc")["mode"] == "adam" and opt.group("disc")["gan_calls"] == 2
    state = opt.state_dict()
    fresh = TorchAdam([{"params": [p], "name": "disc", "lr": 0.5}])
    fresh.load_state_dict(state)
    assert fresh.group("disc")["gan_calls"] == 2


def test_fresh_state_gives_the_cvae_prior_sign_steps_and_repeat_steps_twice():
    p = nn.Parameter(torch.tensor([0.0, 0.0]))
    opt = TorchAdam([{"params": [p], "name": "prior", "lr": 1e-3, "fresh_state": True}])
    for _ in range(3):
        p.grad = torch.tensor([1e-3, -50.0])
        opt.step()
    assert torch.allclose(p.detach(), torch.tensor([-3e-3, 3e-3]), rtol=1e-3)
    q = nn.Parameter(torch.tensor([1.0]))
    opt = TorchAdam([{"params": [q], "name": "D", "lr": 0.1, "beta1": 0.5, "repeat": 2}])
    q.grad = torch.tensor([0.4])
    opt.step()
    assert math.isclose(q.item(), _torch7_adam(1.0, [0.4, 0.4], 0.1, 0.5), rel_tol=1e-6)


def test_step_schedule_is_a_function_of_the_epoch():
    p = nn.Parameter(torch.zeros(1))
    opt = TorchAdam([{"params": [p], "name": "a", "lr": 1.0},
                     {"params": [], "name": "b", "lr": 1e-3, "decay": False}])
    for epoch, lr in ((0, 1.0), (59, 1.0), (60, 0.5), (120, 0.25), (5, 1.0)):
        opt.set_epoch(epoch, 60, 0.5)
        assert opt.group("a")["lr"] == lr and opt.group("b")["lr"] == 1e-3
