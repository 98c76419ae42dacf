"""StackGAN v1 D and G losses on discriminator logits (the KL term: stackgan/losses.py).

The original applies a sigmoid in D and nn.BCELoss; `form` (TRAIN.LOSS) picks that form
(sigmoid_bce, the default) or BCE with logits, which differs where D is confident
(common/losses.py).
Stage-I (no unconditional head):
  L_D = real + (wrong + fake) / 2
Stage-II (conditional + unconditional heads):
  L_D = (real + real_uncond) / 2 + (fake + wrong + fake_uncond) / 3
Generator: L_G = BCE(D_c(fake), 1) [+ BCE(D_u(fake), 1)] + KL weight * KL(mu, logvar).
"""
from __future__ import annotations

import torch

from common.losses import bce
from stackgan.losses import matching_terms, real_plus_half_mismatch


def discriminator_loss(real: torch.Tensor, wrong: torch.Tensor, fake: torch.Tensor,
                       real_uncond: torch.Tensor | None = None,
                       fake_uncond: torch.Tensor | None = None,
                       form: str = "sigmoid_bce") -> tuple[torch.Tensor, dict]:
    """Total D loss and its parts (logged as the original's D_loss_real/wrong/fake)."""
    err_real, err_wrong, err_fake = matching_terms(real, wrong, fake, form)
    if real_uncond is None:
        total = real_plus_half_mismatch(err_real, err_wrong, err_fake)
        return total, {"real": err_real, "wrong": err_wrong, "fake": err_fake}
    err_real_u, err_fake_u = bce(real_uncond, 1.0, form), bce(fake_uncond, 0.0, form)
    total = (err_real + err_real_u) / 2.0 + (err_fake + err_wrong + err_fake_u) / 3.0
    return total, {"real": (err_real + err_real_u) / 2.0, "wrong": err_wrong,
                   "fake": (err_fake + err_fake_u) / 2.0}


def generator_adversarial_loss(fake: torch.Tensor,
                               fake_uncond: torch.Tensor | None = None,
                               form: str = "sigmoid_bce") -> torch.Tensor:
    """Fakes labelled real by the conditional head (and the unconditional one, Stage-II)."""
    loss = bce(fake, 1.0, form)
    if fake_uncond is not None:
        loss = loss + bce(fake_uncond, 1.0, form)
    return loss
