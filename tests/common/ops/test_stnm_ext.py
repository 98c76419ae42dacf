"""The compiled op's CPU kernel against the reference, plus its registrations.

The CPU kernel runs the same per-pixel code (csrc/stnm_math.h) as the CUDA
kernel, so these tests also vouch for the CUDA kernel's arithmetic.
"""
import pytest
import torch

from common.ops import stnm, stnm_ref

from . import stnm_cases as cases


@pytest.fixture(autouse=True, scope="module")
def _ext():
    cases.require_ext()


def ext(*t, mask_grad="full"):
    return stnm(*t, impl="ext", mask_grad=mask_grad)


def ref(*t, mask_grad="full"):
    return stnm_ref(*t, mask_grad=mask_grad)


def check_against_ref(inputs, mask_grad="full", skip_theta=False):
    dtype = inputs[0].dtype
    skip_theta = skip_theta or dtype == torch.float32  # see stnm_cases: pixel-boundary jumps
    out, got = cases.grads(lambda *t: ext(*t, mask_grad=mask_grad), inputs)
    out_ref, expected = cases.grads(lambda *t: ref(*t, mask_grad=mask_grad), inputs)
    cases.assert_close(out, out_ref, dtype, "forward")
    names = ("canvas", "fg", "mask", "theta")[: 3 if skip_theta else 4]
    for name, a, e in zip(names, got, expected):
        scale = 10.0 if name == "theta" else 1.0  # sums over all pixels
        cases.assert_close(a, e, dtype, f"d{name} ({mask_grad})", scale)


POSES = cases.POSES


@pytest.mark.parametrize("mask_grad", ["full", "original"])
@pytest.mark.parametrize("pose", POSES.values(), ids=POSES.keys())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_ref(pose, mask_grad, dtype):
    check_against_ref(cases.make_inputs(theta=pose, dtype=dtype), mask_grad)


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_float32_theta_gradient_away_from_pixel_boundaries(channels):
    size = (23, 29)
    inputs = cases.make_inputs(batch=3, channels=channels, size=size, dtype=torch.float32,
                               theta=cases.boundary_free_pose(size), jitter=0.0)
    _, got = cases.grads(ext, inputs)
    _, expected = cases.grads(ref, inputs)
    cases.assert_close(got[3], expected[3], torch.float32, "dtheta", scale=10.0)


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 9])
def test_channel_counts(channels):
    # 1 and 3 have their own kernels; others run in groups of 4 with a remainder.
    check_against_ref(cases.make_inputs(channels=channels))


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")  # 1-pixel grids
@pytest.mark.parametrize("size, src_size", [((1, 1), None), ((1, 7), None), ((6, 1), None),
                                            ((5, 6), (9, 4)), ((8, 8), (3, 5))])
def test_shapes(size, src_size):
    check_against_ref(cases.make_inputs(size=size, src_size=src_size))


def test_batch_of_one():
    check_against_ref(cases.make_inputs(batch=1, size=(11, 13)))


@pytest.mark.parametrize("mask_value", [0.0, 1.0])
def test_constant_masks(mask_value):
    inputs = cases.make_inputs(mask=mask_value)
    check_against_ref(inputs)
    if mask_value == 0.0:
        torch.testing.assert_close(ext(*inputs), inputs[0], atol=0, rtol=0)


def test_identity():
    """At the identity every sample lands on a pixel centre, where d/dtheta is a
    one-sided derivative that depends on rounding; the other gradients are exact."""
    inputs = cases.make_inputs(theta=cases.IDENTITY, jitter=0.0, mask=1.0)
    torch.testing.assert_close(ext(*inputs), inputs[1], atol=1e-12, rtol=0)
    check_against_ref(cases.make_inputs(theta=cases.IDENTITY, jitter=0.0), skip_theta=True)


def test_off_canvas_gives_canvas_and_zero_gradients():
    inputs = cases.make_inputs(theta=cases.OFF_CANVAS)
    out, (_, d_fg, d_mask, d_theta) = cases.grads(ext, inputs)
    torch.testing.assert_close(out, inputs[0], atol=0, rtol=0)
    assert d_fg.abs().max() == 0 and d_mask.abs().max() == 0 and d_theta.abs().max() == 0


def test_far_away_poses_read_nothing():
    canvas, fg, mask, theta = cases.make_inputs(batch=2)
    theta[0, :, 2] = 1e30  # translations far beyond any int64 pixel index
    theta[1, :, 2] = -1e30
    torch.testing.assert_close(ext(canvas, fg, mask, theta), canvas, atol=0, rtol=0)


def test_nan_pose_propagates_like_the_reference():
    inputs = cases.make_inputs(batch=2)
    inputs[3][1, 0, 0] = float("nan")
    out, got = cases.grads(ext, inputs)
    out_ref, expected = cases.grads(ref, inputs)
    assert torch.equal(out.isnan(), out_ref.isnan()) and out[1].isnan().all()
    cases.assert_close(out[0], out_ref[0], torch.float64, "forward of the finite sample")
    assert got[3][1].isnan().all() and expected[3][1].isnan().all()


def test_channels_last_inputs_and_outputs():
    inputs = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
              for t in cases.make_inputs(size=(6, 7), channels=3)]
    check_against_ref(inputs)
    out, grads = cases.grads(ext, inputs)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert grads[0].is_contiguous(memory_format=torch.channels_last)
    assert grads[1].is_contiguous(memory_format=torch.channels_last)


