"""The gather backward (csrc/stnm_gather.h) on the CPU, where it runs the same
per-pixel code as the dense CUDA gather: against the reference and against the
scatter backward, on every pose family, shapes, layouts and the fallback.

GANREPRO_STNM_CPU=bwd=gather selects it; ganrepro::stnm_gather_windows exposes the
per-image windows, so that the tests can tell gathered images from fallback ones
and check the windows themselves.
"""
import math
import platform

import pytest
import torch

from common.ops import stnm, stnm_ref

from . import stnm_cases as cases

MAX_CANDIDATES = 64  # kMaxGatherCandidates
# The gather adds, for each source pixel, the same products in the same order
# (output pixels by row, then column) as the scatter, so on x86-64, whose
# baseline build fuses no multiply-adds, the two agree bit for bit; elsewhere
# the compiler may fuse them differently.
EXACT = platform.machine() in ("x86_64", "AMD64")


@pytest.fixture(autouse=True, scope="module")
def _ext():
    cases.require_ext()


@pytest.fixture(autouse=True)
def gather(monkeypatch):
    monkeypatch.setenv("GANREPRO_STNM_CPU", "bwd=gather")


def ext(*t, mask_grad="full"):
    return stnm(*t, impl="ext", mask_grad=mask_grad)


def windows(theta, size, src_size):
    """(B, 9) rows jx, jy, j0, ix, iy, i0, half_j, half_i, ok, in theta's dtype."""
    return torch.ops.ganrepro.stnm_gather_windows(theta.detach(), list(size), list(src_size))


def gathered(inputs):
    """Which batch elements the gather handles (the others fall back to the scatter)."""
    canvas, fg, _, theta = inputs
    return windows(theta, canvas.shape[2:], fg.shape[2:])[:, 8] == 1


def scatter_grads(inputs, mask_grad, monkeypatch):
    monkeypatch.setenv("GANREPRO_STNM_CPU", "bwd=scatter")
    try:
        return cases.grads(lambda *t: ext(*t, mask_grad=mask_grad), inputs)
    finally:
        monkeypatch.setenv("GANREPRO_STNM_CPU", "bwd=gather")


def check(inputs, monkeypatch, mask_grad="full", ref_scale=1.0):
    """Gather vs the reference (as test_stnm_ext does) and vs the scatter backward."""
    dtype = inputs[0].dtype
    out, got = cases.grads(lambda *t: ext(*t, mask_grad=mask_grad), inputs)
    out_ref, expected = cases.grads(lambda *t: stnm_ref(*t, mask_grad=mask_grad), inputs)
    cases.assert_close(out, out_ref, dtype, "forward")
    checked = 4 if dtype == torch.float64 else 3  # see stnm_cases: pixel-boundary jumps
    for name, a, e in list(zip(("canvas", "fg", "mask", "theta"), got, expected))[:checked]:
        scale = ref_scale * (10.0 if name == "theta" else 1.0)
        cases.assert_close(a, e, dtype, f"d{name} vs ref ({mask_grad})", scale)
    _, scattered = scatter_grads(inputs, mask_grad, monkeypatch)
    for name, a, e in zip(("canvas", "fg", "mask", "theta"), got, scattered):
        if EXACT:
            assert torch.equal(a, e), f"d{name} differs from the scatter's ({mask_grad})"
        else:
            cases.assert_close(a, e, dtype, f"d{name} vs scatter ({mask_grad})")


POSES = {**cases.POSES, "identity": cases.IDENTITY}
FALLBACK_POSES = {"enlarge_8x": cases.ENLARGE_8X, "collapsed": cases.COLLAPSED}


@pytest.mark.parametrize("mask_grad", ["full", "original"])
@pytest.mark.parametrize("pose", POSES.values(), ids=POSES.keys())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gathered_poses(pose, mask_grad, dtype, monkeypatch):
    inputs = cases.make_inputs(batch=3, size=(13, 17), src_size=(11, 19), theta=pose, dtype=dtype)
    assert gathered(inputs).all()
    check(inputs, monkeypatch, mask_grad)


