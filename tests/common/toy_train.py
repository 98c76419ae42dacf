"""Command line of the toy model (tests only): same contract as scripts/train_<model>.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.cli import train_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_main("tests.common.toy_model"))
