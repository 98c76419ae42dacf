"""crVAE's MNIST ablation models (crVAE repo, main_mnist.lua): baseline, conv and lstm latents.

All take a binary 1 x 28 x 28 digit, use C = 32 and z = 64 on a 4 x 4 map, and decode to
Bernoulli probabilities (Sigmoid). They differ in the latent block:
  baseline  flat: Linear(4096 -> 1024) for mu and logvar, decoder input Linear(1024 -> 4096);
  conv      4 x 4 maps: conv3x3 8C -> z for mu and logvar, decoder input conv3x3 z -> 8C + BN;
  lstm      mu = Linear(4096 -> 1024) + per-element bias; logvar from an LSTM over T channel
            groups of the image features; z -> LSTM "var_decoder" -> u -> decoder.
baseline and conv hard-code their BatchNorms to (1e-6, 0.9); lstm uses MODEL.BN_EPS/MOMENTUM.
"""
from __future__ import annotations

import torch
from torch import nn

from acvae.encoders import W, RecurrentVariance
from acvae.modules import (CReLU, PerElementBias, bn, bn_init, conv, conv_init, deconv, lrelu,
                           lstm, zero_linear_bias)

LATENTS = ("baseline", "conv", "lstm")


class MNISTEncoder(nn.Module):
    def __init__(self, latent: str, C: int, z: int, T: int, eps: float, mom: float,
                 bias: bool = True):
        super().__init__()
        if latent != "lstm":
            eps, mom = 1e-6, 0.9
        k3, p3 = (3, 1) if latent == "lstm" else (5, 2)
        self.latent, self.z = latent, z
        self.trunk = nn.Sequential(
            conv(1, C, 5, 2, 3, bias), bn(C, eps, mom), CReLU(),                       # 28 -> 15
            conv(2 * C, 2 * C, 3, 1, 1, bias), bn(2 * C, eps, mom), lrelu(),
            conv(2 * C, 2 * C, 3, 2, 1, bias), bn(2 * C, eps, mom), CReLU(),           # -> 8
            conv(4 * C, 4 * C, 3, 1, 1, bias), bn(4 * C, eps, mom), lrelu(),
            conv(4 * C, 4 * C, k3, 2, p3, bias), bn(4 * C, eps, mom), CReLU(),         # -> 4
            conv(8 * C, 8 * C, 3, 1, 1, bias), bn(8 * C, eps, mom), lrelu())
        n, feat = W * W * z, W * W * 8 * C
        if latent == "baseline":
            self.mu, self.logvar = nn.Linear(feat, n), nn.Linear(feat, n)
        elif latent == "conv":
            self.mu, self.logvar = conv(8 * C, z, 3, 1, 1, bias), conv(8 * C, z, 3, 1, 1, bias)
        else:
            self.mu = nn.Sequential(nn.Flatten(), nn.Linear(feat, n), nn.Unflatten(1, (z, W, W)),
                                    PerElementBias(z, W, W))
        bn_init(conv_init(self))
        zero_linear_bias(self)
        if latent == "lstm":   # var_encoder: not in the original's init lists
            self.var = RecurrentVariance(feat // T, feat // T, n // T, T, batch_norm=False,
                                         zero_bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        if self.latent == "baseline":
            return self.mu(h.flatten(1)), self.logvar(h.flatten(1))
        if self.latent == "conv":
            return self.mu(h), self.logvar(h)
        return self.mu(h), self.var(h)


class MNISTDecoder(nn.Module):
    def __init__(self, latent: str, C: int, z: int, T: int, eps: float, mom: float,
                 bias: bool = True):
        super().__init__()
        if latent != "lstm":
            eps, mom = 1e-6, 0.9
        self.latent, self.C, self.T = latent, C, T
        if latent == "baseline":
            head: list[nn.Module] = [nn.Linear(W * W * z, W * W * 8 * C),
                                     nn.Unflatten(1, (8 * C, W, W))]
        else:
            head = [conv(z, 8 * C, 3, 1, 1, bias), bn(8 * C, eps, mom)]
            if latent == "lstm":
                head.insert(0, PerElementBias(z, W, W))
        self.net = nn.Sequential(
            *head,
            deconv(8 * C, 8 * C, bias=bias), bn(8 * C, eps, mom), lrelu(),             # -> 8
            conv(8 * C, 8 * C, 3, 1, 1, bias), bn(8 * C, eps, mom), lrelu(),
            deconv(8 * C, 4 * C, bias=bias), bn(4 * C, eps, mom), lrelu(),             # -> 16
            conv(4 * C, 4 * C, 3, 1, 1, bias), bn(4 * C, eps, mom), lrelu(),
            deconv(4 * C, 2 * C, p=2, bias=bias), bn(2 * C, eps, mom), lrelu(),        # -> 30
            conv(2 * C, 2 * C, 3, 1, 1, bias), bn(2 * C, eps, mom), lrelu(),
            conv(2 * C, 1, 3, 1, 0, bias), nn.Sigmoid())                               # -> 28
        bn_init(conv_init(self))
        zero_linear_bias(self)
        if latent == "lstm":   # var_decoder: LSTM over the T latent groups, default Linear bias
            step = W * W * z // T
            self.var_lstm = lstm(step, W * W * 8 * C // T)
            self.var_out = nn.Linear(W * W * 8 * C // T, step)

    def transform(self, z: torch.Tensor) -> torch.Tensor:
        """u = var_decoder(z) for the lstm latent, z itself otherwise."""
        if self.latent != "lstm":
            return z
        b = z.shape[0]
        seq, _ = self.var_lstm(z.reshape(b, self.T, -1))
        return self.var_out(seq.reshape(b * self.T, -1)).reshape(z.shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.transform(z))

    def var_parameters(self) -> list:
        return [] if self.latent != "lstm" else [*self.var_lstm.parameters(),
                                                  *self.var_out.parameters()]
