"""Train LR-GAN: python scripts/train_lrgan.py --cfg cfg/lrgan_demo.yml [--out DIR] [KEY=VALUE ...]

See docs/lrgan.md; the command line is common/cli.py's (--resume auto, --device, --max-iters, ...).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import train_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_main("lrgan"))
