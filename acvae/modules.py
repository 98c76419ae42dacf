"""Building blocks with the exact semantics of the Torch7 layers the acVAE code used.

PyTorch's own layers differ in ways that matter here: its dropout rescales by 1/(1-p), its
default BatchNorm weight is 1 (Torch7: uniform(0, 1)), and it has no per-element bias or batch
discrimination layer. The initialisers reproduce the original `ConvInit` / `BNInit` helpers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CReLU(nn.Module):
    """[relu(x), relu(-x)] along channels (Torch: ConcatAct, JoinTable(2), ReLU): 2x channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.cat([x, -x], dim=1))


class MaskDropout(nn.Module):
    """Torch7 `nn.Dropout(p, true)` ("v1"): training multiplies by a Bernoulli(1-p) mask with
    no rescaling; evaluation multiplies by (1-p)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * (1.0 - self.p)
        return x * torch.empty_like(x).bernoulli_(1.0 - self.p)


class SpatialMaskDropout(nn.Module):
    """Torch7 `nn.SpatialDropout(p, true)`: drops whole channels (one draw per sample and
    channel), no rescaling; with `stochastic_eval` it keeps dropping in evaluation mode."""

    def __init__(self, p: float = 0.5, stochastic_eval: bool = True):
        super().__init__()
        self.p, self.stochastic_eval = p, stochastic_eval

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not self.stochastic_eval:
            return x * (1.0 - self.p)
        mask = torch.empty(x.shape[0], x.shape[1], 1, 1, device=x.device, dtype=x.dtype)
        return x * mask.bernoulli_(1.0 - self.p)


class PerElementBias(nn.Module):
    """Torch7 `nn.Add(size)` with size C x H x W: one learnable bias per element of the map,
    initialised as `Add:reset(0.01)`, i.e. U(-0.01*sqrt(3), 0.01*sqrt(3))."""

    def __init__(self, *shape: int, stdv: float = 0.01):
        super().__init__()
        bound = stdv * math.sqrt(3.0)
        self.bias = nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class L2Normalize(nn.Module):
    """Torch7 `nn.Normalize(2)`: each row divided by (sum x^2 + 1e-10)^(1/2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(x.pow(2).sum(dim=1, keepdim=True) + 1e-10)


class BatchDiscrimination(nn.Module):
    """Minibatch discrimination as in stnbhwd's batchDisc branch (the one the authors used).

    M = f T^T (a Linear with zeroed bias) viewed as N x B x C; for every kernel k the output is
    o_k(i) = (1/N) sum_j exp(-||M_ik - M_jk||_1) over the whole batch, the pair j = i included
    (it adds exp(0)/N); the result is [f, o]. The gradient of |.| is sign(.) (0 at ties).
    """

    def __init__(self, n_in: int, kernels: int = 100, kernel_dim: int = 5):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Linear(n_in, kernels * kernel_dim)
        nn.init.zeros_(self.T.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = self.T(f).view(f.shape[0], self.kernels, self.kernel_dim).transpose(0, 1)
        dist = torch.cdist(m.contiguous(), m.contiguous(), p=1)         # kernels x N x N
        o = torch.exp(-dist).mean(dim=2).transpose(0, 1)                   # N x kernels
        return torch.cat([f, o], dim=1)


def lstm(n_in: int, hidden: int, layers: int = 2) -> nn.LSTM:
    """cudnn.LSTM(n_in, hidden, layers, batchFirst) as the code built it: weights and biases
    U(+-1/sqrt(hidden)) (PyTorch's default too), then the input-side forget-gate bias of every
    layer (cuDNN linLayerID 1; PyTorch bias_ih_l{k}[hidden:2*hidden]) set to 1."""
    net = nn.LSTM(n_in, hidden, num_layers=layers, batch_first=True)
    with torch.no_grad():
        for k in range(layers):
            getattr(net, f"bias_ih_l{k}")[hidden:2 * hidden].fill_(1.0)
    return net


# ---- initialisers (applied to the containers the original listed) ----------------------------
CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


def conv_init(module: nn.Module) -> nn.Module:
    """ConvInit: conv and deconv weights U(+-sqrt(1/(kW*kH*nOutputPlane))) (fan-out), bias 0."""
    for m in module.modules():
        if isinstance(m, CONV_TYPES):
            n_out = m.out_channels
            bound = math.sqrt(1.0 / (m.kernel_size[0] * m.kernel_size[1] * n_out))
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
                if m.bias is not None:
                    m.bias.zero_()
    return module


def bn_init(module: nn.Module) -> nn.Module:
    """BNInit: spatial BatchNorm weight 1, bias 0 (1-d BatchNorm was never listed)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def zero_linear_bias(module: nn.Module) -> nn.Module:
    """`for each nn.Linear in the container: bias:zero()`."""
    for m in module.modules():
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return module


def torch_default_init(module: nn.Module) -> nn.Module:
    """Torch7's reset() of modules the code left alone. Linear and Conv2d: weight and bias
    U(+-1/sqrt(fan_in)) (as PyTorch); ConvTranspose2d: fan_in = kW*kH*nInputPlane (PyTorch uses
    the output planes); BatchNorm: weight U(0, 1), bias 0 (PyTorch: weight 1)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if isinstance(m, nn.Linear):
                fan_in = m.in_features
            else:
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound)
        elif isinstance(m, BN_TYPES):
            with torch.no_grad():
                m.weight.uniform_(0.0, 1.0)
                m.bias.zero_()
    return module


def conv(n_in: int, n_out: int, k: int, s: int = 1, p: int = 0, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, k, s, p, bias=bias)


def deconv(n_in: int, n_out: int, p: int = 1, bias: bool = True) -> nn.ConvTranspose2d:
    """SpatialFullConvolution(n_in, n_out, 4, 4, 2, 2, p, p): doubles the map (p = 1)."""
    return nn.ConvTranspose2d(n_in, n_out, 4, 2, p, bias=bias)


def bn(channels: int, eps: float, momentum: float) -> nn.BatchNorm2d:
    """SpatialBatchNormalization(c, eps, mom): Torch7 and PyTorch use the same momentum rule."""
    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


def lrelu(slope: float = 0.1) -> nn.LeakyReLU:
    return nn.LeakyReLU(slope)


class frozen_bn_stats:
    """Context: BatchNorm layers of `modules` keep using batch statistics but leave their
    running statistics untouched (momentum 0), for re-running a forward pass exactly."""

    def __init__(self, *modules: nn.Module):
        self.layers = [m for mod in modules for m in mod.modules() if isinstance(m, BN_TYPES)]

    def __enter__(self):
        self.saved = [m.momentum for m in self.layers]
        for m in self.layers:
            m.momentum = 0.0
        return self

    def __exit__(self, *exc):
        for m, momentum in zip(self.layers, self.saved):
            m.momentum = momentum
