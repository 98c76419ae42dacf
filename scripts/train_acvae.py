"""Train a model of the acVAE family: cvae, cgan, cvaegan, crvaegan, acvaegan (CelebA, 64 px and
128 px by progressive growing) and crVAE's MNIST ablation. See docs/acvae.md.

python scripts/train_acvae.py --cfg cfg/acvae_celeba64_acvaegan.yml [--out DIR] [--resume auto]
       [--device cuda] [--max-iters N] [KEY.SUB=VALUE ...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import train_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_main("acvae"))
