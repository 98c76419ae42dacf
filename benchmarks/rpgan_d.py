"""RP-GAN's K discriminators: one batched network against a Python loop over K modules.

python benchmarks/rpgan_d.py [--k 48] [--batch 64 128] [--impl loop grouped grouped_cl bmm]
    [--precision fp32 tf32 bf16] [--mode d g] [--df 128] [--image-size 64] [--warmup 5]
    [--iters 20] [--device auto] [--iteration CFG [--override KEY=VALUE ...]]
    [--json runs/benchmarks/rpgan_d.json]

Times forward + backward of the whole bank at the face48 configuration (K = 48, df = 128,
64x64 images): `--mode d` is the discriminator step (gradients of all weights, input without
gradient), `--mode g` the generator step (gradient of the input only). Implementations:
  loop        K separate nn.Sequential networks called one after another (the original's
              per-discriminator structure; the reference)
  grouped     rpgan.projection.DiscriminatorBank(impl="grouped"): one grouped conv per layer
  grouped_cl  the same on channels_last tensors
  bmm         DiscriminatorBank(impl="bmm"): im2col + one batched GEMM over K per layer
  bmm_compile the bmm bank under torch.compile (opt-in: compiling takes minutes)
--iteration CFG also times whole training iterations of that config (G step, D step, both
Adams, through common.train's phase runner) on a synthetic batch.
CUDA times come from CUDA events, medians after warm-up; cudnn.benchmark is on from the start.
Results go to a JSON file; a summary table with the speed-ups over the loop is printed last.
On a CPU it runs too (use a small --k/--df/--batch), for smoke checks only.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common.precision import autocast as autocast_region  # noqa: E402
from rpgan.models import projected_discriminators  # noqa: E402
from rpgan.projection import draw_filters  # noqa: E402

IMPLS = ("loop", "grouped", "grouped_cl", "bmm", "bmm_compile")
PRECISIONS = ("fp32", "tf32", "bf16")
# Nominal dense peak TFLOP/s (fp32 on CUDA cores, tf32 and bf16 on tensor cores); first match.
PEAK_TFLOPS = [("H200", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),
               ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
               ("H100", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),
               ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0})]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=int, default=48, help="number of discriminators (default 48)")
    p.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    p.add_argument("--impl", nargs="+", default=list(IMPLS[:4]), choices=IMPLS)
    p.add_argument("--precision", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--mode", nargs="+", default=["d", "g"], choices=("d", "g"),
                   help="d: weight gradients (D step); g: input gradient (G step)")
    p.add_argument("--df", type=int, default=128, help="discriminator width (default 128)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--iteration", default=None, metavar="CFG",
                   help="also time full training iterations of this config")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for --iteration (repeatable)")
    p.add_argument("--json", default="runs/benchmarks/rpgan_d.json", help="output JSON file")
    return p.parse_args(argv)


def set_precision(precision: str, device: torch.device):
    """TF32 switches and the autocast context of a precision."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    mode = "bf16" if precision == "bf16" else "fp32"  # tf32 is a matmul switch, not autocast
    return lambda: autocast_region(device.type, mode)


def make_forward(impl: str, bank, loop_nets, compiled: dict):
    if impl == "bmm_compile":
        if "bank" not in compiled:
            compiled["bank"] = torch.compile(bank, dynamic=False)

        def forward(x):
            bank.impl = "bmm"
            return compiled["bank"](x)
        return forward
    if impl == "loop":
        return lambda x: torch.cat([net(x) for net in loop_nets], dim=1)
    if impl == "grouped_cl":
        def forward(x):
            bank.impl = "grouped"
            return bank(x.contiguous(memory_format=torch.channels_last))
        return forward

    def forward(x):
        bank.impl = impl
        return bank(x)
    return forward


