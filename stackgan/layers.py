"""The layer both versions' networks are built from (the originals' `conv3x3`)."""
from __future__ import annotations

from torch import nn


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    """3x3 convolution, stride 1, padding 1, no bias."""
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)
