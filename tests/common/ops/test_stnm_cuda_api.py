"""The CUDA op's registrations and integration: opcheck, autocast, compile, streams,
and which kernels run (needs a GPU and nvcc)."""
import pytest
import torch

from common.ops import _build, stnm, stnm_ref

from . import stnm_cases as cases

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")


@pytest.fixture(autouse=True, scope="module")
def _cuda_ext():
    cases.require_cuda_ext()


def ext(*t, mask_grad="full"):
    return stnm(*t, impl="ext", mask_grad=mask_grad)


def assert_near(actual, expected, name, tol):
    scale = expected.abs().max().clamp_min(1.0)
    error = (actual - expected).abs().max()
    assert error <= tol * scale, f"{name}: max error {error:.3g} (scale {scale:.3g})"


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
    expected = stnm_ref(*[t.detach().to(low).float() for t in inputs])
    assert_near(out.detach(), expected, "forward", 1e-5)
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in inputs)


@pytest.mark.parametrize("mode", [None, "reduce-overhead"])
@pytest.mark.parametrize("layout", [(8, (32, 32)), (2, (96, 80))], ids=["own", "split"])
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
    expected = stnm_ref(*inputs)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = ext(*inputs)
    torch.cuda.current_stream().wait_stream(side)
    assert_near(out, expected, "forward", 1e-5)


def kernel_names(fn):
    """Names of the CUDA kernels that fn() launches (empty if the profiler sees none)."""
    from torch.profiler import ProfilerActivity, profile

    fn()  # warm up outside the profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [event.key for event in prof.key_averages()]


@pytest.mark.parametrize("setting, dtype, layout, expected", [
    ("", torch.float32, "contiguous", "atomic"),  # 4 x 32 x 32 pixels: below kGatherMinPixels
    ("", torch.float32, "large", "gather"),
    ("dense", torch.float32, "contiguous", "atomic"),
    ("bwd=gather", torch.float32, "contiguous", "gather"),
    ("bwd=atomic", torch.float32, "large", "atomic"),
    ("generic", torch.float32, "contiguous", "generic"),
    ("", torch.float64, "contiguous", "generic"),
    ("", torch.float32, "channels_last", "generic"),
    ("", torch.float32, "five_channels", "generic"),
])
def test_kernel_choice(monkeypatch, setting, dtype, layout, expected):
    """GANREPRO_STNM_CUDA and the inputs pick the kernels the docs say they do,
    so that the benchmark's variants and the tests above measure what they name.
    The loss is a sum, whose expanded grad_out the dense backward copies."""
    monkeypatch.setenv("GANREPRO_STNM_CUDA", setting)
    channels = 5 if layout == "five_channels" else 3
    batch, size = (256, (64, 64)) if layout == "large" else (4, (32, 32))
    inputs = cases.with_grad(cases.make_inputs(batch=batch, channels=channels, size=size,
                                               dtype=dtype, device="cuda"))
    if layout == "channels_last":
        inputs = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
                  for t in inputs]
    names = kernel_names(lambda: torch.autograd.grad(ext(*inputs).sum(), inputs))
    ours = [name for name in names if "ganrepro" in name]
    if not ours:
        pytest.skip(f"the profiler recorded no ganrepro kernels (saw {names[:5]})")
    dense = [name for name in ours if "dense_" in name]
    gather = any("dense_gather_kernel" in n for n in ours)
    if expected == "generic":
        assert not dense, ours
        assert any("forward_kernel" in n for n in ours), ours
        return
    assert any("dense_forward_kernel" in n for n in ours), ours
    assert any("dense_backward_kernel" in n for n in ours), ours
    assert gather == (expected == "gather"), ours


@pytest.mark.parametrize("setting", ["dense,fwd_px=3", "bwd=scatter"])
def test_bad_kernel_setting_is_a_clear_error(monkeypatch, setting):
    monkeypatch.setenv("GANREPRO_STNM_CUDA", setting)
    inputs = cases.make_inputs(dtype=torch.float32, device="cuda")
    with pytest.raises(ValueError, match=f"GANREPRO_STNM_CUDA.*{setting.split(',')[-1]}.*expected"):
        ext(*inputs)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device():
    inputs = cases.make_inputs(dtype=torch.float32, device="cuda:1")
    out, got = cases.grads(ext, inputs)
    out_ref, expected = cases.grads(stnm_ref, inputs)
    assert_near(out, out_ref, "forward", 1e-4)
    for name, a, e in zip(("canvas", "fg", "mask"), got, expected):
        assert_near(a, e, f"d{name}", 1e-4)
