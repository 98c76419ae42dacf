"""Inference networks of the CelebA models: the 64 px conv trunk and the two latent heads.

Sizes (C base channels, z latent channels on a w x w = 4 x 4 map, T time steps, A attributes):
the trunk maps C x 64 x 64 to 8C x 4 x 4; the FC head (cvae, cvaegan) gives a flat latent of
w*w*z = 1024; the channel-recurrent head (crvaegan, acvaegan) gives z x 4 x 4 with a conv mean
and an LSTM log-variance over T channel groups.
"""
from __future__ import annotations

import torch
from torch import nn

from acvae.modules import (CReLU, PerElementBias, bn, bn_init, conv, conv_init, lrelu, lstm,
                           torch_default_init, zero_linear_bias)

W = 4  # the latent map is 4 x 4 (main.lua hard-codes latentDims = {4})


def from_rgb_encoder(C: int, eps: float, mom: float, bias: bool = True) -> nn.Sequential:
    """CReLU (3 -> 6), conv 1x1 6 -> C, BN, ReLU (the VAE-GAN encoders' input block)."""
    net = nn.Sequential(CReLU(), conv(6, C, 1, bias=bias), bn(C, eps, mom), nn.ReLU())
    return bn_init(conv_init(net))


class EncoderTrunk(nn.Module):
    """conv1 (5x5 s2) .. conv4-2: C x 64 x 64 -> 8C x 4 x 4. conv1, conv2, conv3-1, conv4-1 are
    stride 2, each BN + CReLU (doubling the channels); conv3-2 and conv4-2 (16C -> 8C) are 3x3 s1,
    BN + LReLU(0.1).

    `image_input` makes it the cvae encoder, which starts from the RGB image with CReLU (3 -> 6)
    and a 6 -> C conv1, and whose conv2 and conv3-1 BatchNorms are hard-coded to (1e-6, 0.9).
    """

    def __init__(self, C: int, eps: float, mom: float, bias: bool = True,
                 image_input: bool = False):
        super().__init__()
        fixed = (1e-6, 0.9) if image_input else (eps, mom)
        layers: list[nn.Module] = [CReLU()] if image_input else []
        layers += [conv(6 if image_input else C, C, 5, 2, 2, bias), bn(C, eps, mom), CReLU(),
                   conv(2 * C, 2 * C, 3, 2, 1, bias), bn(2 * C, *fixed), CReLU(),
                   conv(4 * C, 4 * C, 3, 2, 1, bias), bn(4 * C, *fixed), CReLU(),
                   conv(8 * C, 8 * C, 3, 1, 1, bias), bn(8 * C, eps, mom), lrelu(),
                   conv(8 * C, 8 * C, 3, 2, 1, bias), bn(8 * C, eps, mom), CReLU(),
                   conv(16 * C, 8 * C, 3, 1, 1, bias), bn(8 * C, eps, mom), lrelu()]
        self.net = nn.Sequential(*layers)
        bn_init(conv_init(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FCEncoder(nn.Module):
    """cvae / cvaegan encoder: trunk, attribute branch Linear(A -> w*w*z) + LReLU, fusion
    Linear(w*w*(z + 8C) -> w*w*z) + LReLU, then the mu and logvar heads (flat, w*w*z each)."""

    def __init__(self, C: int, z: int, A: int, eps: float, mom: float, bias: bool = True,
                 image_input: bool = False):
        super().__init__()
        n = W * W * z
        self.trunk = EncoderTrunk(C, eps, mom, bias, image_input)
        self.attr = nn.Sequential(nn.Linear(A, n), lrelu())
        self.fuse = nn.Sequential(nn.Linear(n + W * W * 8 * C, n), lrelu())
        self.mu, self.logvar = nn.Linear(n, n), nn.Linear(n, n)
        zero_linear_bias(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fuse(torch.cat([self.attr(y), self.trunk(x).flatten(1)], dim=1))
        return self.mu(h), self.logvar(h)


class RecurrentVariance(nn.Module):
    """crVAE's sigma^rnn: the fused map as T steps -> LSTM -> BatchNorm1d -> Linear per step.

    The BatchNorm1d is outside BNInit (Torch default: weight U(0,1), eps 1e-5, momentum 0.1
    whatever the options say); the Linear bias is zeroed in the CelebA models (not in the MNIST
    lstm, which has no BatchNorm either)."""

    def __init__(self, step_in: int, hidden: int, step_out: int, T: int, batch_norm: bool = True,
                 zero_bias: bool = True, layers: int = 2):
        super().__init__()
        self.T = T
        self.lstm = lstm(step_in, hidden, layers)
        self.norm = nn.BatchNorm1d(hidden) if batch_norm else nn.Identity()
        self.out = nn.Linear(hidden, step_out)
        torch_default_init(self.norm)
        if zero_bias:
            zero_linear_bias(self.out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b = h.shape[0]
        seq, _ = self.lstm(h.reshape(b, self.T, -1))
        out = self.out(self.norm(seq.reshape(b * self.T, -1)))
        return out.reshape(b, -1, h.shape[-2], h.shape[-1])


class RecurrentEncoder(nn.Module):
    """crvaegan / acvaegan encoder: the channel-recurrent latent block.

    Step t of the fused map h (z + 8C channels) holds [8 attribute channels from y_t, the image
    channels 32t .. 32t+31]; mu = conv3x3(h) + per-element bias (not recurrent); logvar comes
    from the LSTM over the T steps. `y_steps` is B x T x A (y repeated for crvaegan, the
    attended a_t * y for acvaegan)."""

    def __init__(self, C: int, z: int, A: int, T: int, eps: float, mom: float, bias: bool = True):
        super().__init__()
        self.T, self.z = T, z
        self.trunk = EncoderTrunk(C, eps, mom, bias)
        self.attr = nn.Sequential(nn.Linear(A, W * W * z // T), lrelu())
        self.mean = nn.Sequential(conv(z + 8 * C, z, 3, 1, 1, bias), PerElementBias(z, W, W))
        self.var = RecurrentVariance(W * W * (z + 8 * C) // T, W * W * 8 * C // T,
                                     W * W * z // T, T)
        conv_init(self.mean)
        zero_linear_bias(self.attr)

    def fuse(self, x: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        img = self.trunk(x)
        b, T = img.shape[0], self.T
        attr = self.attr(y_steps).reshape(b, T, self.z // T, W, W)
        steps = torch.cat([attr, img.reshape(b, T, -1, W, W)], dim=2)
        return steps.reshape(b, -1, W, W)

    def forward(self, x: torch.Tensor, y_steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fuse(x, y_steps)
        return self.mean(h), self.var(h)
