"""Draw a bank of K random projection filters and write it as a filts.npz (original layout).

python scripts/rpgan_make_filters.py OUT.npz --k 48 [--seed 0] [--size 8] [--stride 2] [--channels 1]

Each filter is a float32 standard-normal [size, size, 3, channels] draw divided by its L2 norm,
as the original's filts/rproj.py, but seeded: the same seed gives the bank that PROJ.SEED gives
in a config, so a run with PROJ.FILTERS=OUT.npz equals one with PROJ.SEED=SEED. The file holds
`nfilt`, `p{i}` [size, size, 3, channels] and `s{i}` (the stride), and loads in the original
code too.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import ArgumentParser, check_counts, check_output_file, write_output  # noqa: E402
from common.errors import ConfigError, UserError  # noqa: E402
from rpgan.projection import draw_filters, save_filters_npz  # noqa: E402


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output .npz file")
    p.add_argument("--k", type=int, required=True, help="number of projections")
    p.add_argument("--seed", type=int, default=0, help="seed of numpy's RandomState")
    p.add_argument("--size", type=int, default=8, help="filter size (default 8)")
    p.add_argument("--stride", type=int, default=2, help="projection stride (default 2)")
    p.add_argument("--channels", type=int, default=1, help="channels per projection (default 1)")
    args = p.parse_args(argv)
    try:
        check_counts(args, positive=("k", "stride", "channels"))
        if args.size < args.stride or (args.size - args.stride) % 2:
            raise ConfigError(f"--size {args.size}: expected --size minus --stride ({args.stride}) "
                              "even and >= 0 (half of it is the padding)")
        if not 0 <= args.seed < 2**32:
            raise ConfigError(f"--seed: expected an integer from 0 to 2**32 - 1 (numpy's "
                              f"RandomState), got {args.seed}")
        check_output_file(args.out)
        try:
            filters = draw_filters(args.k, args.seed, args.size, args.channels)
        except (MemoryError, ValueError):  # numpy refuses or cannot allocate the draws
            raise ConfigError(f"--k {args.k}, --size {args.size}: a bank this large does not "
                              "fit in memory") from None
        path = write_output(args.out, lambda target: save_filters_npz(
            target, filters, args.channels, args.stride))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"wrote {args.k} projection filters ({args.size}x{args.size}, stride {args.stride}, "
          f"3 -> {args.channels}) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
