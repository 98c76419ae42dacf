"""The LR-GAN pose head: a linear map to 6 affine entries, hard-clamped, then turned into a theta.

The original orders the outputs (x_s, x_r, x_t, y_r, y_s, y_t) and reads them row-major as
T = [[x_s, x_r, x_t], [y_r, y_s, y_t]], a canvas -> source warp whose grid channels are
(row, column) = (y, x). `affine_grid` wants (x, y): both the rows and the first two columns
of T are swapped to get theta (docs/lrgan.md, "What is faithful"; swapping only the rows would
be wrong).
"""
from __future__ import annotations

import torch
from torch import nn

from common.ops import theta_from_lrgan

# Column order of the 6 outputs, as in the original's Gtransform / clampT.
ENTRIES = ("x_s", "x_r", "x_t", "y_r", "y_s", "y_t")


class PoseHead(nn.Linear):
    """Linear(nz -> 6) with the original's init: zero weight, bias [s0, 0, 0, 0, s0, 0].

    Every sample therefore starts with the same centred pose at the largest allowed object
    size. Its parameters keep the original's state-dict names (`weight`, `bias`).
    """

    def __init__(self, nz: int, maxobjscale: float, rot: float, translation: float = 1.0):
        super().__init__(nz, 6)
        self.maxobjscale, self.rot, self.translation = maxobjscale, rot, translation
        s, r, t = maxobjscale, rot, translation
        self.bounds = ((s, 2 * s), (-r, r), (-t, t), (-r, r), (s, 2 * s), (-t, t))
        # On the module's device from the start (no host-to-device copy per call, which a CUDA
        # graph could not capture); not persistent, so the state dict keeps the original keys.
        self.register_buffer("low", torch.tensor([b[0] for b in self.bounds]), persistent=False)
        self.register_buffer("high", torch.tensor([b[1] for b in self.bounds]), persistent=False)
        self.reset_pose()

    @torch.no_grad()
    def reset_pose(self) -> None:
        self.weight.zero_()
        self.bias.copy_(torch.tensor([self.maxobjscale, 0, 0, 0, self.maxobjscale, 0]))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """(B, nz) -> (B, 6) clamped pose entries in ENTRIES order."""
        return clamp_pose(super().forward(u), self.low, self.high)


def clamp_pose(raw: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Per-entry hard clamp (the original's clampT): zero gradient outside [low, high] and the
    full gradient inside *and at the bounds*, where the init sits (PyTorch 0.2's clamp). Recent
    PyTorch's clamp gives no gradient at a bound and a tensor-bound clamp half of it, which would
    freeze the scales at their initial value, so the rule is written out."""
    low, high = low.to(raw.dtype), high.to(raw.dtype)
    inside = (raw >= low) & (raw <= high)
    return torch.where(inside, raw, torch.maximum(torch.minimum(raw.detach(), high), low))


def pose_matrix(pose: torch.Tensor) -> torch.Tensor:
    """(B, 6) -> the original's (B, 2, 3) T in (y, x) order."""
    return pose.reshape(-1, 2, 3)


def pose_to_theta(pose: torch.Tensor) -> torch.Tensor:
    """(B, 6) pose -> (B, 2, 3) affine_grid theta (x, y order, align_corners=True):
    row 0 = [y_s, y_r, y_t], row 1 = [x_r, x_s, x_t] (common.ops.theta_from_lrgan)."""
    return theta_from_lrgan(pose_matrix(pose))
