"""Importance-sampled negative log-likelihood of a crVAE MNIST checkpoint on the test set.

python scripts/acvae_eval_nll.py RUN_OR_CKPT [--last] [--samples 5,100,10000] [--device cuda]
       [--batch 128] [--chunk 100] [--static binarized_mnist_test.amat] [--data-root DIR]
       [--full-test] [--limit N] [--seed 0] [--json out.json]

A run directory is scored by its checkpoints/best.pt, the epoch with the best per-epoch NLL
(NLL.SELECT_ON; the original selected on the test set itself), or with --last by its newest
checkpoint; a checkpoint file is scored as given.

As crVAE's main_mnist.lua: log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)]
- log K over K samples z_k ~ q(z|x); the decoder's Bernoulli probabilities clamped to
[1e-5, 1 - 1e-5]; floor(10000 / batch) * batch test images unless --full-test. Prints and
(optionally) writes one JSON record per sample count, with how the test set was binarised.
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common.cli import (ArgumentParser, check_counts, check_output_file,  # noqa: E402
                        check_seeds, write_output)
from acvae.nll import evaluate  # noqa: E402
from acvae.train_mnist import test_images  # noqa: E402
from common import checkpoint  # noqa: E402
from common.errors import CheckpointError, ConfigError, UserError  # noqa: E402


def parse(argv):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt", help="checkpoint file or run directory of an mnist_* variant")
    p.add_argument("--last", action="store_true", help="a run directory's last checkpoint "
                   "instead of checkpoints/best.pt")
    p.add_argument("--samples", default="", help="comma-separated K values (default: the "
                   "config's NLL.SAMPLES, i.e. 5,100,10000)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=0, help="test images per batch (default "
                   "NLL.BATCH_SIZE = 128)")
    p.add_argument("--chunk", type=int, default=0, help="samples per forward pass (NLL.CHUNK)")
    p.add_argument("--static", default="", help="Larochelle's binarized_mnist_test.amat / .t7")
    p.add_argument("--data-root", default="", help="MNIST idx folder (default: DATA.ROOT)")
    p.add_argument("--full-test", action="store_true", help="all 10,000 test images")
    p.add_argument("--limit", type=int, default=0, help="only the first N test images")
    p.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    p.add_argument("--json", default="", help="also write the records to this file")
    return p.parse_args(argv)


def sample_counts(text: str) -> list[int]:
    """--samples 5,100,10000 as a list of positive counts ([] when not given)."""
    try:
        ks = [int(k) for k in text.split(",")] if text.strip() else []
    except ValueError:
        ks = [0]
    if any(k < 1 for k in ks):
        raise ConfigError(f"--samples: expected positive counts separated by commas, got {text!r}")
    return ks


def checkpoint_to_score(path: str, last: bool) -> Path:
    """best.pt of a run directory (last.pt or the newest snapshot with --last), or the file."""
    path = Path(path)
    if not path.is_dir():
        if last:
            raise ConfigError(f"--last: picks a run directory's last checkpoint; {path} is not a "
                              "run directory")
        return checkpoint.resolve(path)
    if last:
        return checkpoint.resolve(path)
    best = path / "checkpoints" / "best.pt"
    if not best.is_file():
        raise CheckpointError(f"{best}: not found (written after the first whole epoch when "
                              "NLL.SELECT_ON is test or heldout); pass --last to score the last "
                              "checkpoint")
    return best


def describe_selection(state: dict) -> str:
    """Whether the checkpoint is the run's selected model, in words."""
    sel, it = state.get("selection"), int(state["counters"]["iteration"])
    if not sel:
        return f"iteration {it}; the run selected no model (NLL.SELECT_ON none, or no epoch done)"
    best = f"{sel['name']} {sel['value']:.4f} at epoch {sel['epoch']}"
    if sel["iteration"] == it:
        return f"iteration {it}, the selected model: best {best}"
    return f"iteration {it}, not the selected model (checkpoints/best.pt: best {best})"


def main(argv=None) -> int:
    args = parse(argv)
    try:
        args.ckpt = checkpoint_to_score(args.ckpt, args.last)
        overrides = []
        if args.static:
            overrides.append(f"NLL.STATIC_TEST={args.static}")
        if args.data_root:
            overrides.append(f"DATA.ROOT={args.data_root}")
        check_counts(args, non_negative=("batch", "chunk", "limit"))
        check_seeds(args, "seed")
        if args.json:
            check_output_file(args.json)
        ks = sample_counts(args.samples)
        state = checkpoint.load(args.ckpt)
        if state["model"] != "acvae":
            raise CheckpointError(f"{args.ckpt}: is a {state['model']!r} checkpoint; the "
                                  "likelihood is defined for acvae's mnist_* variants")
        trainer = checkpoint.trainer_from_state(state, args.device, overrides, str(args.ckpt))
        if not trainer.variant.startswith("mnist"):
            raise ConfigError(f"{args.ckpt}: is a {trainer.variant} model; the likelihood is "
                              "defined for the mnist_baseline / mnist_conv / mnist_lstm variants")
        ev = trainer.cfg.NLL
        batch, chunk = args.batch or ev.BATCH_SIZE, args.chunk or ev.CHUNK
        ks = ks or list(ev.SAMPLES)
        images, how = test_images(trainer.cfg)
        if not (args.full_test or ev.FULL_TEST):
            images = images[:len(images) // batch * batch]
        if args.limit:
            images = images[:args.limit]
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"{args.ckpt}: {describe_selection(state)}", flush=True)
    records = []
    for k in ks:
        start = time.perf_counter()
        with torch.no_grad():
            result = evaluate(trainer.encode, trainer.log_likelihood, images, k, batch,
                              min(chunk, k), args.seed, trainer.device)
        result.update({"variant": trainer.variant, "checkpoint": str(args.ckpt),
                       "iteration": int(state["counters"]["iteration"]), "test_set": how,
                       "selection": state.get("selection"),
                       "selected": (state.get("selection") or {}).get("iteration") ==
                       int(state["counters"]["iteration"]),
                       "seconds": round(time.perf_counter() - start, 2)})
        records.append(result)
        print(f"K={k:>6}  NLL {result['nll']:.4f}  (log-likelihood {result['log_likelihood']:.4f}, "
              f"vlb {result['vlb']:.4f}) on {result['images']} images, {result['seconds']} s",
              flush=True)
    if args.json:
        try:
            write_output(args.json, lambda path: path.write_text(json.dumps(records, indent=1)))
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