class Timer:
    """CUDA events on a GPU, perf_counter (after a sync) elsewhere."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000.0


def measure(run, device) -> dict:
    """Median, min and max ms of `run()`'s timings and the peak memory; an error (e.g. out of
    memory, a failed compile) is recorded instead of ending the benchmark."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        times = run()
    except Exception as err:  # noqa: BLE001 - any failure becomes a row of the report
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    row = {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
           "iters": len(times)}
    if device.type == "cuda":
        row["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 3)
    return row


def run_case(forward, params, x, autocast, timer, warmup, iters):
    def step():
        for p in params:
            p.grad = None
        if x.grad is not None:
            x.grad = None
        with autocast():
            logits = forward(x)
        # a D-loss-shaped scalar: mean over the batch, sum over the discriminators
        F.softplus(logits.float()).mean(0).sum().backward()

    for _ in range(warmup):
        step()
    times = [timer(step) for _ in range(iters)]
    return times


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    torch.backends.cudnn.benchmark = True   # before the first convolution: cuDNN picks per shape at first use
    torch.manual_seed(0)
    with torch.device(device):
        bank = projected_discriminators(args.k, args.image_size, args.df,
                                        draw_filters(args.k, 0))
    bank = bank.to(device)
    loop_nets = [bank.discriminator(k) for k in range(args.k)] if "loop" in args.impl else []
    timer = Timer(device)
    results, checks, compiled = [], {}, {}
    for precision in args.precision:
        autocast = set_precision(precision, device)
        for batch in args.batch:
            x0 = torch.randn(batch, 3, args.image_size, args.image_size, device=device)
            for mode in args.mode:
                x = x0.clone().requires_grad_(mode == "g")
                for impl in args.impl:
                    # the loop's first module is the fixed projection (a buffer in the bank)
                    params = ([p for n in loop_nets for p in n[1:].parameters()]
                              if impl == "loop" else list(bank.parameters()))
                    for p in params:
                        p.requires_grad_(mode == "d")
                    forward = make_forward(impl, bank, loop_nets, compiled)
                    row = {"impl": impl, "precision": precision, "batch": batch, "mode": mode}
                    row.update(measure(lambda: run_case(forward, params, x, autocast, timer,
                                                        args.warmup, args.iters), device))
                    results.append(row)
                    print(json.dumps(row), flush=True)
        if precision == "fp32" and "loop" in args.impl:
            checks.update(agreement(bank, loop_nets, args, device))
    for p in bank.parameters():
        p.requires_grad_(True)
    for row in results:
        ref = [r for r in results if r["impl"] == "loop" and r["precision"] == row["precision"]
               and r["batch"] == row["batch"] and r["mode"] == row["mode"]]
        if ref and "median_ms" in ref[0] and "median_ms" in row:
            row["speedup_vs_loop"] = round(ref[0]["median_ms"] / row["median_ms"], 3)
    add_arithmetic_rates(results, bank, args.image_size, device_name(device))
    bank_parameters = sum(p.numel() for p in bank.parameters())
    del bank, loop_nets, compiled
    iterations = time_iterations(args, device, timer) if args.iteration else []
    report = {"benchmark": "rpgan_d", "device": device_name(device), "torch": torch.__version__,
              "cuda": torch.version.cuda, "python": platform.python_version(),
              "config": {k: v for k, v in vars(args).items() if k != "json"},
              "parameters_per_bank": bank_parameters,
              "agreement_fp32": checks, "results": results, "iterations": iterations}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")
    for row in iterations:
        print(f"training iteration of {row['config']} ({row['precision']}): "
              + (f"{row['median_ms']:.1f} ms median, {row.get('peak_mem_gb', 0):.1f} GB peak, "
                 f"100k iterations ~ {row['median_ms'] * 1e5 / 3.6e6:.2f} h"
                 if "median_ms" in row else row["error"]))
    print_table(results, report["device"], args.k)
    return 0


def add_arithmetic_rates(results: list[dict], bank, image_size: int, device: str) -> None:
    """TFLOP/s of each row (the convolutions' multiply-adds over its median time) and the
    share of the device's nominal peak in that precision: how far any path could still go."""
    peaks = next((p for key, p in PEAK_TFLOPS if key in device), None)
    for row in results:
        if "median_ms" not in row:
            continue
        flops = bank.matmul_flops(row["batch"], image_size, weight_grads=row["mode"] == "d",
                                  input_grad=row["mode"] == "g")
        row["flops"] = flops
        row["tflop_per_s"] = flops / (row["median_ms"] * 1e-3) / 1e12
        if peaks:
            row["share_of_peak"] = round(row["tflop_per_s"] / peaks[row["precision"]], 3)


@torch.no_grad()
def agreement(bank, loop_nets, args, device) -> dict:
    """Largest |difference| of the logits of each batched path against the loop (fp32)."""
    set_precision("fp32", device)
    x = torch.randn(8, 3, args.image_size, args.image_size, device=device)
    ref = torch.cat([net(x) for net in loop_nets], dim=1)
    out = {}
    for impl in ("grouped", "bmm"):
        bank.impl = impl
        out[f"{impl}_max_abs_diff"] = float((bank(x) - ref).abs().max())
    return out


def time_iterations(args, device, timer) -> list[dict]:
    """Whole training iterations of a config, run by common.train's own phase runner."""
    from common import logging as log
    from common import models
    from common import train as loop_module
    from common.trainer import Progress
    from rpgan import trainer as rp
    rows = []
    for precision in args.precision:
        overrides = [f"RUN.PRECISION={'bf16' if precision == 'bf16' else 'fp32'}",
                     f"RUN.TF32={precision == 'tf32'}", *args.override]
        cfg = models.load_config(rp, args.iteration, overrides)
        row = {"config": args.iteration, "precision": precision,
               "batch": cfg.TRAIN.BATCH_SIZE, "k": cfg.PROJ.K}

        def run():
            loop_module._setup_backends(cfg.RUN, device)
            torch.backends.cudnn.benchmark = True
            trainer = rp.build(cfg, device)
            loop = loop_module.Loop(trainer, Path("unused"), None)
            loop.progress = trainer.progress = Progress(0, 0, 0, 1, 1)
            loop.phases = trainer.phases()
            loop.finite = {p.name: torch.ones((), dtype=torch.bool, device=device)
                           for p in loop.phases}
            size = cfg.DATA.IMAGE_SIZE
            batch = {"image": torch.rand(cfg.TRAIN.BATCH_SIZE, 3, size, size, device=device)
                     * 2 - 1}
            for _ in range(args.warmup):
                loop.iteration(batch)
            times = [timer(lambda: loop.iteration(batch)) for _ in range(args.iters)]
            log.collect()   # drop the reported values
            return times

        row.update(measure(run, device))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def print_table(results: list[dict], device: str, k: int) -> None:
    impls = list(dict.fromkeys(r["impl"] for r in results))
    print(f"\nRP-GAN discriminator bank, K = {k}, forward + backward, median ms "
          f"(speed-up over the loop) on {device}")
    header = f"{'precision':<10}{'batch':>6}{'mode':>5}" + "".join(f"{i:>20}" for i in impls)
    print(header)
    print("-" * len(header))
    keys = list(dict.fromkeys((r["precision"], r["batch"], r["mode"]) for r in results))
    for precision, batch, mode in keys:
        cells = []
        for impl in impls:
            row = next((r for r in results if (r["impl"], r["precision"], r["batch"], r["mode"])
                        == (impl, precision, batch, mode)), None)
            if row is None or "median_ms" not in row:
                cells.append(f"{'-' if row is None else 'error':>20}")
            elif "speedup_vs_loop" in row and impl != "loop":
                cells.append(f"{row['median_ms']:>11.2f} ({row['speedup_vs_loop']:4.1f}x)")
            else:
                cells.append(f"{row['median_ms']:>20.2f}")
        print(f"{precision:<10}{batch:>6}{mode:>5}" + "".join(cells))
    rated = [r for r in results if "tflop_per_s" in r]
    if rated:
        print("\narithmetic rate, TFLOP/s of the convolutions (share of the nominal peak):")
        for r in rated:
            share = f" ({100 * r['share_of_peak']:.0f}%)" if "share_of_peak" in r else ""
            print(f"  {r['impl']:<12}{r['precision']:<6}batch {r['batch']:<5}{r['mode']}  "
                  f"{r['tflop_per_s']:8.1f}{share}")


if __name__ == "__main__":
    sys.exit(main())
