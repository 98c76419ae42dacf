"""StackGAN++ D and G losses and colour consistency (docs/stackgan_v2.md, "What one iteration
does", steps 2 and 3; the KL term is stackgan/losses.py).

The discriminators return logits; `form` (TRAIN.LOSS) computes BCE as the original's sigmoid +
nn.BCELoss (sigmoid_bce, the default; mean over the batch) or with logits, which differs where
D is confident (common/losses.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from common.losses import bce
from stackgan.losses import matching_terms, real_plus_half_mismatch

# Colour-consistency weights of the mean and covariance terms: hard-coded 1 and 5 in the original
# (TPAMI lambda1, lambda2); alpha = TRAIN.COEFF.COLOR_LOSS scales both.
COLOR_MEAN_WEIGHT = 1.0
COLOR_COV_WEIGHT = 5.0


def mean_covariance(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image channel means (B, C, 1, 1) and biased channel covariance (B, C, C) over pixels."""
    x = images.float()
    b, c, h, w = x.shape
    mu = x.mean(dim=(2, 3), keepdim=True)
    centred = (x - mu).reshape(b, c, h * w)
    return mu, torch.bmm(centred, centred.transpose(1, 2)) / (h * w)


def color_consistency(fakes: list[torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """alpha * [MSE(mu_hi, mu_lo) + 5 MSE(Sigma_hi, Sigma_lo)] for the two highest consecutive
    branch pairs (as the original: (-1, -2) and (-2, -3)); the lower branch is detached, so the
    gradient reaches only the higher-resolution branch. Returns the named terms."""
    terms: dict[str, torch.Tensor] = {}
    pairs = [(-1, -2, "2"), (-2, -3, "1")][:max(0, min(2, len(fakes) - 1))]
    for hi, lo, tag in pairs:
        mu_hi, cov_hi = mean_covariance(fakes[hi])
        mu_lo, cov_lo = mean_covariance(fakes[lo].detach())
        terms[f"like_mu{tag}"] = alpha * COLOR_MEAN_WEIGHT * F.mse_loss(mu_hi, mu_lo)
        terms[f"like_cov{tag}"] = alpha * COLOR_COV_WEIGHT * F.mse_loss(cov_hi, cov_lo)
    return terms


def d_loss_conditional(d, real, wrong, fake, mu, lambda_u: float,
                       form: str = "sigmoid_bce") -> dict[str, torch.Tensor]:
    """One branch's conditional D loss (step 2). `fake` and `mu` must already be detached.

    lambda_u > 0: real (1, 1), wrong (cond 0, uncond 1: it is a real photo), fake (0, 0), summed
    without a 1/2 factor. lambda_u == 0: v1 style, real + 0.5 * (wrong + fake), cond head only.
    """
    real_out, wrong_out, fake_out = d(real, mu), d(wrong, mu), d(fake, mu)
    err_real, err_wrong, err_fake = matching_terms(real_out[0], wrong_out[0], fake_out[0], form)
    if lambda_u > 0:
        err_real = err_real + lambda_u * bce(real_out[1], 1.0, form)
        err_wrong = err_wrong + lambda_u * bce(wrong_out[1], 1.0, form)
        err_fake = err_fake + lambda_u * bce(fake_out[1], 0.0, form)
        total = err_real + err_wrong + err_fake
    else:
        total = real_plus_half_mismatch(err_real, err_wrong, err_fake)
    return {"total": total, "real": err_real, "wrong": err_wrong, "fake": err_fake}


def d_loss_unconditional(d, real, fake, form: str = "sigmoid_bce") -> dict[str, torch.Tensor]:
    """BCE(D(x), 1) + BCE(D(G(z)), 0), no 1/2 factor (step 2). `fake` must be detached."""
    err_real, err_fake = bce(d(real)[0], 1.0, form), bce(d(fake)[0], 0.0, form)
    return {"total": err_real + err_fake, "real": err_real, "fake": err_fake}


def g_adversarial(d, fake, mu, lambda_u: float, form: str = "sigmoid_bce") -> torch.Tensor:
    """One branch's G loss: cond head to 1 (+ lambda_u * uncond head to 1). mu is NOT detached
    here (the original lets the CA net get gradient through D's conditional input)."""
    out = d(fake, mu) if mu is not None else d(fake)
    loss = bce(out[0], 1.0, form)
    if len(out) > 1 and lambda_u > 0:
        loss = loss + lambda_u * bce(out[1], 1.0, form)
    return loss
