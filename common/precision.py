"""Numeric precision in one place: the RUN.PRECISION modes, their autocast dtype and gradient
scaler, and which computations leave autocast to run in float32.

- fp32: no autocast. bf16: autocast to bfloat16. fp16: autocast to float16 with a gradient
  scaler (which decides on the host, so fp16 does not combine with CUDA graphs).
- Run in float32 whatever the mode (half-precision inputs are upcast, float64 stays float64):
  the STNM op (its kernels have no half-precision form; common/ops) and the BCE losses
  (BCELoss is not autocast-safe; common/losses.py).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

MODES = ("fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
LOW_PRECISION = (torch.float16, torch.bfloat16)  # dtypes that the float32 computations upcast


def autocast(device_type: str, mode: str):
    """The autocast region of a mode (a no-op context for fp32)."""
    dtype = AUTOCAST_DTYPES[mode]
    return nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)


def float32_region(device_type: str):
    """Autocast switched off: what runs inside computes in its inputs' dtype."""
    return torch.autocast(device_type, enabled=False)


def upcast(x: torch.Tensor) -> torch.Tensor:
    """A half-precision tensor as float32; any other dtype as it is."""
    return x.float() if x.dtype in LOW_PRECISION else x


def graph_safe(mode: str) -> bool:
    """Whether a mode can run inside CUDA graphs (fp16's scaler decides on the host)."""
    return mode != "fp16"


class Precision:
    """A run's precision: `autocast()` around the forward passes, `scaler` around backward."""

    def __init__(self, mode: str, device: torch.device):
        self.mode, self.device_type = mode, device.type
        self.dtype = AUTOCAST_DTYPES[mode]
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")

    def autocast(self):
        return autocast(self.device_type, self.mode)
