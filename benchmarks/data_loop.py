"""Is data loading ever the bottleneck? The full loop on real data vs synthetic batches.

python benchmarks/data_loop.py --model lrgan --cfg cfg/lrgan_cifar10.yml DATA.ROOT=... \
    [--fast graphs] [--iters 200] [--out result.json] [KEY=VALUE ...]

Both runs use the same fast path (a variant of benchmarks/train_step.py). The full loop reads
the dataset with RUN.WORKERS processes, pinned memory and a side-stream prefetch to the GPU; its
rate is measured between two status ticks (warm-up excluded) and compared with the rate of the
same iterations on batches already on the device. A third number is the data pipeline alone
(the same loader and prefetch, no training step): how much faster than the step it can feed.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import models, train  # noqa: E402
from common.data import EpochLoader  # noqa: E402
from common.data.loader import device_batches  # noqa: E402
from train_step import VARIANTS, time_variant  # noqa: E402


def loop_rate(module, cfg_path, overrides, device, iters) -> float:
    """img/s of the full loop over `iters` iterations after `iters` warm-up iterations."""
    cfg = models.load_config(module, cfg_path, [
        f"RUN.DEVICE={device}", f"RUN.MAX_ITERS={2 * iters}", f"RUN.LOG_EVERY={iters}",
        "RUN.SAMPLE_EVERY=0", "RUN.CKPT_EVERY=0", "RUN.PROGRESS=lines", *overrides])
    torch.manual_seed(0)
    trainer = module.build(cfg, device)
    with tempfile.TemporaryDirectory() as tmp:
        train.run(trainer, tmp)
        rows = [json.loads(line) for line in (Path(tmp) / "stats.jsonl").read_text().splitlines()]
    return rows[-1]["img_per_s"]


def loader_rate(module, cfg_path, overrides, device, iters) -> float:
    """img/s that the loop's loader (workers, pinned memory, prefetch to the device) delivers
    with nothing else running, over `iters` batches after `iters` warm-up batches."""
    cfg = models.load_config(module, cfg_path, [f"RUN.DEVICE={device}", *overrides])
    trainer = module.build(cfg, device)
    loader = EpochLoader(trainer.dataset(), trainer.batch_size, 1, 0, cfg.RUN.SEED,
                         cfg.RUN.WORKERS, device.type == "cuda")
    batches = device_batches(loader.from_iteration(0), device, cfg.RUN.CHANNELS_LAST)
    for _ in range(iters):
        next(batches)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    for _ in range(iters):
        next(batches)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return iters * trainer.batch_size / (time.perf_counter() - began)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--cfg", required=True)
    p.add_argument("--fast", default="graphs", help=f"variant of train_step.py: {', '.join(VARIANTS)}")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*")
    args = p.parse_intermixed_args(argv)  # options and KEY=VALUE overrides in any order
    module, device = models.module(args.model), torch.device(args.device)
    overrides = VARIANTS[args.fast] + args.overrides
    synthetic = time_variant(module, args.cfg, overrides, device, 0, args.iters, 15)
    real = loop_rate(module, args.cfg, overrides, device, args.iters)
    feed = loader_rate(module, args.cfg, overrides, device, args.iters)
    ratio = real / synthetic["images_per_s"]
    result = {"model": args.model, "cfg": args.cfg, "fast": args.fast, "overrides": args.overrides,
              "synthetic_img_per_s": synthetic["images_per_s"], "loop_img_per_s": real,
              "ratio": round(ratio, 3), "loader_img_per_s": round(feed, 1),
              "loader_over_synthetic": round(feed / synthetic["images_per_s"], 2),
              "torch": str(torch.__version__),
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    print(json.dumps(result))
    print(f"\n{args.model} ({args.fast}): full loop {real:.0f} img/s vs synthetic "
          f"{synthetic['images_per_s']:.0f} img/s = {ratio:.1%}; the loader alone "
          f"{feed:.0f} img/s ({feed / synthetic['images_per_s']:.1f}x the step's rate)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
