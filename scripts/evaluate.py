"""Evaluate a checkpoint's generator: IS, FID, KID, precision/recall, attribute accuracy.

python scripts/evaluate.py (--ckpt PATH | --run DIR [--all-snapshots] | --images PATH)
       [--protocol fid50k] [--features RUN]
       [--metrics is,fid,kid,pr,attr] [--n N] [--splits S] [--seed 0] [--device cuda]
       [--reference data|DIR|DATA.yml|none] [--reference-split NAME] [--reference-n N]
       [--inception-weights PATH] [--cache-dir DIR] [--allow-download] [--no-cache]
       [--is-classifier PATH] [--attr-classifier RUN] [--out FILE.jsonl]

Writes one JSON line per number (value, std where there is one, and the full protocol) to
stdout and appends it to the run's metrics.jsonl (or --out). Nothing is downloaded unless
--allow-download is given; see docs/metrics.md for the protocols and where weights go.

--images scores images that came from no checkpoint (a folder of PNG/JPEG files, or an .npy/.npz
array (N, C, H, W) of uint8 in [0, 255] or float in [-1, 1]) with the same protocol, e.g.
python scripts/evaluate.py --images samples.npz --protocol fd_mnist10k --features runs/features_mnist --out -
"""
import argparse
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common.cli import ArgumentParser, check_counts, check_output_file, check_seeds  # noqa: E402
from common import checkpoint, dist  # noqa: E402
from common.errors import CheckpointError, UserError  # noqa: E402


def parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=__doc__.split("\n\n", 1)[1])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--ckpt", help="checkpoint file")
    src.add_argument("--run", help="run directory (its newest checkpoint)")
    src.add_argument("--images", help="images from no checkpoint: a folder of PNG/JPEG files or "
                     "an .npy/.npz array (N, C, H, W), uint8 [0, 255] or float [-1, 1]")
    p.add_argument("--all-snapshots", action="store_true",
                   help="with --run: every checkpoints/ckpt_*.pt in order (curves over training)")
    p.add_argument("--protocol", default="fid50k", help="named protocol (--list-protocols)")
    p.add_argument("--list-protocols", action="store_true", help="print the protocols and exit")
    p.add_argument("--metrics", default="", help="comma list of is,fid,kid,pr,attr "
                   "(default: the protocol's)")
    p.add_argument("--n", type=int, default=None, help="generated images (overrides the protocol)")
    p.add_argument("--splits", type=int, default=None, help="IS splits (overrides the protocol)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and conditions")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if present)")
    p.add_argument("--raw", action="store_true", help="use the live generator, not its EMA twin")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied when rebuilding the model (repeatable)")
    p.add_argument("--reference", default="data", help="real images: data (the model's DATA "
                   "section or eval_reference hook), a folder, or a YAML file with a DATA section")
    p.add_argument("--reference-split", default=None, help="split of the reference data "
                   "(default: the protocol's, else the training split)")
    p.add_argument("--reference-n", type=int, default=None, help="real images (0 = all)")
    p.add_argument("--reference-size", type=int, default=0,
                   help="folder reference: center-crop its images to S x S")
    p.add_argument("--workers", type=int, default=0, help="data loader workers for the reference")
    p.add_argument("--extractor", default="inception-v3-compat",
                   help="torch-fidelity feature extractor name")
    p.add_argument("--features", default=None, metavar="RUN",
                   help="the project's feature network (run dir of scripts/train_feature_net.py "
                   "or its features.pt) in place of Inception; needed by the fd_* protocols")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a Python module first, e.g. one registering a feature extractor "
                   "with torch_fidelity.register_feature_extractor (repeatable)")
    p.add_argument("--inception-weights", default=None, metavar="PATH",
                   help="weights file of the extractor (else looked up in the cache folders)")
    p.add_argument("--cache-dir", default=None, help="ganrepro cache (default $GANREPRO_CACHE "
                   "or ~/.cache/ganrepro): weights/ and reference/ features")
    p.add_argument("--allow-download", action="store_true", help="download missing weights")
    p.add_argument("--no-cache", action="store_true", help="recompute reference features")
    p.add_argument("--is-classifier", default=None, metavar="PATH",
                   help="state dict of a fine-tuned inception_v3 (torchvision layout) scoring IS")
    p.add_argument("--attr-classifier", default=None, metavar="RUN",
                   help="run dir of scripts/train_feature_net.py with an attribute network (metric attr)")
    p.add_argument("--out", default=None, help="append records here (default: the run's "
                   "metrics.jsonl; '-' for stdout only)")
    return p