@pytest.mark.parametrize("pose", FALLBACK_POSES.values(), ids=FALLBACK_POSES.keys())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fallback_poses(pose, dtype, monkeypatch):
    inputs = cases.make_inputs(batch=3, size=(13, 17), src_size=(11, 19), theta=pose, dtype=dtype)
    assert not gathered(inputs).any()
    check(inputs, monkeypatch)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mixed_batch(dtype, monkeypatch):
    inputs = cases.make_inputs(batch=9, size=(16, 15), theta=cases.MIXED, dtype=dtype)
    ok = gathered(inputs)
    assert ok.any() and not ok.all()
    check(inputs, monkeypatch)


def lrgan_poses(count, seed=0):
    """LR-GAN-like poses as in benchmarks/stnm.py: scale 1.2-2.4, shear within 0.2,
    translation within 0.8."""
    gen = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(count, generator=gen)  # noqa: E731
    return torch.stack([u(1.2, 2.4), u(-0.2, 0.2), u(-0.8, 0.8),
                        u(-0.2, 0.2), u(1.2, 2.4), u(-0.8, 0.8)], 1).view(-1, 2, 3)


def test_lrgan_like_batch(monkeypatch):
    inputs = cases.make_inputs(batch=16, size=(48, 40), dtype=torch.float32)
    inputs[3] = lrgan_poses(16)
    assert gathered(inputs).all()
    # Thousands of float32 samples: a few sit where the reference rounds its
    # position differently (stnm_cases), hence the looser comparison with it.
    check(inputs, monkeypatch, ref_scale=5.0)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")  # 1-pixel grids
@pytest.mark.parametrize("size, src_size", [((1, 1), None), ((1, 7), None), ((6, 1), None),
                                            ((5, 6), (9, 4)), ((8, 8), (3, 5)),
                                            ((45, 37), (40, 41)), ((2, 70), (1, 9))])
def test_shapes(size, src_size, monkeypatch):
    inputs = cases.make_inputs(size=size, src_size=src_size)
    if 1 in size or 1 in (src_size or size):
        assert not gathered(inputs).any()  # a degenerate grid: the fallback
    check(inputs, monkeypatch)


@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_channel_counts_and_batch_of_one(channels, monkeypatch):
    check(cases.make_inputs(batch=1, channels=channels, size=(11, 13)), monkeypatch)


def test_views_and_channels_last(monkeypatch):
    canvas, fg, mask, theta = cases.make_inputs(channels=6, size=(9, 12))
    check([canvas[:, ::2, ::2, 1::2], fg[:, 1::2, ::2, ::2], mask[:, :, ::2, ::2], theta],
          monkeypatch)
    check([t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
           for t in cases.make_inputs(size=(6, 7))], monkeypatch)


def test_nan_and_far_away_poses_fall_back():
    inputs = cases.make_inputs(batch=3)
    inputs[3][0, 0, 0] = float("nan")
    inputs[3][1, :, 2] = 1e30
    assert gathered(inputs).tolist() == [False, False, True]
    out, got = cases.grads(ext, inputs)
    out_ref, expected = cases.grads(stnm_ref, inputs)
    assert out[0].isnan().all() and got[3][0].isnan().all()
    torch.testing.assert_close(out[1], inputs[0][1], atol=0, rtol=0)
    assert got[1][1].abs().max() == 0 and got[2][1].abs().max() == 0
    for a, e in zip(got[:3], expected[:3]):
        cases.assert_close(a[2], e[2], torch.float64, "gathered image")


def test_gradcheck():
    inputs = cases.with_grad(cases.make_inputs(batch=2, channels=2, size=(4, 5)))
    assert gathered(inputs).all()
    assert torch.autograd.gradcheck(lambda *t: ext(*t), inputs)


