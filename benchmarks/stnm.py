"""Benchmark STNM forward+backward: compiled op (ext) vs pure-PyTorch reference (ref).

    python benchmarks/stnm.py --out stnm.json            # full run (GPU)
    python benchmarks/stnm.py --quick                    # fewer repetitions
    python benchmarks/stnm.py --variants default generic dense,fwd_px=4   # compare CUDA kernels
    python benchmarks/stnm.py --device cpu --cases 64x3x32x32 --no-compile --quick

Per case: the median over repetitions of the mean time of back-to-back iterations
(CUDA events, so launch gaps and Python overhead count) for ref eager, ref under
torch.compile (a failure to compile is recorded) and ext under torch.compile; and
per kernel variant (a GANREPRO_STNM_CUDA setting, "default" = built-in defaults;
docs/custom_ops.md) ext forward + torch.autograd.grad for all four inputs, forward
alone (no grad), the ganrepro::stnm_backward op alone, and on a GPU the device time
of each (10 calls captured in one CUDA graph, replayed: no host share).  The first
variant is reported as "ext eager" and judged against the targets.

The memory floor is the bytes that any implementation must move over the GPU's
bandwidth: the forward reads canvas, fg, mask and writes out (3C + 1 planes), the
backward reads grad_out, canvas, fg, mask and writes three gradients (5C + 2
planes): 4 (8C + 3) B H W bytes in float32.  The bandwidth is the nominal peak of
known GPUs (or --peak-gbps), else the measured copy speed; both are in the JSON.
"""
import argparse
import contextlib
import datetime
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common.ops import _build, stnm  # noqa: E402
from stnm_report import evaluate_targets, print_summary  # noqa: E402

CASES = [(64, 3, 32, 32), (64, 3, 64, 64), (1024, 3, 64, 64), (1024, 3, 128, 128)]
KERNEL_SETTING = "GANREPRO_STNM_CUDA"
# Nominal peak memory bandwidth in GB/s; the first matching name wins.
PEAK_GBPS = [("H200", 4800), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350),
             ("H800", 3350), ("A100-SXM4-80GB", 2039), ("A100 80GB PCIe", 1935),
             ("A100", 1555), ("L40S", 864), ("RTX 4090", 1008), ("V100", 900)]
# Issue targets (H200): speed-up over eager ref at two sizes, distance to the floor at the largest.
GRAPH_CALLS = 10


def parse_case(text):
    parts = [int(p) for p in text.lower().split("x")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"case must look like 64x3x32x32, got {text!r}")
    return tuple(parts)


def make_inputs(shape, device, seed=0):
    """Random images and LR-GAN-like poses (scale 1.2-2.4, small shear, translation within 0.8)."""
    batch, channels, height, width = shape
    gen = torch.Generator(device=device).manual_seed(seed)

    def uniform(low, high, *size):
        return low + (high - low) * torch.rand(*size, generator=gen, device=device)

    canvas = torch.randn(shape, generator=gen, device=device)
    fg = torch.randn(shape, generator=gen, device=device)
    mask = torch.rand(batch, 1, height, width, generator=gen, device=device)
    theta = torch.stack([uniform(1.2, 2.4, batch), uniform(-0.2, 0.2, batch), uniform(-0.8, 0.8, batch),
                         uniform(-0.2, 0.2, batch), uniform(1.2, 2.4, batch), uniform(-0.8, 0.8, batch)],
                        dim=1).view(batch, 2, 3)
    grad_out = torch.randn(shape, generator=gen, device=device)
    return [canvas, fg, mask, theta], grad_out


def bytes_moved(shape):
    """(forward, backward) bytes in float32."""
    batch, channels, height, width = shape
    plane = 4 * batch * height * width
    return (3 * channels + 1) * plane, (5 * channels + 2) * plane


