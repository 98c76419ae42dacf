"""Train a feature network and export it (the body of scripts/train_feature_net.py, also called by
scripts/reproduce.py when a claim's network is missing)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from common import checkpoint, cli
from common.errors import UserError
from common.metrics import feature_net


def main(argv=None, prog: str = "train_feature_net.py") -> int:
    start = time.perf_counter()
    code = cli.train_main(feature_net.NAME, argv)
    args = cli.parse(cli.parser(prog), argv)
    if code or args.dry_run or int(os.environ.get("RANK", "0")) != 0:
        return code
    try:
        args.resume = "auto"  # the run just trained is the newest one with a checkpoint
        run_dir, ckpt = cli.resolve_run_dir(args, Path(args.cfg).stem)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        trainer, _ = checkpoint.load_trainer(ckpt, device)
        accuracy = feature_net.export(trainer, run_dir, round(time.perf_counter() - start, 1))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(json.dumps({k: v for k, v in accuracy.items() if k != "sets"}))
    for name, score in accuracy["sets"].items():
        base = f" (majority baseline {score['majority_baseline']:.4f})"
        print(f"held-out {name}: {accuracy['metric']} {score['value']:.4f} on {score['n']} "
              f"images{base}")
    print(f"wrote {Path(run_dir) / feature_net.WEIGHTS_FILE} and {feature_net.META_FILE}")
    return 0

