"""STNM: spatial transformer with mask, the compositing op of LR-GAN.

``stnm(canvas, fg, mask, theta)`` warps a foreground and its mask with the affine
pose ``theta`` and pastes the foreground onto the canvas through the mask::

    grid = affine_grid(theta, canvas.shape, align_corners=True)
    f    = grid_sample(fg,   grid, bilinear, zeros outside, align_corners=True)
    m    = grid_sample(mask, grid, bilinear, zeros outside, align_corners=True)
    out  = m * f + (1 - m) * canvas

Implementations (``impl``):

* ``"ref"``: the pure-PyTorch twin above (common/ops/stnm_ref.py); any device.
* ``"ext"``: the compiled op ``torch.ops.ganrepro.stnm`` (C++ CPU and CUDA
  kernels, common/ops/csrc).  An extension that cannot be loaded or built is an
  error naming the cause and the fix.
* ``"auto"`` (default): the environment variable ``GANREPRO_OPS=ref|ext``
  decides if set.  Otherwise CUDA tensors use the extension, building it on
  first use (cached); if that fails they fall back to the reference with one
  warning naming the cause and the fix.  CPU tensors use the extension only if
  it is already loaded or built (installed ahead of time or in the cache), and
  the reference otherwise, so a CPU-only start never waits for a compiler.
  Other devices use the reference.

``python scripts/lrgan_ops_check.py`` prints which implementation is active and why.
"""
import os
import warnings

import torch

from common.precision import LOW_PRECISION

from . import _build
from .stnm_ref import stnm_ref

IMPLS = ("auto", "ext", "ref")
MASK_GRADS = ("full", "original")
_warned: set[str] = set()


def stnm(
    canvas: torch.Tensor,
    fg: torch.Tensor,
    mask: torch.Tensor,
    theta: torch.Tensor,
    impl: str = "auto",
    mask_grad: str = "full",
) -> torch.Tensor:
    """Paste a warped, masked foreground onto a canvas.

    Args:
        canvas: (B, C, H, W) background; the output has its shape.
        fg: (B, C, Hf, Wf) foreground appearance (Hf, Wf usually equal H, W).
        mask: (B, 1, Hf, Wf) foreground mask, normally in [0, 1].
        theta: (B, 2, 3) pose in the convention of
            ``torch.nn.functional.affine_grid(theta, size, align_corners=True)``:
            it maps output (canvas) coordinates to source (fg) coordinates, both
            normalised so that -1 and 1 are the centres of the first and last
            pixels, with x (column) first::

                x_src = theta[0,0] * x + theta[0,1] * y + theta[0,2]
                y_src = theta[1,0] * x + theta[1,1] * y + theta[1,2]

            Sampling is bilinear; positions outside fg read as zero (so the
            canvas shows through where the warped mask is 0).  Because theta
            maps canvas to source, a scale s > 1 shrinks the object to about
            1/s of the canvas and a translation t moves its centre to -t/s.
        impl: "auto", "ext" or "ref" (see the module docstring).
        mask_grad: "full" gives exact gradients.  "original" reproduces the
            original LR-GAN CUDA kernel, whose gradient with respect to theta
            leaves out the path through the warped mask (d out / d theta keeps
            only m * d f / d theta).  The forward value and the gradients for
            canvas, fg and mask are the same in both modes.

    Returns:
        (B, C, H, W) tensor ``m * f + (1 - m) * canvas``, in the common dtype
        of the inputs.  float16/bfloat16 are computed in float32 and cast back;
        inside a torch.autocast region the result stays float32, as the
        compiled op's registered autocast rule does.

    LR-GAN's pose: the generator emits 6 numbers reshaped row-major into
    T = [[x_s, x_r, x_t], [y_r, y_s, y_t]], but its grid is in (row, column)
    = (y, x) order, so T[0] drives the *vertical* source coordinate.  The
    matching theta swaps both the rows and the first two columns
    (:func:`theta_from_lrgan`)::

        theta = [[T11, T10, T12],     = [[y_s, y_r, y_t],
                 [T01, T00, T02]]        [x_r, x_s, x_t]]

    Passing T directly as theta is equivalent only up to relabelling the six
    outputs (fine from scratch, wrong for original checkpoints).
    """
    if mask_grad == "full" or mask_grad == "original":
        full = mask_grad == "full"
    else:
        raise ValueError(f"stnm: mask_grad must be one of {MASK_GRADS}, got {mask_grad!r}")
    if impl not in IMPLS:
        raise ValueError(f"stnm: impl must be one of {IMPLS}, got {impl!r}")
    _check_inputs(canvas, fg, mask, theta)
    work, result = _dtypes(canvas, fg, mask, theta)
    if work is not None:
        canvas, fg, mask, theta = (t.to(work) for t in (canvas, fg, mask, theta))

    if _use_ext(impl, canvas.device.type):
        out = torch.ops.ganrepro.stnm.default(canvas, fg, mask, theta, full)
    else:
        out = stnm_ref(canvas, fg, mask, theta, mask_grad)
    return out if result is None else out.to(result)


def theta_from_lrgan(pose: torch.Tensor) -> torch.Tensor:
    """Convert LR-GAN's (B, 2, 3) pose matrix, in (y, x) order, to an affine_grid theta."""
    if pose.dim() != 3 or pose.shape[1:] != (2, 3):
        raise ValueError(f"theta_from_lrgan: pose must be (B, 2, 3), got {tuple(pose.shape)}")
    rows = pose.flip(1)  # (y, x) rows -> (x, y); slices, not index lists: no host-to-device copy
    return torch.cat((rows[..., 1:2], rows[..., 0:1], rows[..., 2:]), dim=-1)


