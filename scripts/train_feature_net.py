"""Train one of the project's feature networks (FD / KID / PR / IS without Inception weights).

python scripts/train_feature_net.py --cfg cfg/features_<mnist|cifar10|celeba>.yml [--out DIR]
       [--device cuda] [--max-iters N] [--resume auto] [KEY.SUB=VALUE ...]

It trains with the common loop (checkpoints, resume, torchrun as any model), then scores the
network on its held-out images and writes into the run directory `features.pt` (a plain state
dict), `features.json` (the network, its config, its input rule, its accuracy) and
`accuracy.json` ({"heldout": fraction, "n": images, ...}). `evaluate.py --features RUN` then
uses it; see docs/metrics.md.
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import checkpoint, cli  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.metrics import feature_net  # noqa: E402


def main(argv=None, prog: str = "train_feature_net") -> int:
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


if __name__ == "__main__":
    sys.exit(main())
