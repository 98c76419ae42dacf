"""Weight initialisation: the PyTorch 0.1.12/0.2 defaults the original ran with, or modern ones.

The original's DCGAN `weights_init` calls are commented out, so its nets kept the framework's
defaults of 2017 (docs/lrgan.md, "Faithful switches", MODEL.INIT), which differ from today's in
two places:
- BatchNorm weights were drawn from U(0, 1) (today: ones);
- ConvTranspose weights and biases used U(+-1/sqrt(in_channels * k * k)) (today the fan-in is
  computed from out_channels).
Conv, Linear and LSTMCell defaults are the same distributions then and now. The pose head keeps
its special zero-weight init in both modes.
"""
from __future__ import annotations

import math

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lrgan.pose import PoseHead

MODES = ("legacy", "modern")


def legacy_init_(net: nn.Module) -> nn.Module:
    """Re-draw every layer with the 2017 defaults (in place, from the global torch RNG)."""
    for m in net.modules():
        if isinstance(m, PoseHead):
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            bound = 1.0 / math.sqrt(m.in_channels * math.prod(m.kernel_size))
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -bound, bound)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.uniform_(m.bias, -bound, bound)
        elif isinstance(m, _BatchNorm) and m.affine:
            nn.init.uniform_(m.weight, 0.0, 1.0)
            nn.init.zeros_(m.bias)
    return net


def initialise(net: nn.Module, mode: str) -> nn.Module:
    """'legacy' (the original's effective init) or 'modern' (this PyTorch's constructors)."""
    if mode not in MODES:
        raise ValueError(f"init mode must be one of {MODES}, got {mode!r}")
    return legacy_init_(net) if mode == "legacy" else net
