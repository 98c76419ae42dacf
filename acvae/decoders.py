"""Generation networks: the 64 px image decoder (FC or channel-recurrent input), the
channel-recurrent latent decoder ("var_decoder"), the priors and the static attention."""
from __future__ import annotations

import math

import torch
from torch import nn

from acvae.encoders import W
from acvae.modules import (PerElementBias, bn, bn_init, conv, conv_init, deconv, lrelu, lstm,
                           zero_linear_bias)


def upsampling_stack(C: int, eps: float, mom: float, bias: bool = True) -> list[nn.Module]:
    """8C x 4 x 4 -> 2C x 64 x 64: deconv 8C, conv 8C, deconv 4C, deconv 2C, deconv 2C, conv 2C,
    each followed by BN and LReLU(0.1)."""
    out: list[nn.Module] = []
    for n_in, n_out, kind in ((8 * C, 8 * C, "de"), (8 * C, 8 * C, "conv"), (8 * C, 4 * C, "de"),
                              (4 * C, 2 * C, "de"), (2 * C, 2 * C, "de"), (2 * C, 2 * C, "conv")):
        layer = deconv(n_in, n_out, bias=bias) if kind == "de" else conv(n_in, n_out, 3, 1, 1, bias)
        out += [layer, bn(n_out, eps, mom), lrelu()]
    return out


def to_rgb(C: int, bias: bool = True) -> nn.Sequential:
    """conv 1x1 2C -> 3, Tanh (the VAE-GAN decoders' output block)."""
    return conv_init(nn.Sequential(conv(2 * C, 3, 1, bias=bias), nn.Tanh()))


class FCDecoder(nn.Module):
    """cvae decoder and cgan generator (and the cvaegan decoder without its output block).

    [Linear(A -> w*w*z) + LReLU of y, z] -> Linear(2*w*w*z -> w*w*8C) -> 8C x 4 x 4 -> stack.
    With `rgb` it ends in conv3x3 2C -> 3 and Tanh, as in cvae and cgan."""

    def __init__(self, C: int, z: int, A: int, eps: float, mom: float, bias: bool = True,
                 rgb: bool = False):
        super().__init__()
        n = W * W * z
        self.C = C
        self.attr = nn.Sequential(nn.Linear(A, n), lrelu())
        self.fc = nn.Linear(2 * n, W * W * 8 * C)
        tail = [conv(2 * C, 3, 3, 1, 1, bias), nn.Tanh()] if rgb else []
        self.net = nn.Sequential(*upsampling_stack(C, eps, mom, bias), *tail)
        bn_init(conv_init(self))
        zero_linear_bias(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([self.attr(y), z.flatten(1)], dim=1))
        return self.net(h.view(-1, 8 * self.C, W, W))


class LatentMapDecoder(nn.Module):
    """crvaegan / acvaegan image decoder: u + per-element bias ("add bias back"), conv3x3
    z -> 8C and BN (no activation), then the stack (2C x 64 x 64; to_rgb follows)."""

    def __init__(self, C: int, z: int, eps: float, mom: float, bias: bool = True):
        super().__init__()
        self.net = nn.Sequential(PerElementBias(z, W, W), conv(z, 8 * C, 3, 1, 1, bias),
                                 bn(8 * C, eps, mom), *upsampling_stack(C, eps, mom, bias))
        bn_init(conv_init(self))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)