class Timer:
    def __init__(self, device, warmup, repeats, iters):
        self.device, self.warmup, self.repeats, self.iters = device, warmup, repeats, iters

    def __call__(self, step, calls_per_step=1):
        """Median over repeats of the mean time (ms) of one call, over `iters` back-to-back steps.

        Python's garbage collector is off while timing (as in timeit): a collection
        triggered by earlier garbage would land in a random variant's samples.
        """
        for _ in range(self.warmup):
            step()
        self.sync()
        gc.collect()
        gc.disable()
        try:
            return self._measure(step, calls_per_step)
        finally:
            gc.enable()

    def _measure(self, step, calls_per_step):
        samples = []
        for _ in range(self.repeats):
            if self.device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(self.iters):
                    step()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / self.iters / calls_per_step)
            else:
                began = time.perf_counter()
                for _ in range(self.iters):
                    step()
                samples.append((time.perf_counter() - began) * 1e3 / self.iters / calls_per_step)
        return statistics.median(samples)

    def sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()


def peak_bandwidth(device, override):
    if override:
        return override * 1e9, "--peak-gbps"
    if device != "cuda":
        return None, None
    name = torch.cuda.get_device_name()
    for key, gbps in PEAK_GBPS:
        if key in name:
            return gbps * 1e9, f"nominal peak of {key}"
    return None, None


