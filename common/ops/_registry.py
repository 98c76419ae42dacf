"""Python-side registrations for the C++ ops: fake kernels and autocast.

Autograd is registered in C++ (csrc/stnm_autograd.cpp), where it costs no
interpreter time per call.  These must run after the compiled library has
defined the ops, so _build.load calls register() right after loading it.
"""
import torch

from common.precision import LOW_PRECISION

_lib = None  # the Library fragment; kept alive for as long as the registrations


def register() -> None:
    global _lib
    if _lib is not None:
        return
    _lib = torch.library.Library("ganrepro", "FRAGMENT")
    torch.library.register_fake("ganrepro::stnm", _stnm_fake, lib=_lib)
    torch.library.register_fake("ganrepro::stnm_backward", _stnm_backward_fake, lib=_lib)
    for device_type in ("cuda", "cpu"):
        _register_autocast(device_type)


# ----------------------------------------------------------------------------------------
# Fake kernels: shapes, dtypes and strides only, never data.


def _empty_in_layout_of(like: torch.Tensor) -> torch.Tensor:
    # Same rule as empty_in_layout_of() in csrc/stnm.cpp.
    channels_last = like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous()
    return torch.empty(
        like.shape,
        dtype=like.dtype,
        device=like.device,
        memory_format=torch.channels_last if channels_last else torch.contiguous_format,
    )


def _check_fake_inputs(canvas, fg, mask, theta) -> None:
    torch._check(canvas.dim() == 4, lambda: f"stnm: canvas must be (B, C, H, W), got {canvas.shape}")
    torch._check(fg.dim() == 4, lambda: f"stnm: fg must be (B, C, Hf, Wf), got {fg.shape}")
    torch._check(
        mask.dim() == 4 and mask.shape[1] == 1,
        lambda: f"stnm: mask must be (B, 1, Hf, Wf), got {mask.shape}",
    )
    torch._check(
        theta.dim() == 3 and theta.shape[1] == 2 and theta.shape[2] == 3,
        lambda: f"stnm: theta must be (B, 2, 3), got {theta.shape}",
    )
    for name, t in (("fg", fg), ("mask", mask), ("theta", theta)):
        torch._check(t.shape[0] == canvas.shape[0], lambda: f"stnm: {name} batch size differs")
        if t.dtype != canvas.dtype:
            raise TypeError(f"stnm: {name} has dtype {t.dtype} but canvas has {canvas.dtype}")
    torch._check(fg.shape[1] == canvas.shape[1], lambda: "stnm: fg and canvas channels differ")
    torch._check(fg.shape[2:] == mask.shape[2:], lambda: "stnm: mask must match fg's spatial size")
    if canvas.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"stnm: expected float32 or float64 tensors, got {canvas.dtype}")


def _stnm_fake(canvas, fg, mask, theta, mask_grad_full=True):
    _check_fake_inputs(canvas, fg, mask, theta)
    return _empty_in_layout_of(canvas)


def _stnm_backward_fake(grad_out, canvas, fg, mask, theta, mask_grad_full):
    _check_fake_inputs(canvas, fg, mask, theta)
    return (
        _empty_in_layout_of(canvas),
        _empty_in_layout_of(fg),
        _empty_in_layout_of(mask),
        theta.new_empty((theta.shape[0], 2, 3)),
    )


# ----------------------------------------------------------------------------------------
# Autocast: the kernels run in float32 or float64, so inside an autocast region
# half-precision inputs are upcast to float32 (float64 stays as it is).


def _register_autocast(device_type: str) -> None:
    if hasattr(torch.library, "register_autocast"):  # torch >= 2.7
        torch.library.register_autocast("ganrepro::stnm", device_type, torch.float32, lib=_lib)
        return
    key = "AutocastCUDA" if device_type == "cuda" else "AutocastCPU"
    excluded = torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, key))
    op = torch.ops.ganrepro.stnm.default

    def upcast(value):
        if (
            isinstance(value, torch.Tensor)
            and value.device.type == device_type
            and value.dtype in LOW_PRECISION
        ):
            return value.float()
        return value

    def autocast_kernel(*args):
        with torch._C._ExcludeDispatchKeyGuard(excluded):
            return op(*(upcast(a) for a in args))

    _lib.impl("stnm", autocast_kernel, key)