def test_non_contiguous_inputs():
    canvas, fg, mask, theta = cases.make_inputs(channels=6, size=(9, 12))
    inputs = [canvas[:, ::2, ::2, 1::2], fg[:, 1::2, ::2, ::2], mask[:, :, ::2, ::2],
              theta.transpose(1, 2).contiguous().transpose(1, 2)]
    assert not any(t.is_contiguous() for t in inputs)
    check_against_ref(inputs)


def test_broadcast_inputs_and_grad_out():
    """Expanded (stride-0) tensors: one background and one pose for the whole
    batch, and the expanded grad_out that out.sum().backward() produces."""
    canvas, fg, mask, theta = cases.make_inputs(batch=3)

    def run(fn):
        leaves = cases.with_grad([canvas[:1], fg, mask, theta[:1]])
        c, f, m, t = leaves
        fn(c.expand(3, -1, -1, -1), f, m, t.expand(3, -1, -1)).sum().backward()
        return [leaf.grad for leaf in leaves]

    for name, a, e in zip(("canvas", "fg", "mask", "theta"), run(ext), run(ref)):
        cases.assert_close(a, e, torch.float64, f"d{name}", scale=10.0)


def test_empty_batch():
    inputs = cases.make_inputs(batch=0)
    out, got = cases.grads(ext, inputs)
    assert out.shape == (0, 3, 7, 9) and all(g.numel() == 0 for g in got)


def test_gradcheck_full():
    inputs = cases.with_grad(cases.make_inputs(batch=2, channels=2, size=(4, 5)))
    assert torch.autograd.gradcheck(lambda *t: ext(*t), inputs)


def test_original_mode_is_autograd_with_the_mask_grid_detached():
    # The original gradient is not the derivative of the forward, so gradcheck
    # does not apply; test_matches_ref compares it with the reference's detached-
    # grid definition and test_stnm_ref checks that against the original kernel.
    inputs = cases.make_inputs(theta=cases.PARTLY_OFF)
    _, full = cases.grads(lambda *t: ext(*t, mask_grad="full"), inputs)
    _, orig = cases.grads(lambda *t: ext(*t, mask_grad="original"), inputs)
    for a, b in zip(full[:3], orig[:3]):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert (full[3] - orig[3]).abs().max() > 1e-3


def test_opcheck():
    op = torch.ops.ganrepro.stnm.default
    samples = [
        (*cases.make_inputs(dtype=torch.float32), True),
        (*cases.with_grad(cases.make_inputs(dtype=torch.float32)), False),
        (*[t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
           for t in cases.with_grad(cases.make_inputs(dtype=torch.float32))], True),
    ]
    for args in samples:
        torch.library.opcheck(op, args)
    g = torch.randn(2, 3, 7, 9)
    torch.library.opcheck(torch.ops.ganrepro.stnm_backward.default,
                          (g, *cases.make_inputs(dtype=torch.float32), True))


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_autocast_upcasts_to_float32(low):
    inputs = cases.with_grad([t.to(low) for t in cases.make_inputs(dtype=torch.float32)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = torch.ops.ganrepro.stnm(*inputs)
        via_public = ext(*inputs)
    assert out.dtype == torch.float32 and via_public.dtype == torch.float32
    expected = ref(*[t.detach().float() for t in inputs])
    cases.assert_close(out.detach(), expected, torch.float32, "forward")
    out.sum().backward()
    assert all(t.grad is not None and t.grad.dtype == low for t in inputs)


def test_low_precision_outside_autocast_is_computed_in_float32():
    inputs = [t.to(torch.bfloat16) for t in cases.make_inputs(dtype=torch.float32)]
    out = ext(*inputs)
    assert out.dtype == torch.bfloat16
    expected = ref(*[t.float() for t in inputs]).to(torch.bfloat16)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_mixed_float_dtypes_promote():
    canvas, fg, mask, theta = cases.make_inputs(dtype=torch.float32)
    out = ext(canvas, fg.double(), mask, theta)
    assert out.dtype == torch.float64


def test_op_rejects_half_with_a_clear_message():
    inputs = [t.half() for t in cases.make_inputs(dtype=torch.float32)]
    with pytest.raises(TypeError, match="float32 or float64.*autocast"):
        torch.ops.ganrepro.stnm(*inputs)


def test_op_rejects_bad_shapes_naming_the_argument():
    canvas, fg, mask, theta = cases.make_inputs(dtype=torch.float32)
    op = torch.ops.ganrepro.stnm
    with pytest.raises(ValueError, match="mask must be"):
        op(canvas, fg, mask.expand(-1, 2, -1, -1), theta)
    with pytest.raises(ValueError, match="theta must be"):
        op(canvas, fg, mask, theta[:, :1])
    with pytest.raises(ValueError, match="batch sizes differ"):
        op(canvas, fg[:1], mask, theta)
    with pytest.raises(TypeError, match="theta has dtype"):
        op(canvas, fg, mask, theta.double())


def test_double_backward_is_refused_clearly():
    inputs = cases.with_grad(cases.make_inputs(batch=1, size=(3, 4)))
    out = ext(*inputs)
    with pytest.raises(RuntimeError, match="double backward.*impl='ref'"):
        torch.autograd.grad(out.sum(), inputs[3], create_graph=True)
