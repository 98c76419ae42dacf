"""The CUDA kernels against the reference and the CPU kernel (needs a GPU and nvcc).

Every float32 comparison runs for each kernel family (see KERNELS): the generic
strided kernels, and the dense ones with both backward variants (gather and
atomic scatter) and their thread layouts, so that all stay covered whichever is
the default.  Outputs and the gather's scratch buffer are allocated into
NaN-poisoned memory (cases.poison_cuda_cache), so an element a kernel forgets to
write or to zero, or reads without its having been written, shows up as a mismatch.
"""
import pytest
import torch

from common.ops import stnm, stnm_ref

from . import stnm_cases as cases

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")

# GANREPRO_STNM_CUDA settings (docs/custom_ops.md, "CUDA kernel variants").
KERNELS = {
    "generic": "generic",
    "dense": "",  # the defaults (gather or atomic by size)
    "gather": "dense,bwd=gather,fwd_px=2,bwd_px=2",
    "gather_split": "dense,bwd=gather,images=split",
    "atomic": "dense,bwd=atomic",
    "atomic_wide": "dense,bwd=atomic,bwd_px=2,pairs=1,images=split",
    "atomic_narrow": "dense,bwd=atomic,fwd_px=1,bwd_px=2,images=own,zero=rows",
    "atomic_front": "dense,bwd=atomic,pairs=1,images=own,zero=front",
}


@pytest.fixture(autouse=True, scope="module")
def _cuda_ext():
    cases.require_cuda_ext()


@pytest.fixture(params=KERNELS.values(), ids=KERNELS.keys())
def kernels(request, monkeypatch):
    monkeypatch.setenv("GANREPRO_STNM_CUDA", request.param)
    return request.param


def ext(*t, mask_grad="full"):
    return stnm(*t, impl="ext", mask_grad=mask_grad)


def ref(*t, mask_grad="full"):
    return stnm_ref(*t, mask_grad=mask_grad)


def assert_near(actual, expected, name, tol):
    """Error relative to the largest magnitude: sums over many pixels lose ~1e-6 in float32."""
    scale = expected.abs().max().clamp_min(1.0)
    error = (actual - expected).abs().max()
    assert error <= tol * scale, f"{name}: max error {error:.3g} (scale {scale:.3g})"


def check(inputs, mask_grad="full", with_theta=None, views=None):
    """Forward and gradients vs the reference.  In float32 d/dtheta is left out
    unless asked for (see stnm_cases: pixel-boundary jumps); float64 checks it.
    views(*inputs), if given, builds the op's arguments from the inputs inside the
    differentiated function (for expanded tensors, which leaves cannot be)."""
    float32 = inputs[0].dtype == torch.float32
    tol = 1e-4 if float32 else 1e-10
    with_theta = not float32 if with_theta is None else with_theta
    views = views or (lambda *t: t)
    cases.poison_cuda_cache(inputs)
    out, got = cases.grads(lambda *t: ext(*views(*t), mask_grad=mask_grad), inputs)
    out_ref, expected = cases.grads(lambda *t: ref(*views(*t), mask_grad=mask_grad), inputs)
    assert_near(out, out_ref, "forward", tol)
    names = ("canvas", "fg", "mask", "theta")[: 4 if with_theta else 3]
    for name, a, e in zip(names, got, expected):
        assert_near(a, e, f"d{name} ({mask_grad})", tol)


# ENLARGE_8X and COLLAPSED make the gather fall back to scattering; MIXED puts
# gathered and fallback images in one call.
POSES = [cases.ROTATE_SCALE, cases.SHRINK, cases.ENLARGE, cases.PARTLY_OFF, cases.OFF_CANVAS,
         cases.FLIPPED, cases.QUARTER_TURN, cases.LARGE_SCALE, cases.ENLARGE_8X, cases.COLLAPSED,
         cases.MIXED]
# (batch, size): the backward either gives each image its own block (small
# images or a batch that fills the GPU) or splits images over blocks.  Odd
# widths leave partial 32-wide tiles and misaligned tap pairs.
LAYOUTS = {"own_small": (8, (32, 32)), "own_batch": (300, (72, 72)), "split": (2, (96, 80)),
           "odd": (3, (45, 37))}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("pose", POSES, ids=range(len(POSES)))
@pytest.mark.parametrize("mask_grad", ["full", "original"])
def test_matches_ref(layout, pose, mask_grad, kernels):
    batch, size = layout
    check(cases.make_inputs(batch=batch, size=size, theta=pose, dtype=torch.float32,
                            device="cuda"), mask_grad)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("pose", [cases.ROTATE_SCALE, cases.PARTLY_OFF])
@pytest.mark.parametrize("mask_grad", ["full", "original"])
def test_matches_ref_float64(layout, pose, mask_grad):
    batch, size = layout
    check(cases.make_inputs(batch=batch, size=size, theta=pose, device="cuda"), mask_grad)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("channels", [1, 3])
def test_float32_theta_gradient_away_from_pixel_boundaries(layout, channels, kernels):
    batch, size = layout
    inputs = cases.make_inputs(batch=batch, channels=channels, size=size, dtype=torch.float32,
                               theta=cases.boundary_free_pose(size), jitter=0.0, device="cuda")
    check(inputs, with_theta=True)


@pytest.mark.parametrize("channels", [1, 2, 3, 5])
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_channel_counts(channels, layout, kernels):
    batch, size = layout
    check(cases.make_inputs(batch=batch, channels=channels, size=size, dtype=torch.float32,
                            device="cuda"))


