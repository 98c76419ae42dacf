"""The floor and reference points of a feature-network protocol, measured on the real data.

python benchmarks/metric_floors.py --features runs/features_mnist [--n 10000] [--data DIR]
       [--out benchmarks/results/cpu/floors_mnist.json] [--device cpu]

For the network's protocol (fd_mnist10k, fd_cifar10_10k or fd_celeba64_10k): real images against
disjoint real images (the floor: what a perfect generator would score), the same real images
blurred (sigma 0.5, 1, 2 px), and uniform noise. Prints a Markdown table and writes the records.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError  # noqa: E402
from common.metrics import Evaluator, reference_points, resolve  # noqa: E402
from common.metrics.project_features import locate  # noqa: E402

PROTOCOLS = {"mnist": "fd_mnist10k", "cifar10": "fd_cifar10_10k", "celeba64": "fd_celeba64_10k"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", required=True, help="run dir of scripts/train_feature_net.py")
    p.add_argument("--n", type=int, default=10_000, help="real images per set (at most)")
    repo = Path(__file__).resolve().parents[1]
    p.add_argument("--data", default=os.environ.get("GANREPRO_SHARED_DATA",
                                                    str(repo.parent / "shared" / "data")))
    p.add_argument("--out", default=None, help="JSON file for the records")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    try:
        _, meta = locate(args.features)
        protocol_name = PROTOCOLS[meta["tag"]]
        rows, evaluators = [], {}
        for name, images, ref in reference_points.cases(meta["tag"], Path(args.data), args.n):
            start = time.perf_counter()
            protocol = resolve(protocol_name, n=len(images))    # reference: a seeded 10,000
            key = (id(ref), len(images))                          # its features once per set
            if key not in evaluators:
                evaluators[key] = Evaluator(protocol.metrics, protocol, args.device,
                                            features=args.features, reference=ref,
                                            use_cache=False, batch_size=500, log=lambda m: None)
            records = evaluators[key].run_images(reference_points.as_set(name, images))
            reference_n = records[0]["protocol"].get("reference", {}) or {}
            row = {"case": name, "n": len(images), "reference_n": reference_n.get("n"),
                   "seconds": round(time.perf_counter() - start, 1),
                   **{r["metric"]: r["value"] for r in records}}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    extractor = records[0]["protocol"]["extractor"]
    result = {"protocol": protocol_name, "features": str(Path(args.features).resolve()),
              "sha256": extractor["sha256"], "heldout_accuracy": meta["accuracy"], "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    metrics = [m for m in ("fid", "kid", "precision", "recall", "is") if m in rows[0]]
    print(f"{protocol_name} (extractor sha256 {extractor['sha256'][:12]}...)\n")
    print("| case | n | " + " | ".join(metrics) + " |")
    print("|---|---|" + "---|" * len(metrics))
    for row in rows:
        print(f"| {row['case']} | {row['n']:,} vs {row['reference_n']:,} | " +
              " | ".join(f"{row[m]:.4g}" for m in metrics) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
