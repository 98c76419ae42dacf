"""Turn an original implementation's released weights into a ganrepro run directory.

python scripts/import_weights.py rpgan --cfg cfg/rpgan_<exp>.yml --gmodel FILE [--bgmodel FILE]
       [--dmodel FILE --filters FILE] --out RUN_DIR [KEY.SUB=VALUE ...]

rpgan: the TensorFlow `.npz` files of ayanc/rpgan: `iter_<n>.gmodel.npz` (G),
`iter_<n>.bgmodel.npz` (G with fixbn's population batch-norm statistics, used by
`scripts/sample.py RUN --bn population` and `scripts/rpgan_interp.py`), `iter_<n>.dmodel.npz` (the K
discriminators; needs the run's `filts.npz` as --filters). RUN_DIR gets config.yml and
checkpoints/last.pt, which scripts/sample.py, rpgan_interp.py, rpgan_fixbn.py, evaluate.py and
`scripts/train_rpgan.py --cfg RUN_DIR/config.yml --out RUN_DIR --resume auto` accept (fresh Adam
states; the counters stand at the n of the file name). See docs/rpgan.md.

Only rpgan is supported: StackGAN's `.pth` files are read as they are (STAGE1_G / NET_G /
TRAIN.NET_G, docs/stackgan.md), and acVAE's repositories released no weights.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import ArgumentParser, check_writable  # noqa: E402
from common.errors import UserError  # noqa: E402


def rpgan(argv: list[str]) -> int:
    from common import models
    from rpgan.import_tf import import_run
    p = ArgumentParser(prog="import_weights.py rpgan",
                       description="Import the original RP-GAN's TensorFlow models.")
    p.add_argument("--cfg", required=True, help="the experiment's config (cfg/rpgan_<exp>.yml)")
    p.add_argument("--gmodel", help="iter_<n>.gmodel.npz: the generator")
    p.add_argument("--bgmodel", help="iter_<n>.bgmodel.npz: the generator with fixbn's "
                   "population batch-norm statistics (alone or with its --gmodel)")
    p.add_argument("--dmodel", help="iter_<n>.dmodel.npz: the discriminators (optional; fresh "
                   "ones otherwise)")
    p.add_argument("--filters", help="the run's filts.npz (sets PROJ.FILTERS); needed with "
                   "--dmodel unless the config names it")
    p.add_argument("--out", required=True, help="run directory to write (must hold no run)")
    p.add_argument("overrides", nargs="*", metavar="KEY.SUB=VALUE", help="config overrides")
    args = p.parse_intermixed_args(argv)
    try:
        cfg = models.load_config("rpgan", args.cfg, args.overrides)
        check_writable(Path(args.out))
        ckpt, counters = import_run(cfg, args.out, args.gmodel, args.bgmodel, args.dmodel,
                                    args.filters, argv=sys.argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    parts = ", ".join(k for k in ("gmodel", "bgmodel", "dmodel") if getattr(args, k))
    print(f"wrote {ckpt} ({parts}; iteration {counters['iteration']})")
    return 0


IMPORTERS = {"rpgan": rpgan}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    model, rest = argv[0], argv[1:]
    if model not in IMPORTERS:
        print(f"error: import_weights.py: no importer for model {model!r} (supported: "
              f"{', '.join(IMPORTERS)}; StackGAN's .pth files load directly as NET_G / "
              "STAGE1_G / TRAIN.NET_G, and acVAE released no weights)", file=sys.stderr)
        return 2
    return IMPORTERS[model](rest)


if __name__ == "__main__":
    sys.exit(main())
