"""Inputs and comparison helpers shared by the STNM tests."""
import os

import pytest
import torch

from common.ops import _build

# Poses that keep sampling positions off the pixel lattice, where the bilinear
# sample is not differentiable in theta (exact integer positions are kinks).
ROTATE_SCALE = [[1.13, 0.21, 0.07], [-0.17, 0.87, -0.04]]
SHRINK = [[1.71, 0.05, 0.33], [0.03, 1.93, -0.41]]     # scale > 1: object smaller
ENLARGE = [[0.61, -0.04, 0.13], [0.07, 0.53, -0.09]]   # scale < 1: object larger
OFF_CANVAS = [[1.0, 0.0, 3.5], [0.0, 1.0, -3.2]]       # samples entirely outside fg
PARTLY_OFF = [[1.27, 0.11, 0.93], [-0.08, 1.19, -0.71]]
IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]

# Why float32 comparisons leave d/dtheta out: d/dtheta sums, over pixels, a
# function that jumps wherever a sample crosses a pixel boundary.  Two float32
# implementations round sample positions differently, so over many pixels a few
# samples fall on opposite sides and d/dtheta differs by O(one pixel's term).
# float64 makes that negligible, and boundary_free_pose() avoids it in float32.


def boundary_free_pose(size):
    """Scale 1.25 with offsets that put every sample 1/8 pixel or more from a pixel
    boundary (x = 1.25 j + 1/8 for a source as large as the output)."""
    h, w = size
    return [[1.25, 0.0, 0.25 + 0.25 / max(w - 1, 1)], [0.0, 1.25, 0.25 + 0.25 / max(h - 1, 1)]]


def make_inputs(batch=2, channels=3, size=(7, 9), src_size=None, theta=ROTATE_SCALE,
                dtype=torch.float64, device="cpu", seed=0, jitter=0.05, mask=None):
    """canvas, fg, mask, theta with the given pose (plus per-sample jitter)."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    hf, wf = src_size or size

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    canvas = rand(batch, channels, h, w)
    fg = rand(batch, channels, hf, wf)
    if mask is None:
        m = torch.rand(batch, 1, hf, wf, generator=gen, dtype=dtype)
    else:
        m = torch.full((batch, 1, hf, wf), float(mask), dtype=dtype)
    pose = torch.tensor(theta, dtype=dtype).expand(batch, 2, 3)
    pose = pose + jitter * rand(batch, 2, 3)
    return [t.to(device) for t in (canvas, fg, m, pose)]


def with_grad(tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def grads(fn, inputs, seed=1):
    """Output and d(<out, g>)/d(inputs) for a fixed random g."""
    inputs = with_grad(inputs)
    out = fn(*inputs)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return out.detach(), torch.autograd.grad(out, inputs, g.to(out.device))


def assert_close(actual, expected, dtype, name, scale=1.0):
    tol = {torch.float64: 1e-10, torch.float32: 2e-5}[dtype] * scale
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol, msg=lambda m: f"{name}: {m}")


def require_ext():
    """Load the CPU extension (built once, then cached) or skip when no toolchain exists.

    A failed build is a test failure, not a skip.  Set GANREPRO_REQUIRE_EXT=1 to
    make a missing toolchain fail too (CI jobs that must test the kernels).
    """
    status = _build.load(require_cuda=False)
    if status.loaded:
        return
    missing = _build._missing_build_tools()
    if missing and os.environ.get("GANREPRO_REQUIRE_EXT") != "1":
        pytest.skip(f"cannot build the STNM extension: {missing[0]}")
    pytest.fail(f"STNM extension unavailable: {status.reason}\n{status.detail[-4000:]}")
