"""RP-GAN's networks: the generator, the K projected discriminators and the full-image baseline.

Layer tables, initialisation and batch-norm semantics follow the original TensorFlow code
(ayanc/rpgan, rpglib/gen.py, disc.py, disc0.py; see docs/rpgan.md):
- G: FC z -> 4x4xF (no bias), then 4x4 stride-2 transposed convolutions halving the channels
  up to the image size (3 channels, tanh). Every layer but the last: batch norm with the
  current batch's statistics, eps 1e-3, no learnable scale, then a learnable per-channel bias
  (the original's `c*_b`), then ReLU.
- D_k: 4x4 stride-2 convolutions (padding 1) with LeakyReLU 0.2 down to 2x2, then a 2x2 valid
  convolution to one logit; no normalisation. Projected: input is P_k(x) at half resolution
  with one channel. Baseline: input is the RGB image, one layer deeper.
- Every weight U(-sqrt(3 / fan_in), +sqrt(3 / fan_in)), fan_in = kh * kw * C_in; biases 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import CheckpointError
from rpgan.projection import DiscriminatorBank, Layer

EPS = 1e-3  # TensorFlow's batch-norm epsilon in the original


def lecun_uniform_(weight: torch.Tensor, fan_in: int) -> torch.Tensor:
    bound = math.sqrt(3.0 / fan_in)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


class NoScaleBatchNorm(nn.Module):
    """Batch norm without scale, followed by a learnable bias, eps 1e-3.

    Normalises with the current batch's statistics (training and sampling alike, as the
    original). Population statistics (the original's fixbn: mean and biased variance of one
    large batch) are kept in buffers once computed, and used only when `use_population` is set.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("population_mean", torch.zeros(channels))
        self.register_buffer("population_var", torch.ones(channels))
        self.register_buffer("population_count", torch.zeros((), dtype=torch.long))
        self.use_population = False   # runtime switch, not saved
        self.recording = False        # fixbn pass: store this batch's statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recording:
            with torch.no_grad():
                xs = x.double()
                self.population_mean.copy_(xs.mean(dim=(0, 2, 3)))
                self.population_var.copy_(xs.var(dim=(0, 2, 3), unbiased=False))
                self.population_count.fill_(x.shape[0])
        if self.use_population:
            if int(self.population_count) == 0:
                raise CheckpointError("the generator has no population batch-norm statistics; "
                                      "compute them with scripts/rpgan_fixbn.py CKPT")
            out = F.batch_norm(x, self.population_mean.to(x.dtype),
                               self.population_var.to(x.dtype), training=False, eps=EPS)
        else:
            out = F.batch_norm(x, None, None, training=True, eps=EPS)
        return out + self.bias.view(1, -1, 1, 1).to(out.dtype)


class Generator(nn.Module):
    """z [B, z_dim] in U(-1, 1) -> images [B, 3, size, size] in (-1, 1)."""

    def __init__(self, z_dim: int = 100, width: int = 1024, image_size: int = 64):
        super().__init__()
        depth = int(math.log2(image_size)) - 2   # transposed convolutions 4 -> image_size
        if image_size != 4 * 2 ** depth or depth < 1:
            raise ValueError(f"image size {image_size} is not a power of two >= 8")
        self.z_dim, self.width, self.image_size = z_dim, width, image_size
        self.fc = nn.Linear(z_dim, 16 * width, bias=False)   # output viewed as [B, F, 4, 4]
        lecun_uniform_(self.fc.weight, z_dim)
        self.norms = nn.ModuleList([NoScaleBatchNorm(width)])
        self.deconvs = nn.ModuleList()
        cin = width
        for i in range(depth):
            last = i == depth - 1
            cout = 3 if last else cin // 2
            deconv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=last)
            lecun_uniform_(deconv.weight, 16 * cin)  # fan_in uses the *input* channels
            if last:
                nn.init.zeros_(deconv.bias)
            else:
                self.norms.append(NoScaleBatchNorm(cout))
            self.deconvs.append(deconv)
            cin = cout

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.width, 4, 4)
        h = F.relu(self.norms[0](h))
        for i, deconv in enumerate(self.deconvs):
            h = deconv(h)
            h = torch.tanh(h) if i == len(self.deconvs) - 1 else F.relu(self.norms[i + 1](h))
        return h

    def use_population_statistics(self, enabled: bool = True) -> None:
        for norm in self.norms:
            norm.use_population = enabled

    def has_population_statistics(self) -> bool:
        return all(int(n.population_count) > 0 for n in self.norms)

    def clear_population_statistics(self) -> None:
        for norm in self.norms:
            norm.population_count.zero_()

    @torch.no_grad()
    def record_population_statistics(self, z: torch.Tensor) -> None:
        """The original's fixbn: one forward pass of a large batch, each layer normalised with
        that batch's statistics, storing every layer's mean and biased variance."""
        for norm in self.norms:
            norm.recording, norm.use_population = True, False
        try:
            self(z)
        finally:
            for norm in self.norms:
                norm.recording = False


def discriminator_layers(input_size: int, in_channels: int, width: int) -> list[Layer]:
    """One discriminator: 4x4/2 convolutions (channels width * 2^j) down to 2x2, then a 2x2
    valid convolution to one logit."""
    count = int(math.log2(input_size))
    if 2 ** count != input_size or count < 2:
        raise ValueError(f"discriminator input size {input_size} is not a power of two >= 4")
    layers, cin = [], in_channels
    for j in range(count - 1):
        layers.append(Layer(cin, width * 2 ** j, 4, 2, 1, act=True))
        cin = width * 2 ** j
    layers.append(Layer(cin, 1, 2, 1, 0, act=False))
    return layers


def projected_discriminators(k: int, image_size: int, width: int, filters: torch.Tensor,
                             channels: int = 1, stride: int = 2, impl: str = "bmm",
                             chunks: int = 1) -> DiscriminatorBank:
    """K discriminators, D_k on projection k (rpglib/disc.py)."""
    layers = discriminator_layers(image_size // stride, channels, width)
    return DiscriminatorBank(k, layers, filters, stride, impl, chunks)


def full_image_discriminator(image_size: int, width: int, impl: str = "bmm") -> DiscriminatorBank:
    """The single-discriminator baseline on the RGB image (rpglib/disc0.py)."""
    return DiscriminatorBank(1, discriminator_layers(image_size, 3, width), None, impl=impl)
