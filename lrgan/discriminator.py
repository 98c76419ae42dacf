"""The LR-GAN discriminator: the DCGAN one (docs/lrgan.md, "What is faithful").

Bias-free convolutions; stride-2 stages from nsize down to 4x4 (no BatchNorm on the first),
LeakyReLU(0.2), then a 4x4 convolution to one value. Layer names follow the original
(`main.conv{size}`, `main.bn{size}`). The original ends in a sigmoid and uses BCELoss; here
`forward` returns the logit and the loss applies the sigmoid (TRAIN.LOSS: sigmoid + BCELoss as the
original by default, or BCE with logits, which differs where D is confident: common/losses.py).
"""
from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    def __init__(self, nsize: int = 32, nc: int = 3, ndf: int = 64):
        super().__init__()
        self.main = nn.Sequential()
        d_in, d_out, size = nc, ndf, nsize
        while size > 4:
            self.main.add_module(f"conv{size}", nn.Conv2d(d_in, d_out, 4, 2, 1, bias=False))
            if size < nsize:
                self.main.add_module(f"bn{size}", nn.BatchNorm2d(d_out))
            self.main.add_module(f"lrelu{size}", nn.LeakyReLU(0.2, inplace=True))
            d_in, d_out, size = d_out, 2 * d_out, size // 2
        self.main.add_module(f"conv{size}", nn.Conv2d(d_in, 1, 4, 1, 0, bias=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1) logits (the original's output is their sigmoid)."""
        return self.main(images).view(-1, 1)
