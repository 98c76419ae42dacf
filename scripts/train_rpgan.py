"""Train RP-GAN (or its single-discriminator baseline) from a config: see docs/rpgan.md.

python scripts/train_rpgan.py --cfg cfg/rpgan_face48.yml [--out DIR] [--resume auto|PATH]
    [--device cpu|cuda] [--max-iters N] [--dry-run] [KEY.SUB=VALUE ...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import train_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_main("rpgan"))
