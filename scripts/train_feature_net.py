"""Train one of the project's feature networks (FD / KID / PR / IS without Inception weights).

python scripts/train_feature_net.py --cfg cfg/features_<mnist|cifar10|celeba>.yml [--out DIR]
       [--device cuda] [--max-iters N] [--resume auto] [KEY.SUB=VALUE ...]

It trains with the common loop (checkpoints, resume, torchrun as any model), then scores the
network on its held-out images and writes into the run directory `features.pt` (a plain state
dict), `features.json` (the network, its config, its input rule, its accuracy) and
`accuracy.json` ({"heldout": fraction, "n": images, ...}). `evaluate.py --features RUN` then
uses it; see docs/metrics.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.metrics.train_features import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