def test_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GANREPRO_STNM_CPU", "bwd=atomic")
    inputs = cases.with_grad(cases.make_inputs())
    with pytest.raises(ValueError, match="GANREPRO_STNM_CPU.*bwd=atomic.*expected"):
        ext(*inputs).sum().backward()


# ---------------------------------------------------------------------------------
# The windows themselves.


def random_poses(count, seed, scale=(0.45, 2.6)):
    """Rotated, sheared, mirrored and translated poses with scales in `scale`."""
    gen = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(count, generator=gen, dtype=torch.float64)  # noqa: E731
    angle, shear = u(-math.pi, math.pi), u(-0.3, 0.3)
    sx, sy = u(*scale), u(*scale)
    flip = torch.where(torch.rand(count, generator=gen) < 0.3, -1.0, 1.0).double()
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([sx * cos * flip, -sy * sin + shear, u(-1.2, 1.2)], 1),
                         torch.stack([sx * sin, sy * cos, u(-1.2, 1.2)], 1)], 1)
    return theta


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("size, src_size", [((24, 31), (24, 31)), ((17, 40), (33, 12))])
def test_window_holds_every_output_pixel_that_samples_a_source_pixel(dtype, size, src_size):
    """Brute force: every output pixel (i, j) whose exact sampling position has
    source pixel (y, x) as a tap lies in (y, x)'s candidate box."""
    theta = random_poses(64, seed=1).to(dtype)
    w = windows(theta, size, src_size).double()
    bounded = w[:, 8] == 1
    assert bounded.sum() >= 48, "most of these poses have bounded windows"
    theta, w = theta[bounded].double(), w[bounded]
    (h, wd), (hf, wf) = size, src_size
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, dtype=torch.float64),
                            torch.linspace(-1, 1, wd, dtype=torch.float64), indexing="ij")
    i, j = torch.meshgrid(torch.arange(h), torch.arange(wd), indexing="ij")
    for b in range(theta.shape[0]):
        t = theta[b]
        x = (t[0, 0] * xs + t[0, 1] * ys + t[0, 2] + 1) * (wf - 1) / 2
        y = (t[1, 0] * xs + t[1, 1] * ys + t[1, 2] + 1) * (hf - 1) / 2
        for dy in (0, 1):
            for dx in (0, 1):
                ty, tx = torch.floor(y) + dy, torch.floor(x) + dx
                inside = (tx >= 0) & (tx < wf) & (ty >= 0) & (ty < hf)
                jx, jy, j0, ix, iy, i0, half_j, half_i, _ = w[b]
                jc = jx * tx + jy * ty + j0
                ic = ix * tx + iy * ty + i0
                assert ((j - jc).abs() <= half_j)[inside].all(), f"pose {b}: column outside the box"
                assert ((i - ic).abs() <= half_i)[inside].all(), f"pose {b}: row outside the box"


def test_lrgan_poses_have_small_windows():
    """LR-GAN-like poses (scale 1.2-2.4, shear within 0.2, as in benchmarks/stnm.py):
    at most 2 x 2 candidates per source pixel, so the gather stays cheap."""
    theta = lrgan_poses(256)
    for size in ((32, 32), (64, 64), (128, 128)):
        w = windows(theta, size, size)
        assert w[:, 8].all()
        columns = torch.floor(2 * w[:, 6]) + 1
        rows = torch.floor(2 * w[:, 7]) + 1
        assert (columns * rows).max() <= 4, (columns * rows).max()


def test_unbounded_windows_are_refused():
    theta = torch.tensor([cases.ENLARGE_8X, cases.COLLAPSED, [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                          [[0.2, 0.0, 0.0], [0.0, 0.2, 0.0]], [[0.3, 0.0, 0.0], [0.0, 0.3, 0.0]]])
    ok = windows(theta, (32, 32), (32, 32))[:, 8]
    # scale 0.2 (5x enlarged): about 11 x 11 candidates, over the limit; 0.3: 7 x 7.
    assert ok.tolist() == [0, 0, 0, 0, 1]
    assert MAX_CANDIDATES == 64
