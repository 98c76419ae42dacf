"""Train StackGAN v1 or StackGAN++ (v2), or sample from them: the config decides.

python scripts/train_stackgan.py --cfg cfg/coco_s1.yml [--out DIR] [--resume auto|PATH]
       [--device cpu|cuda] [--max-iters N] [--dry-run] [KEY.SUB=VALUE ...]

A config with a top-level TREE section is StackGAN++ (model "stackgan_v2", stackgan/v2/); any
other is StackGAN v1 (model "stackgan_v1", stackgan/v1/). With TRAIN.FLAG: False the
run samples from NET_G instead of training (images go to the run directory).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import ArgumentParser, train_main  # noqa: E402
from common.config import read_yaml  # noqa: E402
from common.errors import ConfigError  # noqa: E402


def model_for(cfg_path: str | None) -> str:
    """stackgan_v2 when the YAML file has a top-level TREE section, else stackgan_v1. An unreadable
    file falls through to v1, whose config loader reports the problem with the file's name."""
    try:
        data = read_yaml(Path(cfg_path))
    except (ConfigError, TypeError):  # TypeError: no --cfg given
        return "stackgan_v1"
    return "stackgan_v2" if isinstance(data, dict) and "TREE" in data else "stackgan_v1"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    peek = ArgumentParser(add_help=False)
    peek.add_argument("--cfg")
    known, _ = peek.parse_known_args(argv)
    return train_main(model_for(known.cfg), argv)


if __name__ == "__main__":
    sys.exit(main())
