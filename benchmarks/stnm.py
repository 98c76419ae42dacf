"""Benchmark STNM forward+backward: compiled op (ext) vs pure-PyTorch reference (ref).

    python benchmarks/stnm.py --out stnm.json            # full run (GPU)
    python benchmarks/stnm.py --quick                    # fewer repetitions
    python benchmarks/stnm.py --device cpu --cases 64x3x32x32 --no-compile --quick

For each case it times, with CUDA events around back-to-back iterations (so
launch gaps and Python overhead count), the median over repetitions of:
ref eager, ref under torch.compile (a failure to compile is recorded), ext
eager and ext under torch.compile.  One iteration is a forward plus
torch.autograd.grad for all four inputs.  The memory floor is the bytes that
any implementation must move, divided by the GPU's bandwidth:

    forward  reads canvas, fg, mask           writes out          3C + 1 planes
    backward reads grad_out, canvas, fg, mask writes 3 gradients  5C + 2 planes

i.e. 4 (8C + 3) B H W bytes in float32 (theta is negligible).  The bandwidth is
the nominal peak of known GPUs (or --peak-gbps), else the measured copy speed;
both are in the JSON.  A summary table is printed last.
"""
import argparse
import datetime
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common.ops import _build, stnm  # noqa: E402

CASES = [(64, 3, 32, 32), (64, 3, 64, 64), (1024, 3, 64, 64), (1024, 3, 128, 128)]
IMPLS = ["ref_eager", "ref_compiled", "ext_eager", "ext_compiled"]
# Nominal peak memory bandwidth in GB/s; the first matching name wins.
PEAK_GBPS = [("H200", 4800), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350),
             ("H800", 3350), ("A100-SXM4-80GB", 2039), ("A100 80GB PCIe", 1935),
             ("A100", 1555), ("L40S", 864), ("RTX 4090", 1008), ("V100", 900)]
# Issue targets (H200): speed-up over eager ref at two sizes, distance to the floor at the largest.
TARGETS = [((64, 3, 32, 32), "speedup", 8.0), ((1024, 3, 64, 64), "speedup", 5.0)]
FLOOR_TARGET = 2.0


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
    batch, channels, height, width = shape
    return 4 * (8 * channels + 3) * batch * height * width


class Timer:
    def __init__(self, device, warmup, repeats, iters):
        self.device, self.warmup, self.repeats, self.iters = device, warmup, repeats, iters

    def __call__(self, step):
        """Median over repeats of the mean time (ms) of `iters` back-to-back calls."""
        for _ in range(self.warmup):
            step()
        self.sync()
        samples = []
        for _ in range(self.repeats):
            if self.device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(self.iters):
                    step()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / self.iters)
            else:
                began = time.perf_counter()
                for _ in range(self.iters):
                    step()
                samples.append((time.perf_counter() - began) * 1e3 / self.iters)
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


def bench_case(shape, args, timer, bandwidth, ext_ok):
    inputs, grad_out = make_inputs(shape, args.device)
    result = {"shape": list(shape), "bytes_moved": bytes_moved(shape), "timings_ms": {},
              "forward_ms": {}, "compile_s": {}, "errors": {}}
    result["floor_ms"] = bytes_moved(shape) / bandwidth * 1e3 if bandwidth else None
    for name in IMPLS:
        impl, mode = name.split("_")
        if impl == "ext" and not ext_ok:
            result["errors"][name] = "extension unavailable"
            continue
        if mode == "compiled" and args.no_compile:
            continue
        fn = stnm_fn(impl)
        try:
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
    if ext_ok:
        result["max_rel_error_ext_vs_ref"] = max_rel_error(inputs, grad_out)
    times = result["timings_ms"]
    if "ext_eager" in times and "ref_eager" in times:
        result["speedup_ext_vs_ref_eager"] = times["ref_eager"] / times["ext_eager"]
    if "ext_eager" in times and result["floor_ms"]:
        result["ext_eager_over_floor"] = times["ext_eager"] / result["floor_ms"]
    return result


def evaluate_targets(cases):
    by_shape = {tuple(c["shape"]): c for c in cases}
    verdicts = []
    for shape, _, threshold in TARGETS:
        case = by_shape.get(shape)
        value = case.get("speedup_ext_vs_ref_eager") if case else None
        verdicts.append({"target": f"ext >= {threshold:g}x faster than eager ref at {'x'.join(map(str, shape))}",
                         "value": value, "met": value is not None and value >= threshold})
    largest = max(cases, key=lambda c: math.prod(c["shape"]), default=None)
    value = largest.get("ext_eager_over_floor") if largest else None
    verdicts.append({"target": f"ext within {FLOOR_TARGET:g}x of the memory floor at the largest case "
                               f"({'x'.join(map(str, largest['shape'])) if largest else '-'})",
                     "value": value, "met": value is not None and value <= FLOOR_TARGET})
    return verdicts


def fmt(ms):
    if ms is None:
        return "-"
    return f"{ms * 1e3:.0f} us" if ms < 1 else f"{ms:.2f} ms"


def print_summary(report):
    meta = report["meta"]
    print(f"\nSTNM forward+backward on {meta['device_name']} (torch {meta['torch']}); "
          f"floor basis: {meta['floor_basis'] or 'n/a'}")
    header = ["case", "floor", "ref eager", "ref compiled", "ext eager", "ext compiled",
              "ext vs ref", "ext/floor"]
    rows = []
    for case in report["cases"]:
        t, err = case["timings_ms"], case["errors"]
        cell = lambda k: fmt(t.get(k)) if k in t else ("failed" if k in err else "-")  # noqa: E731
        rows.append(["x".join(map(str, case["shape"])), fmt(case["floor_ms"]), cell("ref_eager"),
                     cell("ref_compiled"), cell("ext_eager"), cell("ext_compiled"),
                     f"{case['speedup_ext_vs_ref_eager']:.1f}x" if "speedup_ext_vs_ref_eager" in case else "-",
                     f"{case['ext_eager_over_floor']:.2f}" if "ext_eager_over_floor" in case else "-"])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))
    for case in report["cases"]:
        for name, message in case["errors"].items():
            print(f"  {'x'.join(map(str, case['shape']))} {name}: {message}")
    print("Targets (defined for an H200):")
    for verdict in report["targets"]:
        value = "-" if verdict["value"] is None else f"{verdict['value']:.2f}"
        print(f"  [{'met' if verdict['met'] else 'NOT met'}] {verdict['target']}: {value}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=["cuda", "cpu"])
    parser.add_argument("--cases", type=parse_case, nargs="+", default=CASES,
                        help="shapes BxCxHxW (default: the four issue cases)")
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
        "timing": {"warmup": warmup, "repeats": repeats, "iters_per_repeat": iters,
                   "statistic": "median over repeats of the mean per iteration"},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    cases = []
    for shape in args.cases:
        print(f"running {'x'.join(map(str, shape))} ...", file=sys.stderr, flush=True)
        cases.append(bench_case(shape, args, timer, bandwidth, status.loaded))
        report = {"meta": meta, "cases": cases, "targets": evaluate_targets(cases)}
        if args.out:  # after every case, so that an interrupted run keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    print_summary(report)
    return report


if __name__ == "__main__":
    main()
