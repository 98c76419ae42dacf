"""Conditioning augmentation, the part both versions share: the reparameterisation.

Each version's CA net (stackgan/v1/networks.py, stackgan/v2/networks.py) maps the text
embedding to (mu, logvar) its own way; the condition is then c = mu + eps * sigma with
sigma = exp(logvar / 2). eps is drawn on every call, in evaluation too, as both originals do.
"""
from __future__ import annotations

from typing import Callable

import torch


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   noise: Callable[[torch.Tensor], torch.Tensor] = torch.randn_like
                   ) -> torch.Tensor:
    """mu + eps * exp(logvar / 2) with eps = noise(sigma): a standard normal shaped and typed
    like sigma unless `noise` says otherwise (v1's TF variant draws a truncated normal,
    StackGAN++ draws it like mu, which differs under autocast, where exp gives float32)."""
    std = torch.exp(0.5 * logvar)
    return mu + noise(std) * std
