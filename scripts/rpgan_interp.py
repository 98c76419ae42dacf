"""Interpolate between images of an RP-GAN sample grid (the original's interp.py).

python scripts/rpgan_interp.py CKPT_OR_RUN out.png A,B [C,D ...] [--seed 0] [--steps 11]
       [--slerp] [--bn population|batch] [--device cpu]

IDs are 1-based positions in the 10 x 15 grid that `scripts/sample.py CKPT --seed S` draws
(reading order: ID = row * 15 + col + 1). Each pair gives one row of --steps images, the first
ID on the left. Linear interpolation in z as the original; --slerp (spherical) is an option
the original did not have. Batch norm uses the population statistics of scripts/rpgan_fixbn.py (as
the original's .bgmodel), so the endpoints equal the images of
`scripts/sample.py CKPT --bn population`; --bn batch normalises over this picture's images.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import ArgumentParser, check_output_file, check_seeds, write_output  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.images import save_grid  # noqa: E402
from rpgan import sampling  # noqa: E402
from rpgan.trainer import load_generator  # noqa: E402


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt", help="RP-GAN checkpoint file or run directory")
    p.add_argument("out", help="output PNG")
    p.add_argument("pairs", nargs="+", metavar="A,B", help="pairs of 1-based image IDs")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample grid (default 0)")
    p.add_argument("--steps", type=int, default=sampling.INTERP_STEPS,
                   help="images per row, endpoints included (default 11)")
    p.add_argument("--slerp", action="store_true",
                   help="spherical interpolation (not in the original)")
    p.add_argument("--bn", choices=("population", "batch"), default="population",
                   help="batch-norm statistics (default: population, from scripts/rpgan_fixbn.py)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be at least 2")
    try:
        check_seeds(args, "seed")
        check_output_file(args.out)
        pairs = sampling.parse_pairs(args.pairs)
        generator, _, _ = load_generator(args.ckpt, args.device)
        pool = sampling.noise_pool(args.seed, sampling.POOL, generator.z_dim)
        z = sampling.interpolation_latents(pool, pairs, args.steps, args.slerp)
        images = sampling.render(generator, z, args.bn == "population", batch=len(z))
        write_output(args.out, lambda path: save_grid(images, path, nrow=args.steps))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"wrote {args.out} ({len(pairs)} rows x {args.steps} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
