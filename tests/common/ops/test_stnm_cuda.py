"""The CUDA kernels against the reference and the CPU kernel (needs a GPU and nvcc)."""
import pytest
import torch

from common.ops import _build, stnm, stnm_ref

from . import stnm_cases as cases

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")


@pytest.fixture(autouse=True, scope="module")
def _cuda_ext():
    if not torch.cuda.is_available():
        return
    status = _build.load(require_cuda=True)
    if not status.loaded:
        pytest.fail(f"CUDA extension unavailable: {status.reason}. Fix: {status.fix}\n"
                    f"{status.detail[-4000:]}")


def ext(*t, mask_grad="full"):
    return stnm(*t, impl="ext", mask_grad=mask_grad)


def ref(*t, mask_grad="full"):
    return stnm_ref(*t, mask_grad=mask_grad)


def assert_near(actual, expected, name, tol):
    """Error relative to the largest magnitude: sums over many pixels lose ~1e-6 in float32."""
    scale = expected.abs().max().clamp_min(1.0)
    error = (actual - expected).abs().max()
    assert error <= tol * scale, f"{name}: max error {error:.3g} (scale {scale:.3g})"


def check(inputs, mask_grad="full", with_theta=None):
    """Forward and gradients vs the reference.  In float32 d/dtheta is left out
    unless asked for (see stnm_cases: pixel-boundary jumps); float64 checks it."""
    float32 = inputs[0].dtype == torch.float32
    tol = 1e-4 if float32 else 1e-10
    with_theta = not float32 if with_theta is None else with_theta
    out, got = cases.grads(lambda *t: ext(*t, mask_grad=mask_grad), inputs)
    out_ref, expected = cases.grads(lambda *t: ref(*t, mask_grad=mask_grad), inputs)
    assert_near(out, out_ref, "forward", tol)
    names = ("canvas", "fg", "mask", "theta")[: 4 if with_theta else 3]
    for name, a, e in zip(names, got, expected):
        assert_near(a, e, f"d{name} ({mask_grad})", tol)


POSES = [cases.ROTATE_SCALE, cases.SHRINK, cases.ENLARGE, cases.PARTLY_OFF, cases.OFF_CANVAS]
# (batch, size): the backward either gives each image its own block (small
# images or a batch that fills the GPU) or splits images over blocks.
LAYOUTS = {"own_small": (8, (32, 32)), "own_batch": (300, (72, 72)), "split": (2, (96, 80))}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("pose", POSES)
@pytest.mark.parametrize("mask_grad", ["full", "original"])
def test_matches_ref(layout, pose, mask_grad):
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
def test_float32_theta_gradient_away_from_pixel_boundaries(layout, channels):
    batch, size = layout
    inputs = cases.make_inputs(batch=batch, channels=channels, size=size, dtype=torch.float32,
                               theta=cases.boundary_free_pose(size), jitter=0.0, device="cuda")
    check(inputs, with_theta=True)


@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_channel_counts(channels, layout):
    batch, size = layout
    check(cases.make_inputs(batch=batch, channels=channels, size=size, dtype=torch.float32,
                            device="cuda"))


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
def test_edge_cases():
    make = lambda **kw: cases.make_inputs(dtype=torch.float32, device="cuda", **kw)  # noqa: E731
    check(make(batch=1, size=(33, 47)))
    check(make(mask=0.0))
    check(make(mask=1.0))
    check(make(size=(1, 1)))
    identity = make(theta=cases.IDENTITY, jitter=0.0, mask=1.0)
    torch.testing.assert_close(ext(*identity), identity[1], atol=1e-6, rtol=0)
    off = make(theta=cases.OFF_CANVAS)
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


def test_batch_beyond_the_grid_limit():
    check(cases.make_inputs(batch=70_000, channels=1, size=(2, 3), device="cuda"))


def test_gradcheck_float64():
    inputs = cases.with_grad(cases.make_inputs(batch=2, channels=2, size=(5, 6), device="cuda"))
    assert torch.autograd.gradcheck(lambda *t: ext(*t), inputs)


def test_opcheck():
    for requires_grad in (False, True):
        inputs = cases.make_inputs(dtype=torch.float32, device="cuda")
        if requires_grad:
            inputs = cases.with_grad(inputs)
        torch.library.opcheck(torch.ops.ganrepro.stnm.default, (*inputs, True))
    g = torch.randn(2, 3, 7, 9, device="cuda")
    torch.library.opcheck(torch.ops.ganrepro.stnm_backward.default,
                          (g, *cases.make_inputs(dtype=torch.float32, device="cuda"), False))


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_autocast(low):
    inputs = cases.with_grad(cases.make_inputs(dtype=torch.float32, device="cuda"))
    with torch.autocast("cuda", dtype=low):
        out = ext(*[t.to(low) for t in inputs])
    assert out.dtype == torch.float32
    assert_near(out.detach(), ref(*[t.detach().to(low).float() for t in inputs]), "forward", 1e-5)
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in inputs)


@pytest.mark.parametrize("mode", [None, "reduce-overhead"])
@pytest.mark.parametrize("layout", [LAYOUTS["own_small"], LAYOUTS["split"]], ids=["own", "split"])
def test_compile(mode, layout):
    torch._dynamo.reset()
    batch, size = layout

    def loss(*t):
        return stnm(*t, impl="ext").square().sum()

    compiled = torch.compile(loss, fullgraph=True, mode=mode)
    inputs = cases.make_inputs(batch=batch, size=size, dtype=torch.float32, device="cuda")
    for _ in range(3):  # CUDA graphs record on a later call
        _, got = cases.grads(compiled, inputs)
    _, expected = cases.grads(lambda *t: ext(*t).square().sum(), inputs)
    for name, a, e in zip(("canvas", "fg", "mask", "theta"), got, expected):
        assert_near(a, e, f"d{name}", 1e-4)
    torch._dynamo.reset()


def test_auto_uses_the_extension_on_cuda():
    inputs = cases.make_inputs(dtype=torch.float32, device="cuda")
    stnm(*inputs)
    assert _build.status().loaded and _build.status().has_cuda


def test_runs_on_the_current_stream():
    inputs = cases.make_inputs(batch=16, size=(64, 64), dtype=torch.float32, device="cuda")
    expected = ref(*inputs)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = ext(*inputs)
    torch.cuda.current_stream().wait_stream(side)
    assert_near(out, expected, "forward", 1e-5)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device():
    inputs = cases.make_inputs(dtype=torch.float32, device="cuda:1")
    check(inputs)
