"""Sample images from any model's checkpoint.

python scripts/sample.py RUN_OR_CKPT [OUT.png] [--n 64] [--nrow 8] [--seed 0] [--raw]
       [--device cpu|cuda] [model-specific options: see --help with a checkpoint]

Uses the EMA generator where the model keeps one (--raw for the live generator). Models add
their own options and pictures (e.g. LR-GAN's layer decomposition) through their module's
`add_sample_args` and `sample` functions.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common.cli import (ArgumentParser, check_counts, check_output_file,  # noqa: E402
                        check_seeds, write_output)
from common import checkpoint, models  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.images import save_grid  # noqa: E402


def base_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", help="checkpoint file or run directory")
    p.add_argument("out", nargs="?", default="samples.png", help="output PNG (default samples.png)")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--nrow", type=int, default=8, help="images per row of the grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    p.add_argument("--raw", action="store_true", help="use the live generator, not its EMA twin")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied when rebuilding the model (repeatable)")
    return p


def main(argv=None) -> int:
    parser = base_parser()
    args, _ = parser.parse_known_args(argv)
    try:
        path = checkpoint.resolve(args.ckpt)
        state = checkpoint.load(path)
        declared = models.spec(state["model"])
        if declared.add_sample_args is not None:
            declared.add_sample_args(parser)
        parser.add_argument("-h", "--help", action="help", help="show this help and exit")
        args = parser.parse_args(argv)
        check_counts(args, positive=("n", "nrow", "sweep_steps"))
        check_seeds(args, "seed")
        check_output_file(args.out)
        trainer = checkpoint.trainer_from_state(state, args.device, args.override, str(path))
        with torch.no_grad():
            if declared.sample is not None:
                pictures = declared.sample(trainer, args)
            else:
                pictures = {"samples": (trainer.generate(args.n, args.seed, ema=not args.raw),
                                        args.nrow)}
        out = Path(args.out)
        targets = {name: out if i == 0 else out.with_name(f"{out.stem}_{name}{out.suffix or '.png'}")
                   for i, name in enumerate(pictures)}
        for target in targets.values():  # all of them before the first is written
            check_output_file(target)
        for name, (images, nrow) in pictures.items():
            write_output(targets[name], lambda target: save_grid(images, target, nrow))
            print(f"wrote {targets[name]} ({name}: {images.shape[0]} images)")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