# ----------------------------------------------------------------------------------------


def _check_inputs(canvas, fg, mask, theta) -> None:
    """Raise an error naming the bad argument; valid inputs pass in about a microsecond.

    The op is called per layer and step with small tensors, so the common case is
    one chain of cheap tests; anything it does not accept goes to _explain_inputs.
    """
    tensor = torch.Tensor
    if (isinstance(canvas, tensor) and isinstance(fg, tensor) and isinstance(mask, tensor)
            and isinstance(theta, tensor) and canvas.ndim == 4 and fg.ndim == 4):
        batch, channels = canvas.shape[0], canvas.shape[1]
        _, fg_channels, height, width = fg.shape
        device = canvas.device
        if (fg.shape[0] == batch and fg_channels == channels
                and mask.shape == (batch, 1, height, width) and theta.shape == (batch, 2, 3)
                and fg.device == device and mask.device == device and theta.device == device
                and canvas.is_floating_point() and fg.is_floating_point()
                and mask.is_floating_point() and theta.is_floating_point()):
            return
    _explain_inputs(canvas, fg, mask, theta)


def _explain_inputs(canvas, fg, mask, theta) -> None:
    named = (("canvas", canvas), ("fg", fg), ("mask", mask), ("theta", theta))
    for name, t in named:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"stnm: {name} must be a torch.Tensor, got {type(t).__name__}")
    if canvas.dim() != 4:
        raise ValueError(f"stnm: canvas must be (B, C, H, W), got shape {tuple(canvas.shape)}")
    batch, channels = canvas.shape[0], canvas.shape[1]
    if fg.dim() != 4 or fg.shape[0] != batch or fg.shape[1] != channels:
        raise ValueError(
            f"stnm: fg must be (B, C, Hf, Wf) = ({batch}, {channels}, Hf, Wf) to match canvas "
            f"{tuple(canvas.shape)}, got {tuple(fg.shape)}"
        )
    if mask.dim() != 4 or mask.shape[0] != batch or mask.shape[1] != 1 or mask.shape[2:] != fg.shape[2:]:
        raise ValueError(
            f"stnm: mask must be (B, 1, Hf, Wf) = ({batch}, 1, {fg.shape[2]}, {fg.shape[3]}), "
            f"got {tuple(mask.shape)}"
        )
    if theta.dim() != 3 or theta.shape[0] != batch or theta.shape[1] != 2 or theta.shape[2] != 3:
        raise ValueError(f"stnm: theta must be (B, 2, 3) = ({batch}, 2, 3), got {tuple(theta.shape)}")
    for name, t in named[1:]:
        if t.device != canvas.device:
            raise ValueError(f"stnm: {name} is on {t.device} but canvas is on {canvas.device}")
    for name, t in named:
        if not t.is_floating_point():
            raise TypeError(f"stnm: {name} must be a floating-point tensor, got {t.dtype}")


def _dtypes(canvas, fg, mask, theta):
    """(dtype to compute in or None if the inputs already agree, dtype to return or None)."""
    dtype = canvas.dtype
    if fg.dtype == dtype and mask.dtype == dtype and theta.dtype == dtype and dtype not in LOW_PRECISION:
        return None, None
    for t in (fg, mask, theta):
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype not in LOW_PRECISION:
        return dtype, None
    # The kernels compute in float32; autocast regions keep that result.
    if torch.is_autocast_enabled(canvas.device.type):
        return torch.float32, None
    return torch.float32, dtype


def _assume_constant_result(fn):
    """torch.compiler.assume_constant_result, minus its import of torch._dynamo (~2 s).

    torch.compile then calls `fn` eagerly while tracing and bakes in the result,
    so the decision below (environment, lazy build, warning) is never traced.
    tests/common/ops/test_stnm_compile.py checks that the public API still sets
    this same attribute.
    """
    fn._dynamo_marked_constant = True
    return fn


@_assume_constant_result
def _use_ext(impl: str, device_type: str) -> bool:
    """Decide ext (True) or ref (False) for one call."""
    if impl == "auto":
        impl = os.environ.get("GANREPRO_OPS", "").strip().lower() or "auto"
        if impl not in IMPLS:
            raise ValueError(f"GANREPRO_OPS must be 'ref', 'ext' or unset, got {impl!r}")
    if impl == "ref":
        return False
    cuda = device_type == "cuda"
    if _build.loaded(cuda):
        return True
    if impl == "ext":
        if device_type not in ("cpu", "cuda"):
            raise RuntimeError(f"stnm(impl='ext'): the extension has no kernels for {device_type} tensors")
        status = _build.load(require_cuda=cuda)
        if not status.loaded:
            raise RuntimeError(f"stnm(impl='ext'): {status.reason}. Fix: {status.fix}.")
        return True
    if cuda:
        status = _build.load(require_cuda=True)
        if not status.loaded:
            _warn_fallback(status)
        return status.loaded
    if device_type == "cpu":
        return _build.load(require_cuda=False, allow_build=False).loaded
    return False


def _warn_fallback(status: _build.ExtStatus) -> None:
    if status.reason in _warned:
        return
    _warned.add(status.reason)
    warnings.warn(
        f"stnm: using the slower pure-PyTorch reference because {status.reason}. "
        f"Fix: {status.fix}. Details: python scripts/lrgan_ops_check.py",
        RuntimeWarning,
        stacklevel=4,
    )