def copy_bandwidth(device, timer):
    """Bytes per second of a large device-to-device copy (read + write)."""
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        numel = min(1 << 28, free // 16)
    else:
        numel = 1 << 23
    src = torch.empty(numel, device=device)
    dst = torch.empty_like(src)
    ms = timer(lambda: dst.copy_(src))
    del src, dst
    return 2 * 4 * numel / (ms * 1e-3)


def stnm_fn(impl):
    def run(canvas, fg, mask, theta):
        return stnm(canvas, fg, mask, theta, impl=impl)

    return run


def fwd_bwd_step(fn, inputs, grad_out):
    leaves = [t.detach().requires_grad_() for t in inputs]

    def step():
        out = fn(*leaves)
        torch.autograd.grad(out, leaves, grad_out)

    return step


def backward_step(inputs, grad_out):
    op = torch.ops.ganrepro.stnm_backward.default
    return lambda: op(grad_out, *inputs, True)


def graph_time(step, timer):
    """Device time (ms) of one step: GRAPH_CALLS steps captured in a CUDA graph, replayed."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(GRAPH_CALLS):
            step()
    try:
        return timer(graph.replay, calls_per_step=GRAPH_CALLS)
    finally:
        del graph


def max_rel_error(inputs, grad_out):
    """Sanity check of ext against ref: the output and the canvas, fg and mask gradients.

    d/dtheta is left out: it jumps where a sample crosses a pixel boundary, and
    float32 rounding puts a few of millions of samples on different sides in the
    two implementations (tests/common/ops compares it in float64).
    """
    results = []
    for impl in ("ext", "ref"):
        leaves = [t.detach().requires_grad_() for t in inputs]
        out = stnm(*leaves, impl=impl)
        results.append([out.detach(), *torch.autograd.grad(out, leaves[:3], grad_out)])
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1)).item() for a, b in zip(*results))


def first_line(error):
    text = f"{type(error).__name__}: {error}"
    return text.strip().splitlines()[0][:300]


@contextlib.contextmanager
def kernel_setting(label):
    """GANREPRO_STNM_CUDA=label for the duration of a block ("default" = the built-in defaults)."""
    old = os.environ.get(KERNEL_SETTING)
    os.environ[KERNEL_SETTING] = setting_of(label)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(KERNEL_SETTING, None)
        else:
            os.environ[KERNEL_SETTING] = old


def setting_of(label):
    return "" if label == "default" else label


def bench_variant(label, inputs, grad_out, args, timer, floors, ref_eager):
    result = {"setting": setting_of(label)}
    fn = stnm_fn("ext")
    with kernel_setting(label):
        result["fwd_bwd_ms"] = timer(fwd_bwd_step(fn, inputs, grad_out))
        with torch.no_grad():
            result["fwd_ms"] = timer(lambda: fn(*inputs))
        result["bwd_ms"] = timer(backward_step(inputs, grad_out))
        if args.device == "cuda":
            try:  # the device times are extra information: a capture failure is recorded
                with torch.no_grad():
                    result["fwd_device_ms"] = graph_time(lambda: fn(*inputs), timer)
                result["bwd_device_ms"] = graph_time(backward_step(inputs, grad_out), timer)
            except Exception as error:
                result["device_time_error"] = first_line(error)
        result["max_rel_error_vs_ref"] = max_rel_error(inputs, grad_out)
    if ref_eager:
        result["speedup_vs_ref_eager"] = ref_eager / result["fwd_bwd_ms"]
    if floors:
        result["over_floor"] = result["fwd_bwd_ms"] / (floors[0] + floors[1])
        if "fwd_device_ms" in result:
            result["fwd_device_over_floor"] = result["fwd_device_ms"] / floors[0]
            result["bwd_device_over_floor"] = result["bwd_device_ms"] / floors[1]
    return result


def new_case(shape, bandwidth):
    fwd_bytes, bwd_bytes = bytes_moved(shape)
    result = {"shape": list(shape), "bytes_moved": fwd_bytes + bwd_bytes,
              "bytes_forward": fwd_bytes, "bytes_backward": bwd_bytes, "timings_ms": {},
              "forward_ms": {}, "compile_s": {}, "errors": {}, "variants": {}}
    floors = (fwd_bytes / bandwidth * 1e3, bwd_bytes / bandwidth * 1e3) if bandwidth else None
    result["floor_ms"] = sum(floors) if floors else None
    result["floor_forward_ms"], result["floor_backward_ms"] = floors or (None, None)
    return result, floors


def bench_eager(result, floors, args, timer, ext_ok):
    """ref eager and every ext variant; the first variant is "ext eager" in the summary."""
    inputs, grad_out = make_inputs(tuple(result["shape"]), args.device)
    bench_modes(["ref_eager"], args, timer, inputs, grad_out, result)
    bench_variants(args, timer, inputs, grad_out, floors, result, ext_ok)
    first = result["variants"].get(args.variants[0])
    if first:
        result["timings_ms"]["ext_eager"] = first["fwd_bwd_ms"]
        result["forward_ms"]["ext_eager"] = first["fwd_ms"]
        result["max_rel_error_ext_vs_ref"] = first["max_rel_error_vs_ref"]
        if "speedup_vs_ref_eager" in first:
            result["speedup_ext_vs_ref_eager"] = first["speedup_vs_ref_eager"]
        if "over_floor" in first:
            result["ext_eager_over_floor"] = first["over_floor"]


def bench_compiled(result, args, timer, ext_ok):
    inputs, grad_out = make_inputs(tuple(result["shape"]), args.device)
    bench_modes(["ref_compiled"] + (["ext_compiled"] if ext_ok else []), args, timer, inputs,
                grad_out, result)


def bench_modes(modes, args, timer, inputs, grad_out, result):
    """ref eager, ref compiled, ext compiled: forward + backward (and forward alone for eager)."""
    for name in modes:
        impl, mode = name.split("_")
        if mode == "compiled" and args.no_compile:
            continue
        fn = stnm_fn(impl)
        try:
            with kernel_setting(args.variants[0]):
                if mode == "compiled":
                    torch._dynamo.reset()
                    fn = torch.compile(fn, fullgraph=True)
                    began = time.perf_counter()
                    fwd_bwd_step(fn, inputs, grad_out)()
                    timer.sync()
                    result["compile_s"][name] = round(time.perf_counter() - began, 2)
                result["timings_ms"][name] = timer(fwd_bwd_step(fn, inputs, grad_out))
                if mode == "eager":
                    with torch.no_grad():
                        result["forward_ms"][name] = timer(lambda: fn(*inputs))
        except Exception as error:  # record and go on: a failing variant is a result too
            result["errors"][name] = first_line(error)
        finally:
            if mode == "compiled":
                torch._dynamo.reset()
            if args.device == "cuda":
                torch.cuda.empty_cache()


def bench_variants(args, timer, inputs, grad_out, floors, result, ext_ok):
    """Every --variants setting of the extension (eager)."""
    if not ext_ok:
        result["errors"]["ext_eager"] = "extension unavailable"
    for label in args.variants if ext_ok else []:
        try:
            variant = bench_variant(label, inputs, grad_out, args, timer, floors,
                                    result["timings_ms"].get("ref_eager"))
            result["variants"][label] = variant
            if "device_time_error" in variant:
                result["errors"][f"ext[{label}] device time"] = variant["device_time_error"]
        except Exception as error:
            result["errors"][f"ext[{label}]"] = first_line(error)
        finally:
            if args.device == "cuda":
                torch.cuda.empty_cache()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=["cuda", "cpu"])
    parser.add_argument("--cases", type=parse_case, nargs="+", default=CASES,
                        help="shapes BxCxHxW (default: the four issue cases)")
    parser.add_argument("--variants", nargs="+", default=["default"],
                        help=f"{KERNEL_SETTING} settings to compare, e.g. default generic "
                             "dense,fwd_px=4 (the first is reported as 'ext eager')")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--peak-gbps", type=float, default=None, help="memory bandwidth for the floor")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args(argv)

    warmup, repeats, iters = (2, 5, 3) if args.quick else (10, 15, 10)
    timer = Timer(args.device, warmup, repeats, iters)
    status = _build.load(require_cuda=args.device == "cuda")
    if not status.loaded:
        print(f"warning: extension unavailable ({status.reason}); fix: {status.fix}", file=sys.stderr)
    peak, peak_source = peak_bandwidth(args.device, args.peak_gbps)
    copy = copy_bandwidth(args.device, Timer(args.device, 3, 5, 5))
    bandwidth = peak or copy
    meta = {
        "torch": torch.__version__, "cuda": torch.version.cuda, "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "CPU",
        "extension": {"loaded": status.loaded, "origin": status.origin, "has_cuda": status.has_cuda,
                      "reason": status.reason},
        "peak_gbps": peak / 1e9 if peak else None, "peak_source": peak_source,
        "measured_copy_gbps": copy / 1e9,
        "floor_basis": peak_source or "measured copy bandwidth",
        "variants": args.variants,
        "timing": {"warmup": warmup, "repeats": repeats, "iters_per_repeat": iters,
                   "statistic": "median over repeats of the mean per iteration",
                   "device_time": f"{GRAPH_CALLS} calls captured in one CUDA graph, replayed"},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    # All eager timings first, then all torch.compile runs: after compiling, the
    # process ran slower for a while (GPU run 2: the first variant timed after a
    # compile lost ~80 us per call at the small sizes, its forward alone ~70 %).
    cases = []
    phases = [("eager", shape) for shape in args.cases]
    phases += [] if args.no_compile else [("compiled", shape) for shape in args.cases]
    for index, (phase, shape) in enumerate(phases):
        print(f"running {'x'.join(map(str, shape))} ({phase}) ...", file=sys.stderr, flush=True)
        if phase == "eager":
            result, floors = new_case(shape, bandwidth)
            bench_eager(result, floors, args, timer, status.loaded)
            cases.append(result)
        else:
            bench_compiled(cases[index - len(args.cases)], args, timer, status.loaded)
        report = {"meta": meta, "cases": cases, "targets": evaluate_targets(cases)}
        if args.out:  # after every step, so that an interrupted run keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    print_summary(report)
    return report


if __name__ == "__main__":
    main()