def checkpoints(args) -> list[Path]:
    if args.all_snapshots:
        if not args.run:
            raise CheckpointError("--all-snapshots needs --run DIR")
        found = sorted((Path(args.run) / "checkpoints").glob("ckpt_*.pt"))
        if not found:
            raise CheckpointError(f"{args.run}: no checkpoints/ckpt_*.pt snapshots "
                                  "(set RUN.SNAPSHOT_EVERY when training)")
        return found
    if not (args.ckpt or args.run):
        raise CheckpointError("give --ckpt PATH or --run DIR")
    return [checkpoint.resolve(args.ckpt or args.run)]


def output_path(args, ckpt: Path) -> Path | None:
    if args.out == "-":
        return None
    if args.out:
        return Path(args.out)
    return ckpt.parent.parent / "metrics.jsonl" if ckpt.parent.name == "checkpoints" else None


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        check_counts(args, positive=("n", "splits", "batch_size"),
                     non_negative=("workers", "reference_n", "reference_size"))
        check_seeds(args, "seed")
        if args.out not in (None, "-"):  # before an evaluation that may take an hour
            check_output_file(args.out)
        from common import metrics
        for name in args.imports:
            importlib.import_module(name)
        if args.list_protocols:
            print(metrics.protocols.describe())
            return 0
        protocol = metrics.resolve(args.protocol, n=args.n, splits=args.splits,
                                   reference_split=args.reference_split,
                                   reference_n=args.reference_n)
        chosen = metrics.parse_metrics(args.metrics, protocol)
        log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
        images, note = None, ""
        if args.images:
            from common.metrics import image_sets
            images = image_sets.load(args.images)
            protocol, note = fit_protocol_to(images, protocol, args.n)
        todo = [] if images else checkpoints(args)
        if args.reference == "none" and set(chosen) & set(metrics.protocols.BINARY):
            raise metrics.MetricsError("--reference none: only is and attr can be computed")
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dist.check_device(device, "--device")
        evaluator = metrics.Evaluator(
            chosen, protocol, device, extractor=args.extractor, weights=args.inception_weights,
            cache_dir=args.cache_dir, allow_download=args.allow_download,
            use_cache=not args.no_cache, is_classifier=args.is_classifier,
            attr_classifier_path=args.attr_classifier, reference=args.reference,
            reference_size=args.reference_size, batch_size=args.batch_size,
            workers=args.workers, seed=args.seed, features=args.features, log=log)
        if images is not None:
            if note:
                log(note)
            log(f"evaluating {images.description['path']} with {protocol.name}: "
                f"{', '.join(chosen)} on {protocol.n} images")
            emit(evaluator.run_images(images), Path(args.out) if args.out not in (None, "-")
                 else None, log)
        for ckpt in todo:
            trainer, state = checkpoint.load_trainer(ckpt, device, args.override)
            info = {"path": str(ckpt.resolve()), "model": state["model"],
                    "counters": state["counters"], "overrides": list(args.override)}
            log(f"evaluating {ckpt} (iteration {state['counters'].get('iteration')}) with "
                f"{protocol.name}: {', '.join(chosen)} on {protocol.n} samples")
            emit(evaluator.run(trainer, ema=not args.raw, checkpoint=info),
                 output_path(args, ckpt), log)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


def fit_protocol_to(images, protocol, asked: int | None):
    """(protocol, note): a set smaller than the protocol's count is scored whole, recorded as
    an override."""
    from common.metrics import MetricsError
    if asked is not None and asked > len(images):
        raise MetricsError(f"--n {asked}: {images.description['path']} holds only "
                           f"{len(images)} images")
    if protocol.n > len(images):
        return protocol.with_overrides(n=len(images)), (
            f"{images.description['path']}: scoring all {len(images)} images (protocol "
            f"{protocol.name} asks for {protocol.n}; recorded as an override)")
    return protocol, ""


def emit(records: list[dict], target: Path | None, log) -> None:
    from common import metrics
    for record in records:
        print(json.dumps(record), flush=True)
    if target is not None:
        try:
            metrics.append_records(records, target)
        except OSError as err:
            raise UserError(f"{target}: cannot be written ({err.strerror or err}); the records "
                            "are on the standard output above") from None
    log(metrics.summary(records) + (f"  (appended to {target})" if target else ""))


if __name__ == "__main__":
    sys.exit(main())
