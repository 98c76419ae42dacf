"""The importance-sampled likelihood on cases with a known answer, and the MNIST test set."""
import math

import torch

from acvae import nll
from acvae.train_mnist import binarize, read_static_binarized


def gaussian_model(sigma2: float):
    """z ~ N(0, 1), x | z ~ N(z, sigma2): p(x) = N(x; 0, 1 + sigma2), and the exact posterior."""
    def log_likelihood(x, z):
        return (-0.5 * ((x - z).pow(2) / sigma2 + math.log(2 * math.pi * sigma2))).flatten(1).sum(1)

    def exact_posterior(x):
        mean = x / (1 + sigma2)
        var = torch.full_like(x, sigma2 / (1 + sigma2))
        return mean, var.log()

    def truth(x):
        s = 1 + sigma2
        return (-0.5 * (x.pow(2) / s + math.log(2 * math.pi * s))).flatten(1).sum(1)
    return log_likelihood, exact_posterior, truth


def test_exact_posterior_gives_the_exact_likelihood_for_any_k():
    ll, posterior, truth = gaussian_model(0.5)
    x = torch.tensor([[0.3], [-1.2], [2.0]])
    for k in (1, 5, 100):
        est, vlb = nll.importance_sampled(posterior, ll, x, k, chunk=7)
        assert torch.allclose(est, truth(x), atol=1e-5)
        assert torch.allclose(vlb, truth(x), atol=1e-5)


def test_a_poor_proposal_converges_from_below_as_k_grows():
    ll, _, truth = gaussian_model(0.5)
    x = torch.tensor([[0.3], [-1.2]])

    def poor(v):
        return torch.zeros_like(v), torch.zeros_like(v)          # q = the prior
    gen = torch.Generator().manual_seed(0)
    gaps = []
    for k in (1, 100, 10000):
        est, vlb = nll.importance_sampled(poor, ll, x.repeat(50, 1), k, chunk=500, generator=gen)
        gaps.append((truth(x.repeat(50, 1)) - est).mean().item())
    assert gaps[0] > gaps[1] > abs(gaps[2]) and abs(gaps[2]) < 0.01


def test_bernoulli_decoder_with_the_prior_as_proposal():
    """q = p(z) and a decoder that ignores z: log p(x) = sum x log p + (1 - x) log(1 - p)."""
    p = torch.full((1, 1, 2, 2), 0.8)
    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])

    def encode(v):
        return torch.zeros(len(v), 3), torch.zeros(len(v), 3)

    def log_likelihood(v, z):
        return nll.bernoulli_log_likelihood(v, p.expand(len(v), -1, -1, -1))
    result = nll.evaluate(encode, log_likelihood, x.repeat(3, 1, 1, 1), samples=5, batch_size=2)
    expected = 3 * math.log(0.8) + math.log(0.2)
    assert math.isclose(result["log_likelihood"], expected, rel_tol=1e-6)
    assert math.isclose(result["nll"], -expected, rel_tol=1e-6) and result["images"] == 3


def test_binarize_and_static_file(tmp_path):
    gen = torch.Generator().manual_seed(0)
    x = binarize(torch.full((10000,), 0.3), gen)
    assert set(x.unique().tolist()) == {0.0, 1.0} and abs(x.mean().item() - 0.3) < 0.02
    assert binarize(torch.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]
    rows = (torch.rand(3, 784) > 0.5).int().numpy()
    (tmp_path / "t.amat").write_text("\n".join(" ".join(map(str, r)) for r in rows))
    images = read_static_binarized(tmp_path / "t.amat")
    assert images.shape == (3, 1, 28, 28) and images.view(3, -1).int().numpy().tolist() == rows.tolist()
