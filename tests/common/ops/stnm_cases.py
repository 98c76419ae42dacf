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
FLIPPED = [[-1.13, 0.09, 0.06], [0.04, -0.91, 0.11]]   # both axes mirrored
QUARTER_TURN = [[0.03, 1.11, 0.09], [-1.04, 0.02, -0.12]]  # source rows follow output columns
LARGE_SCALE = [[4.3, 0.2, -3.1], [0.1, 5.7, 4.9]]      # a small object near a corner
IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
# Poses whose gather window is unbounded, so the gather backward falls back to
# scattering for them (stnm_gather.h): an object enlarged ~8x, and a pose that
# (nearly) collapses every output row onto one source row.
ENLARGE_8X = [[0.11, 0.02, 0.05], [-0.01, 0.13, 0.02]]
COLLAPSED = [[0.9, 0.0, 0.1], [0.0, 0.0, 0.3]]
# One pose per batch element: gathered and fallback images in one call.
MIXED = [ROTATE_SCALE, ENLARGE_8X, FLIPPED, OFF_CANVAS, COLLAPSED, QUARTER_TURN, ENLARGE]

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
    """canvas, fg, mask, theta with the given pose, or list of poses cycled over the
    batch (plus per-sample jitter)."""
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
    pose = torch.tensor(theta, dtype=dtype)
    if pose.dim() == 3:  # one pose per batch element, cycled
        pose = pose[torch.arange(batch) % pose.shape[0]]
    pose = pose.expand(batch, 2, 3) + jitter * rand(batch, 2, 3)
    return [t.to(device) for t in (canvas, fg, m, pose)]


def with_grad(tensors):
    """Leaf copies that require grad and keep each tensor's strides, so that sliced
    (non-contiguous) inputs reach the op as such; expanded (overlapping) tensors
    cannot be copied that way and become contiguous."""
    return [_copy_keeping_strides(t.detach()).requires_grad_(True) for t in tensors]


def _copy_keeping_strides(t):
    try:
        return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device).copy_(t)
    except RuntimeError:  # overlapping memory (stride 0)
        return t.clone()


def poison_cuda_cache(tensors, copies=6):
    """Leave NaN-filled blocks with each CUDA tensor's element count in the caching allocator.

    The op allocates its outputs and gradients with the sizes of its inputs, and the
    allocator hands out a freed block of the same size first, so an element that a
    kernel fails to write (or to zero) reads as NaN instead of a lucky 0.  The
    gather backward's scratch buffer, (C + 1) / C times the canvas, is poisoned
    too, so that reading a value its first pass did not store shows up as well.
    """
    sizes = [(t.numel(), t) for t in tensors if t.is_cuda]
    if tensors and tensors[0].is_cuda and tensors[0].dim() == 4 and tensors[0].shape[1] > 0:
        canvas = tensors[0]
        sizes.append((canvas.numel() // canvas.shape[1] * (canvas.shape[1] + 1), canvas))
    blocks = [torch.full((n,), float("nan"), dtype=t.dtype, device=t.device)
              for n, t in sizes for _ in range(copies)]
    del blocks


def grads(fn, inputs, seed=1):
    """Output and d(<out, g>)/d(inputs) for a fixed random g."""
    inputs = with_grad(inputs)
    out = fn(*inputs)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return out.detach(), torch.autograd.grad(out, inputs, g.to(out.device))


def assert_close(actual, expected, dtype, name, scale=1.0):
    tol = {torch.float64: 1e-10, torch.float32: 2e-5}[dtype] * scale
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol, msg=lambda m: f"{name}: {m}")


# The named pose families every kernel test walks through.
POSES = {
    "rotate_scale": ROTATE_SCALE,
    "scale_gt_1": SHRINK,
    "scale_lt_1": ENLARGE,
    "partly_off": PARTLY_OFF,
    "off_canvas": OFF_CANVAS,
    "flipped": FLIPPED,
    "quarter_turn": QUARTER_TURN,
    "large_scale": LARGE_SCALE,
}


def require_cuda_ext():
    """Load the CUDA extension; on a GPU machine a failed build is a test failure."""
    if not torch.cuda.is_available():
        return
    status = _build.load(require_cuda=True)
    if not status.loaded:
        pytest.fail(f"CUDA extension unavailable: {status.reason}. Fix: {status.fix}\n"
                    f"{status.detail[-4000:]}")


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
