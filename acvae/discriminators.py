"""Discriminators and the latent-reconstruction (Q) network of the CelebA models.

All D convs are 5x5/3x3 stride 1 followed by max-pool 2, ReLU and channel dropout that stays on
in evaluation; the heads use Torch7's L2 Normalize, v1 Dropout (no rescaling) and batch
discrimination, so their outputs depend on the whole mini-batch.
"""
from __future__ import annotations

import torch
from torch import nn

from acvae.encoders import W
from acvae.modules import (BatchDiscrimination, L2Normalize, MaskDropout, PerElementBias,
                           SpatialMaskDropout, bn, conv, conv_init, lrelu, torch_default_init,
                           zero_linear_bias)


def from_rgb(C: int, bias: bool = True) -> nn.Sequential:
    """D input block: conv 1x1 3 -> C, ReLU (ConvInit: weight fan-out uniform, bias 0)."""
    return conv_init(nn.Sequential(conv(3, C, 1, bias=bias), nn.ReLU()))


def conv_trunk(C: int, n_in: int, bias: bool = True) -> nn.Sequential:
    """n_in x 64 x 64 -> 8C x 4 x 4: convs 5x5 C, 5x5 2C, 5x5 4C, 3x3 8C, each followed by
    max-pool 2, ReLU and SpatialDropout(0.5, stochastic inference)."""
    layers: list[nn.Module] = []
    for a, b, k in ((n_in, C, 5), (C, 2 * C, 5), (2 * C, 4 * C, 5), (4 * C, 8 * C, 3)):
        layers += [conv(a, b, k, 1, k // 2, bias), nn.MaxPool2d(2), nn.ReLU(),
                   SpatialMaskDropout(0.5)]
    return nn.Sequential(*layers)


def disc_head(n_in: int, width: int) -> nn.Sequential:
    """Linear(n_in -> width), Normalize(2), Dropout(0.5, v1), ReLU, batch discrimination
    (100 kernels of 5), Linear(width + 100 -> 1), Sigmoid. Linear biases are zeroed."""
    head = nn.Sequential(nn.Linear(n_in, width), L2Normalize(), MaskDropout(0.5), nn.ReLU(),
                         BatchDiscrimination(width, 100, 5), nn.Linear(width + 100, 1),
                         nn.Sigmoid())
    return zero_linear_bias(head)


class FlatDiscriminator(nn.Module):
    """cgan / cvaegan D: conv trunk -> Linear(w*w*8C -> w*w*C) + ReLU; attribute
    branch Linear(A -> 2*w*w*z) + LReLU; [attr, image] -> head. ConvInit on the convs, Linear
    biases zero. cgan takes RGB (n_in 3), cvaegan the C channels of its from_rgb."""

    def __init__(self, C: int, z: int, A: int, n_in: int, bias: bool = True):
        super().__init__()
        self.trunk = nn.Sequential(conv_trunk(C, n_in, bias), nn.Flatten(),
                                   nn.Linear(W * W * 8 * C, W * W * C), nn.ReLU())
        self.attr = nn.Sequential(nn.Linear(A, 2 * W * W * z), lrelu())
        self.head = disc_head(2 * W * W * z + W * W * C, W * W * C)
        conv_init(self)
        zero_linear_bias(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.attr(y), self.trunk(x)], dim=1)).view(-1)


class GANFeature(nn.Module):
    """crvaegan / acvaegan "gan_feature", shared by D and the Q network.

    Conv trunk (C -> 8C x 4 x 4) viewed as T steps of w*w*8C/T; attribute branch
    Linear(A -> w*w*z/T) + LReLU of the raw y, the same for every step; per step
    [attr, image] -> (z + 8C) x 4 x 4, the layout of the encoder's fused map. It keeps Torch's
    default initialisation (conv biases are not zero)."""

    def __init__(self, C: int, z: int, A: int, T: int, bias: bool = True):
        super().__init__()
        self.T = T
        self.trunk = conv_trunk(C, C, bias)
        self.attr = nn.Sequential(nn.Linear(A, W * W * z // T), lrelu())
        torch_default_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        img = self.trunk(x)
        b = img.shape[0]
        attr = self.attr(y).unsqueeze(1).expand(-1, self.T, -1)
        steps = torch.cat([attr, img.reshape(b, self.T, -1)], dim=2)
        return steps.reshape(b, -1, W, W)


class DiscHead(nn.Module):
    """crvaegan / acvaegan "disc": the fused (z + 8C) x 4 x 4 map flattened -> head."""

    def __init__(self, C: int, z: int):
        super().__init__()
        self.head = disc_head(W * W * (z + 8 * C), W * W * C)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.head(feature.flatten(1)).view(-1)


class LatentRecon(nn.Module):
    """The Q network (crVAE's mutual-information term): predicts u from the D feature map.

    conv3x3 (z + 8C) -> 2C, BN, LReLU(0.2); conv1x1 2C -> z, BN, LReLU(0.1); Linear over the
    w*w*z values; per-element bias. All Torch defaults (BN weight U(0, 1))."""

    def __init__(self, C: int, z: int, eps: float, mom: float, bias: bool = True):
        super().__init__()
        self.z = z
        self.convs = nn.Sequential(conv(z + 8 * C, 2 * C, 3, 1, 1, bias), bn(2 * C, eps, mom),
                                   lrelu(0.2), conv(2 * C, z, 1, bias=bias), bn(z, eps, mom),
                                   lrelu(0.1))
        self.fc = nn.Linear(W * W * z, W * W * z)
        self.bias = PerElementBias(z, W, W)
        torch_default_init(self.convs)
        torch_default_init(self.fc)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.convs(feature).flatten(1))
        return self.bias(h.view(-1, self.z, W, W))
