"""Criteria and weights of the acVAE family with the original normalisations.

MSE is a mean over every element; the KL terms are summed over all latent elements and divided
by the batch size (that is why the KL weights are ~1e-4); BCE is Torch's, with 1e-12 inside the
logs. Per-channel weights that the original applied to *gradients* (alpha1/alpha2 on the KL,
the v-weights on the latent reconstruction) are applied here to the per-element loss terms,
which gives the same gradients.
"""
from __future__ import annotations

import torch

BCE_EPS = 1e-12
# v-weights of the latent reconstruction per time step (weight_gradReconZ); T = 2: none.
LATREC_STEP_WEIGHTS = {8: (0.1, 1.5, 1.5, 1.25, 0.1, 0.1, 1.0, 1.0), 4: (0.1, 1.0, 0.1, 1.0)}
# How many leading time steps get alpha1 in the KL (weight_gradKLD); the rest get alpha2.
KL_ALPHA1_STEPS = {8: 3, 4: 2, 2: 1}


def mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (x - target).pow(2).mean()


def bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Torch7 BCECriterion: -mean(t log(p + eps) + (1 - t) log(1 - p + eps))."""
    return -(target * torch.log(p + BCE_EPS) + (1 - target) * torch.log(1 - p + BCE_EPS)).mean()


def gaussian_kl(mu1, logvar1, mu2=None, logvar2=None, weight: torch.Tensor | None = None):
    """KL(N(mu1, var1) || N(mu2, var2)) summed over the latent elements (times `weight`,
    broadcast per element) and divided by the batch size; N(0, I) when mu2/logvar2 are None.
    Gradients reach both Gaussians (GKLDCriterion / KLDCriterion)."""
    if mu2 is None:
        kl = -0.5 * (1 + logvar1 - mu1.pow(2) - logvar1.exp())
    else:
        kl = (-0.5 * (1 + logvar1) + 0.5 * logvar2
              + 0.5 * (logvar1.exp() + (mu1 - mu2).pow(2)) / logvar2.exp())
    if weight is not None:
        kl = kl * weight
    return kl.sum() / mu1.shape[0]


def kl_channel_weights(z: int, T: int, alpha1: float, alpha2: float,
                       device=None) -> torch.Tensor:
    """(z, 1, 1): alpha1 on the latent channels of the first steps, alpha2 on the rest."""
    if T not in KL_ALPHA1_STEPS:
        raise ValueError(f"the KL weighting supports 2, 4 or 8 time steps, not {T}")
    w = torch.full((z,), float(alpha2), device=device)
    w[:KL_ALPHA1_STEPS[T] * z // T] = alpha1
    return w.view(z, 1, 1)


def latrec_channel_weights(z: int, T: int, device=None) -> torch.Tensor:
    """(z, 1, 1): the v-weight of each latent channel (its time step's weight)."""
    steps = LATREC_STEP_WEIGHTS.get(T, (1.0,) * T)
    w = torch.tensor(steps, device=device).repeat_interleave(z // T)
    return w.view(z, 1, 1)


def weighted_mse(x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """mean(weight * (x - target)^2): MSECriterion with its gradient scaled per channel."""
    return (weight * (x - target).pow(2)).mean()


def discriminator_batch(real: torch.Tensor, recon: torch.Tensor, sample: torch.Tensor,
                        period: int) -> tuple[torch.Tensor, torch.Tensor]:
    """generate_discriminator_batch: (images, labels) mixing real and fake pictures.

    With the 1-based index i of the original and F = period: i % F == 0 a reconstruction,
    (i + 1) % F == 0 a prior sample, (i + 2) % F == 0 a *mismatched* real image (the real image
    of a random in-batch permutation paired with attributes i), all labelled 0; the rest are
    real, labelled 1 (F = 4: one real in four). Later rules overwrite earlier ones."""
    b = real.shape[0]
    i = torch.arange(1, b + 1, device=real.device)
    perm = torch.randperm(b).to(real.device)
    out = real.clone()
    labels = torch.ones(b, device=real.device)
    for mask, source in ((i % period == 0, recon), ((i + 1) % period == 0, sample),
                         ((i + 2) % period == 0, real[perm])):
        out[mask] = source[mask].to(out.dtype)  # fakes may be bf16 under autocast
        labels[mask] = 0.0
    return out, labels


def error_rate(p: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of wrong decisions, the prediction rounded at 0.5 (C round: 0.5 -> 1)."""
    return ((p >= 0.5).float() != labels).float().mean()
