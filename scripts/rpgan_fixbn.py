"""Compute an RP-GAN generator's population batch-norm statistics once and store them in the
checkpoint (the original's fixbn.py, seeded).

python scripts/rpgan_fixbn.py CKPT_OR_RUN [--out FILE] [--n 2048] [--seed 0] [--device cpu]

One forward pass of n latents z ~ U(-1, 1); every batch-norm layer records the mean and the
biased variance of its input over that batch (each layer normalised with the same batch's
statistics). The checkpoint is rewritten atomically (or written to --out); then
`scripts/sample.py CKPT --bn population` and `scripts/rpgan_interp.py` use these statistics, so an
image depends on its own latent only. Resuming training from the checkpoint drops them (they
would go stale).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import ArgumentParser, check_output_file, check_seeds  # noqa: E402
from common import checkpoint  # noqa: E402
from common.errors import UserError  # noqa: E402
from rpgan.sampling import FIXBN_BATCH, population_statistics  # noqa: E402
from rpgan.trainer import load_generator  # noqa: E402


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt", help="RP-GAN checkpoint file or run directory")
    p.add_argument("--out", default=None, help="write here instead of rewriting the checkpoint")
    p.add_argument("--n", type=int, default=FIXBN_BATCH, help="batch size (default 2048)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error("--n must be at least 2")
    try:
        check_seeds(args, "seed")
        if args.out:
            check_output_file(args.out)
        generator, state, path = load_generator(args.ckpt, args.device)
        population_statistics(generator, args.n, args.seed)
        state["nets"]["G"] = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
        state.setdefault("extra", {})["population_bn"] = {"n": args.n, "seed": args.seed}
        target = checkpoint.save(state, args.out or path)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"wrote population batch-norm statistics ({args.n} latents, seed {args.seed}) "
          f"to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
