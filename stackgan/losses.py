"""The loss terms both StackGAN versions compute, on discriminator logits.

Labels are real 1, fake 0, without smoothing. `form` (TRAIN.LOSS) is the BCE form of
common/losses.py: sigmoid + nn.BCELoss as both originals (sigmoid_bce, the default) or BCE with
logits, which differs where D is confident. The per-version combinations are in
stackgan/v1/losses.py and stackgan/v2/losses.py.
"""
from __future__ import annotations

import torch

from common.losses import bce


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) as both originals compute it: the mean over the batch
    AND the dimensions of -0.5 (1 + logvar - mu^2 - exp(logvar)) (not a sum over dimensions)."""
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


def matching_terms(real: torch.Tensor, wrong: torch.Tensor, fake: torch.Tensor,
                   form: str = "sigmoid_bce") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The matching-aware terms of a conditional head, in this order: BCE(real pair, 1),
    BCE(wrong pair, 0: a real picture with another caption), BCE(fake, 0)."""
    return bce(real, 1.0, form), bce(wrong, 0.0, form), bce(fake, 0.0, form)


def real_plus_half_mismatch(err_real: torch.Tensor, err_wrong: torch.Tensor,
                            err_fake: torch.Tensor) -> torch.Tensor:
    """real + (wrong + fake) / 2: v1's Stage-I D loss and StackGAN++'s with lambda_u = 0."""
    return err_real + (err_fake + err_wrong) * 0.5
