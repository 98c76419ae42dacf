"""Importance-sampled log-likelihood of a VAE (crVAE's MNIST evaluation).

log p(x) ~= logsumexp_k [log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x)] - log K, z_k ~ q(z|x),
and the variational lower bound (vlb) is the mean of the same terms. The original printed the
mean estimate (a negative number) as "NLL"; here `nll` is its negation. Decoder probabilities are
clamped to [clamp, 1 - clamp] as the original's final evaluation did (1e-5).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

LOG_2PI = math.log(2 * math.pi)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed per example (all dims but the first)."""
    return (-0.5 * (z.pow(2) + LOG_2PI)).flatten(1).sum(1)


def log_gaussian(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed per example."""
    return (-0.5 * ((z - mu).pow(2) / logvar.exp() + LOG_2PI + logvar)).flatten(1).sum(1)


def bernoulli_log_likelihood(x: torch.Tensor, probs: torch.Tensor, clamp: float = 1e-5):
    """sum x log p + (1 - x) log(1 - p) per example, p clamped to [clamp, 1 - clamp]."""
    p = probs.clamp(clamp, 1 - clamp)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(1)


@torch.no_grad()
def importance_sampled(encode: Callable, log_likelihood: Callable, x: torch.Tensor,
                       samples: int, chunk: int = 1, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x) estimates, vlb) per example of the batch x, with `samples` draws from q(z|x).

    encode(x) -> (mu, logvar); log_likelihood(x, z) -> log p(x|z) per example. `chunk` draws are
    evaluated together as one batch of len(x) * chunk (networks must be in evaluation mode)."""
    mu, logvar = encode(x)
    std = torch.exp(0.5 * logvar)
    terms = []
    done = 0
    while done < samples:
        k = min(chunk, samples - done)
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = (mu + std * eps).reshape(k * mu.shape[0], *mu.shape[1:])
        xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:])
        mus = mu.unsqueeze(0).expand(k, *mu.shape).reshape(z.shape)
        logvars = logvar.unsqueeze(0).expand(k, *logvar.shape).reshape(z.shape)
        w = log_likelihood(xs, z) + log_standard_normal(z) - log_gaussian(z, mus, logvars)
        terms.append(w.view(k, x.shape[0]))
        done += k
    w = torch.cat(terms)
    return torch.logsumexp(w, dim=0) - math.log(samples), w.mean(dim=0)


def evaluate(encode: Callable, log_likelihood: Callable, images: torch.Tensor, samples: int,
             batch_size: int = 128, chunk: int = 1, seed: int = 0, device="cpu") -> dict:
    """Mean log-likelihood estimate, NLL and vlb over `images` (N x 1 x 28 x 28 in {0, 1})."""
    gen = torch.Generator(device=device).manual_seed(seed)
    lls, vlbs = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        ll, vlb = importance_sampled(encode, log_likelihood, x, samples, chunk, gen)
        lls.append(ll.cpu())
        vlbs.append(vlb.cpu())
    ll, vlb = torch.cat(lls), torch.cat(vlbs)
    return {"samples": samples, "images": len(ll), "log_likelihood": ll.mean().item(),
            "nll": -ll.mean().item(), "vlb": vlb.mean().item()}