class RecurrentDecoder(nn.Module):
    """var_decoder: z (z x 4 x 4) as T steps of w*w*z/T values; per step [Linear(A -> w*w*z/T)
    + LReLU of y_t, z_t] (attribute first) -> LSTM -> Linear -> u (z x 4 x 4)."""

    def __init__(self, C: int, z: int, A: int, T: int):
        super().__init__()
        step = W * W * z // T
        self.T = T
        self.attr = nn.Sequential(nn.Linear(A, step), lrelu())
        self.lstm = lstm(2 * step, W * W * 8 * C // T)
        self.out = nn.Linear(W * W * 8 * C // T, step)
        zero_linear_bias(self)

    def forward(self, z: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        seq, _ = self.lstm(torch.cat([self.attr(y_steps), z.reshape(b, self.T, -1)], dim=2))
        return self.out(seq.reshape(b * self.T, -1)).reshape(z.shape)


class MLPPrior(nn.Module):
    """p(z|y): Linear(A -> w*w*z) + LReLU, then Linear heads for mu and logvar.

    `small_init` is the cvae/cvaegan re-initialisation of the first weight to U(+-1e-4) (its
    bias and the heads keep Torch's defaults). Outputs have shape `shape` per sample."""

    def __init__(self, z: int, A: int, small_init: bool, shape: tuple[int, ...]):
        super().__init__()
        n = W * W * z
        self.shape = shape
        self.hidden = nn.Sequential(nn.Linear(A, n), lrelu())
        self.mu, self.logvar = nn.Linear(n, n), nn.Linear(n, n)
        if small_init:
            nn.init.uniform_(self.hidden[0].weight, -1e-4, 1e-4)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(y)
        return self.mu(h).view(-1, *self.shape), self.logvar(h).view(-1, *self.shape)


class LSTMPrior(nn.Module):
    """acvaegan's p(z | a * y): LSTM(A -> w*w*z/T) over the T attended attribute vectors, then per
    step Linear heads for mu and logvar; step t fills latent channels [t*z/T, (t+1)*z/T)."""

    def __init__(self, z: int, A: int, T: int):
        super().__init__()
        step = W * W * z // T
        self.z, self.T = z, T
        self.lstm = lstm(A, step)
        self.mu, self.logvar = nn.Linear(step, step), nn.Linear(step, step)

    def forward(self, y_steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = y_steps.shape[0]
        seq, _ = self.lstm(y_steps)
        seq = seq.reshape(b * self.T, -1)
        return (self.mu(seq).view(b, self.z, W, W), self.logvar(seq).view(b, self.z, W, W))


class StaticAttention(nn.Module):
    """acvaegan's data-independent attention a = softmax over the T time steps of W (T x A).

    W is Torch's CMul(T, A), initialised U(+-1/sqrt(T*A)). Each attribute's column sums to 1,
    so the matrix sums to A; step t sees the attributes a_t * y."""

    def __init__(self, T: int, A: int):
        super().__init__()
        bound = 1.0 / math.sqrt(T * A)
        self.weight = nn.Parameter(torch.empty(T, A).uniform_(-bound, bound))

    def forward(self) -> torch.Tensor:
        return torch.softmax(self.weight, dim=0)

    @staticmethod
    def attend(a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """B x A attributes -> B x T x A with y_t = a_t * y."""
        return a.unsqueeze(0) * y.unsqueeze(1)


def doubly_stochastic_loss(a: torch.Tensor) -> torch.Tensor:
    """mean over steps of (sum_j a_tj - A/T)^2: each step should get A/T attributes' worth."""
    T, A = a.shape
    return (a.sum(dim=1) - A / T).pow(2).mean()


def attention_entropy(a: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """(1/A) sum -a log a: the mean entropy over time steps per attribute.

    As Torch's EntropyRegularization, a is clamped to [eps, 1-eps] in the forward pass while the
    gradient -(log a + 1)/A reaches every element (the clamp does not block it)."""
    clamped = a + (a.clamp(eps, 1 - eps) - a).detach()
    return -(clamped * torch.log(clamped)).sum() / a.shape[1]


def replicate_steps(y: torch.Tensor, T: int) -> torch.Tensor:
    """crvaegan's y_t = y for every step: B x A -> B x T x A."""
    return y.unsqueeze(1).expand(-1, T, -1)


__all__ = ["FCDecoder", "LatentMapDecoder", "RecurrentDecoder", "MLPPrior", "LSTMPrior",
           "StaticAttention", "to_rgb", "doubly_stochastic_loss", "attention_entropy",
           "replicate_steps"]
