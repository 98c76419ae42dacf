"""Time one training iteration of a paper configuration: the plain eager loop vs fast paths.

python benchmarks/train_step.py --model lrgan --cfg cfg/lrgan_cifar10.yml [--variants ...]
    [--batch N] [--iters 50] [--warmup 15] [--out result.json] [--profile N] [KEY=VALUE ...]

Synthetic batches already on the device (data loading excluded), the real common loop
(`common.train.Loop.iteration`), medians of CUDA-event times per iteration after warm-up, peak
memory, images/s. Each variant is a set of RUN overrides on top of the config; the first is the
baseline of the speed-up column. `--profile N` prints a torch.profiler table (operators and
kernels by their own time) over N more iterations of each variant: where the time goes.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import models  # noqa: E402
from common.train import Loop  # noqa: E402

# The plain eager fp32 loop: every switch off, whatever the config's own defaults are.
PLAIN = ["RUN.FUSED_OPTIM=false", "RUN.CHANNELS_LAST=false", "RUN.COMPILE=false",
         "RUN.CUDA_GRAPHS=false", "RUN.PRECISION=fp32", "RUN.TF32=false"]
SWITCHES = {
    "eager": [],
    "fused": ["RUN.FUSED_OPTIM=true"],
    "channels_last": ["RUN.FUSED_OPTIM=true", "RUN.CHANNELS_LAST=true"],
    "compile": ["RUN.FUSED_OPTIM=true", "RUN.COMPILE=true"],
    "graphs": ["RUN.FUSED_OPTIM=true", "RUN.CUDA_GRAPHS=true"],
    "graphs+compile": ["RUN.FUSED_OPTIM=true", "RUN.CUDA_GRAPHS=true", "RUN.COMPILE=true"],
    "graphs+bf16": ["RUN.FUSED_OPTIM=true", "RUN.CUDA_GRAPHS=true", "RUN.PRECISION=bf16"],
    "bf16": ["RUN.FUSED_OPTIM=true", "RUN.PRECISION=bf16"],
    "tf32": ["RUN.FUSED_OPTIM=true", "RUN.TF32=true"],
    "graphs+tf32": ["RUN.FUSED_OPTIM=true", "RUN.CUDA_GRAPHS=true", "RUN.TF32=true"],
    "graphs+compile+tf32": ["RUN.FUSED_OPTIM=true", "RUN.CUDA_GRAPHS=true", "RUN.COMPILE=true",
                            "RUN.TF32=true"],
    "bf16+tf32": ["RUN.FUSED_OPTIM=true", "RUN.PRECISION=bf16", "RUN.TF32=true"],
    "compile+tf32": ["RUN.FUSED_OPTIM=true", "RUN.COMPILE=true", "RUN.TF32=true"],
    "compile+bf16": ["RUN.FUSED_OPTIM=true", "RUN.COMPILE=true", "RUN.PRECISION=bf16"],
    "bf16+channels_last": ["RUN.FUSED_OPTIM=true", "RUN.PRECISION=bf16", "RUN.CHANNELS_LAST=true"],
}
VARIANTS = {name: PLAIN + switches for name, switches in SWITCHES.items()}


class Timer:
    """Per-iteration wall time: CUDA events on a GPU, perf_counter on a CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            return start, end
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def ms(self, records):
        if self.cuda:
            torch.cuda.synchronize()
            return [s.elapsed_time(e) for s, e in records]
        return [r * 1000 for r in records]


def print_profile(loop, data, device, iters: int, rows: int = 18) -> None:
    """The kernels and operators that take the time: torch.profiler over `iters` iterations,
    sorted by their own GPU time (CPU time on a CPU)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(iters):
            loop.iteration(data)
        if cuda:
            torch.cuda.synchronize(device)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60),
          flush=True)


def time_variant(module, cfg_path, overrides, device, batch, iters, warmup, profile_iters=0):
    cfg = models.load_config(module, cfg_path, [f"RUN.DEVICE={device}", "RUN.WORKERS=0",
                                                 *overrides])
    torch.manual_seed(0)
    if device.type == "cuda":
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    trainer = module.build(cfg, device)
    if batch:
        trainer.batch_size = batch
    with tempfile.TemporaryDirectory() as tmp:
        loop = Loop(trainer, Path(tmp), None)
        loop.prepare(0, 10**9, 10**6)
        data = trainer.synthetic_batch(trainer.batch_size)
        timer = Timer(device)
        for _ in range(warmup):
            loop.iteration(data)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        block = time.perf_counter()
        records = [timer(lambda: loop.iteration(data)) for _ in range(iters)]
        times = timer.ms(records)
        block_ms = (time.perf_counter() - block) * 1000 / iters
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        loop.guard()  # a fast path that produced NaNs must not report a time
        if profile_iters:
            print_profile(loop, data, device, profile_iters)
    median = statistics.median(times)
    return {"median_ms": round(median, 4), "mean_ms_wall": round(block_ms, 4),
            "min_ms": round(min(times), 4), "images_per_s": round(trainer.batch_size / median * 1000, 1),
            "peak_mem_gb": None if peak is None else round(peak, 3), "batch": trainer.batch_size}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="registry name: lrgan, stackgan_v1, stackgan_v2, acvae, rpgan")
    p.add_argument("--cfg", required=True)
    p.add_argument("--variants", default="eager,fused,channels_last,compile,graphs,graphs+compile",
                   help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--batch", type=int, default=0, help="batch size (default: the config's)")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, help="JSON file for the results")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="after timing, print a torch.profiler table over N iterations per variant")
    p.add_argument("overrides", nargs="*", help="config overrides for every variant")
    args = p.parse_intermixed_args(argv)  # options and KEY=VALUE overrides in any order
    module = models.module(args.model)
    device = torch.device(args.device)
    results = {"model": args.model, "cfg": args.cfg, "torch": str(torch.__version__),
               "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "variants": {}}
    for name in args.variants.split(","):
        try:
            res = time_variant(module, args.cfg, VARIANTS[name] + args.overrides, device,
                               args.batch, args.iters, args.warmup, args.profile)
        except Exception as err:  # a fast path that fails is a result too
            res = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
        results["variants"][name] = res
        print(f"{name}: {res}", flush=True)
    base = results["variants"].get(args.variants.split(",")[0], {}).get("median_ms")
    print(f"\n{args.model} {args.cfg} on {results['device']}, torch {results['torch']}")
    print(f"{'variant':<16}{'median ms':>11}{'img/s':>11}{'speed-up':>10}{'peak GB':>9}")
    for name, res in results["variants"].items():
        if "error" in res:
            print(f"{name:<16}  failed: {res['error'][:90]}")
            continue
        speedup = f"{base / res['median_ms']:.2f}x" if base else "-"
        mem = f"{res['peak_mem_gb']:.2f}" if res["peak_mem_gb"] is not None else "-"
        print(f"{name:<16}{res['median_ms']:>11.3f}{res['images_per_s']:>11.0f}{speedup:>10}{mem:>9}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