@pytest.mark.parametrize("src_size", [(29, 36), (40, 27), (33, 33)])
def test_other_source_sizes(src_size, kernels):
    check(cases.make_inputs(batch=4, size=(32, 32), src_size=src_size, theta=cases.PARTLY_OFF,
                            dtype=torch.float32, device="cuda"))


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_cuda_equals_cpu_kernel_in_float64(layout):
    cases.require_ext()
    batch, size = layout
    inputs = cases.make_inputs(batch=batch, size=size, src_size=(size[0] - 3, size[1] + 5),
                               theta=cases.PARTLY_OFF)
    out_cpu, got_cpu = cases.grads(ext, inputs)
    out_gpu, got_gpu = cases.grads(ext, [t.cuda() for t in inputs])
    assert_near(out_gpu.cpu(), out_cpu, "forward", 1e-12)
    for name, a, e in zip(("canvas", "fg", "mask", "theta"), got_gpu, got_cpu):
        assert_near(a.cpu(), e, f"d{name}", 1e-10)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")  # the 1x1 case
def test_edge_cases(kernels):
    make = lambda **kw: cases.make_inputs(dtype=torch.float32, device="cuda", **kw)  # noqa: E731
    check(make(batch=1, size=(33, 47)))
    check(make(mask=0.0))
    check(make(mask=1.0))
    check(make(size=(1, 1)))
    check(make(size=(2, 70), src_size=(1, 9)))
    identity = make(theta=cases.IDENTITY, jitter=0.0, mask=1.0)
    torch.testing.assert_close(ext(*identity), identity[1], atol=1e-6, rtol=0)
    off = make(theta=cases.OFF_CANVAS)
    cases.poison_cuda_cache(off)
    out, (_, d_fg, d_mask, d_theta) = cases.grads(ext, off)
    torch.testing.assert_close(out, off[0], atol=0, rtol=0)
    assert d_fg.abs().max() == 0 and d_mask.abs().max() == 0 and d_theta.abs().max() == 0
    poisoned = make()
    poisoned[3][1, 1, 2] = float("nan")
    out = ext(*poisoned)
    assert out[1].isnan().all() and not out[0].isnan().any()


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_channels_last_and_non_contiguous(layout):
    batch, size = layout  # float64, so that d/dtheta is compared too
    inputs = cases.make_inputs(batch=batch, size=size, device="cuda")
    check([t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in inputs])
    wide = cases.make_inputs(batch=batch, channels=6, size=(size[0], 2 * size[1]), device="cuda")
    check([wide[0][:, ::2, :, ::2], wide[1][:, 1::2, :, 1::2], wide[2][:, :, :, ::2], inputs[3]])


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_float32_views(layout, kernels):
    """Views in float32: row-contiguous slices along B, C and H (which the dense
    kernels address through their strides), channels_last, column slices and
    expanded inputs (which go to the generic kernels)."""
    batch, size = layout
    h, w = size
    canvas, fg, mask, theta = cases.make_inputs(batch=2 * batch, channels=7, size=(h + 4, 2 * w),
                                                dtype=torch.float32, device="cuda")
    check([canvas[1::2, 2:5, 3:h + 3, :w], fg[::2, 4:7, 1:h + 1, w:], mask[1::2, :, 2:h + 2, 3:w + 3],
           theta[::2]])
    check([canvas[:batch, :3, :h, ::2], fg[:batch, 1:4, :h, :w], mask[:batch, :, :h, :w],
           theta[:batch]])
    channels_last = [t[:batch, :3, :h, :w].contiguous(memory_format=torch.channels_last)
                     for t in (canvas, fg)]
    check([*channels_last, mask[:batch, :, :h, :w].contiguous(), theta[:batch]])
    one_background = [canvas[:1, :3, :h, :w], fg[:batch, :3, :h, :w], mask[:batch, :, :h, :w],
                      theta[:1]]
    check(one_background, views=lambda c, f, m, t: (c.expand(batch, -1, -1, -1), f, m,
                                                    t.expand(batch, -1, -1)))


def test_lrgan_like_poses_large_batch(kernels):
    """The benchmark's pose distribution (scale 1.2-2.4) at a size where the
    default backward gathers, plus the float64 CPU kernel as a second opinion."""
    inputs = cases.make_inputs(batch=256, size=(64, 64), dtype=torch.float32, device="cuda")
    gen = torch.Generator().manual_seed(3)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(256, generator=gen)  # noqa: E731
    inputs[3] = torch.stack([u(1.2, 2.4), u(-0.2, 0.2), u(-0.8, 0.8), u(-0.2, 0.2), u(1.2, 2.4),
                             u(-0.8, 0.8)], 1).view(-1, 2, 3).cuda()
    check(inputs)


def test_batch_beyond_the_grid_limit(kernels):
    check(cases.make_inputs(batch=70_000, channels=1, size=(2, 3), dtype=torch.float32,
                            device="cuda"))


def test_batch_beyond_the_grid_limit_float64():
    check(cases.make_inputs(batch=70_000, channels=1, size=(2, 3), device="cuda"))


def test_gradcheck_float64():
    inputs = cases.with_grad(cases.make_inputs(batch=2, channels=2, size=(5, 6), device="cuda"))
    assert torch.autograd.gradcheck(lambda *t: ext(*t), inputs)
