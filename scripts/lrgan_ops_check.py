"""Which STNM implementation is active, why, and does it give the right answer?

    python scripts/lrgan_ops_check.py              # build the extension if needed, then check it
    python scripts/lrgan_ops_check.py --no-build   # only report what is already available
    python scripts/lrgan_ops_check.py --verbose    # include the compiler output of a failed build

Exit status 0 when the active implementation agrees with the reference.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common.cli import ArgumentParser  # noqa: E402
from common.ops import _build, _sources, stnm, stnm_ref  # noqa: E402


def tool_version(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "not found"
    lines = [line for line in out.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown"


def environment():
    from torch.utils.cpp_extension import CUDA_HOME, is_ninja_available

    nvcc = _build._nvcc()
    compiler = os.environ.get("CXX", "c++")
    rows = [
        ("torch", f"{torch.__version__} (CUDA {torch.version.cuda})"),
        ("GPUs", ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
         if torch.cuda.is_available() else "none visible"),
        ("CUDA_HOME", f"{CUDA_HOME} ({'nvcc: ' + tool_version([str(nvcc), '--version']) if nvcc else 'no nvcc'})"),
        ("ninja", "yes" if is_ninja_available() else "no (pip install ninja)"),
        ("C++ compiler", f"{compiler}: {shutil.which(compiler) or 'not found'}"),
        ("JIT cache", str(_build.cache_root())),
        ("source hash", _sources.source_hash()),
        ("GANREPRO_OPS", os.environ.get("GANREPRO_OPS", "(unset: auto)")),
        ("GANREPRO_STNM_CUDA", os.environ.get("GANREPRO_STNM_CUDA", "(unset: default CUDA kernels)")),
        ("GANREPRO_STNM_CPU", os.environ.get("GANREPRO_STNM_CPU", "(unset: scatter backward)")),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def load_extension(build, verbose):
    cuda = torch.cuda.is_available()
    status = _build.load(require_cuda=cuda, allow_build=build)
    if cuda and not status.loaded:  # the CPU kernels may still be usable
        status = _build.load(require_cuda=False, allow_build=build)
    for note in _build.skipped_aot_notes():
        print(f"  note: {note}")
    if status.loaded:
        where = f" in {status.build_seconds:.0f} s" if status.build_seconds else ""
        kernels = "CPU and CUDA" if status.has_cuda else "CPU only"
        print(f"  extension: loaded ({status.origin}{where}; {kernels} kernels) from {status.path or '?'}")
    else:
        print(f"  extension: not available: {status.reason}")
        print(f"  fix: {status.fix}")
        if verbose and status.detail:
            print(status.detail)
    return status


def active_implementations():
    stnm_module = sys.modules["common.ops.stnm"]
    forced = os.environ.get("GANREPRO_OPS", "").strip().lower()
    status = _build.status()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        if stnm_module._use_ext("auto", device):
            choice, why = "ext (compiled op)", f"the extension is loaded ({status.origin})"
        elif forced == "ref":
            choice, why = "ref (pure PyTorch)", "GANREPRO_OPS=ref"
        elif device == "cpu":
            choice, why = "ref (pure PyTorch)", (
                "no built extension, and impl='auto' never compiles for CPU tensors "
                "(build it by running this script without --no-build)")
        else:
            failure = _build.load(require_cuda=True, allow_build=False)
            choice, why = "ref (pure PyTorch)", failure.reason
        print(f"  impl='auto' on {device}: {choice}, because {why}")
    return devices


def correctness(device, impl, label=""):
    """ext (or ref) vs the reference: float64 for everything, float32 for all but d/dtheta.

    In float32, d/dtheta may differ where a sample sits on a pixel boundary
    (the bilinear sample has a kink there), so it is compared in float64.  On
    CUDA, float64 runs the generic kernels and float32 (3 channels, contiguous)
    the dense ones unless GANREPRO_STNM_CUDA says otherwise.
    """
    gen = torch.Generator().manual_seed(0)
    shape = (4, 3, 24, 20)
    tensors = [torch.randn(*shape, generator=gen, dtype=torch.float64),
               torch.randn(*shape, generator=gen, dtype=torch.float64),
               torch.rand(4, 1, 24, 20, generator=gen, dtype=torch.float64),
               torch.tensor([[1.2, 0.1, 0.2], [-0.1, 0.9, -0.3]], dtype=torch.float64).expand(4, 2, 3)
               + 0.05 * torch.randn(4, 2, 3, generator=gen, dtype=torch.float64)]
    grad_out = torch.randn(*shape, generator=gen, dtype=torch.float64)
    ok = True
    for dtype, tolerance, checked in ((torch.float64, 1e-9, 4), (torch.float32, 1e-4, 3)):
        worst = 0.0
        for mask_grad in ("full", "original"):
            results = []
            for fn in (lambda *t: stnm(*t, impl=impl, mask_grad=mask_grad),
                       lambda *t: stnm_ref(*t, mask_grad=mask_grad)):
                leaves = [t.to(device, dtype).requires_grad_() for t in tensors]
                out = fn(*leaves)
                grads = torch.autograd.grad(out, leaves[:checked], grad_out.to(device, dtype))
                results.append([out, *grads])
            for a, b in zip(*results):
                worst = max(worst, ((a - b).abs().max() / b.abs().max().clamp_min(1)).item())
        passed = worst < tolerance
        ok &= passed
        print(f"  {impl}{label} on {device}, {str(dtype)[6:]}: max relative error vs reference "
              f"{worst:.1e}  {'OK' if passed else 'FAIL'}")
    return ok


# Kernel variants checked besides the defaults: (device, variable, value).  On
# CUDA, float64 always runs the generic kernels and float32 the dense ones
# unless GANREPRO_STNM_CUDA says otherwise; the dense backward gathers or
# scatters with atomics by size, so both are forced once.
VARIANTS = [
    ("cuda", "GANREPRO_STNM_CUDA", "generic"),
    ("cuda", "GANREPRO_STNM_CUDA", "bwd=gather"),
    ("cuda", "GANREPRO_STNM_CUDA", "bwd=atomic"),
    ("cpu", "GANREPRO_STNM_CPU", "bwd=gather"),
]


def variant_check(device, impl, variable, value):
    """The quick check again with one kernel variant selected."""
    old = os.environ.get(variable)
    os.environ[variable] = value
    try:
        return correctness(device, impl, label=f" ({variable}={value})")
    finally:
        if old is None:
            del os.environ[variable]
        else:
            os.environ[variable] = old


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="never compile; report what exists")
    parser.add_argument("--verbose", action="store_true", help="print compiler output of a failed build")
    args = parser.parse_args()

    print("Environment")
    environment()
    print("Extension")
    status = load_extension(build=not args.no_build, verbose=args.verbose)
    print("Active implementation")
    devices = active_implementations()
    print("Quick check (forward and all gradients, both mask_grad modes)")
    ok = True
    for device in devices:
        usable = status.loaded and (device == "cpu" or status.has_cuda)
        ok &= correctness(device, "ext" if usable else "ref")
        for variant_device, variable, value in VARIANTS if usable else []:
            if variant_device == device:
                ok &= variant_check(device, "ext", variable, value)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
