"""Train the attribute classifier behind `evaluate.py --metrics attr` on real images.

python scripts/train_attr_classifier.py --cfg cfg/attr_classifier_celeba.yml [--out DIR]
       [--device cuda] [--max-iters N] [--resume auto] [KEY.SUB=VALUE ...]

It trains with the common loop (checkpoints, resume, torchrun as any model), then measures the
classifier on real validation images (CLASSIFIER.VAL_SPLIT, or the held-out CLASSIFIER.VAL_FRACTION
of DATA.SPLIT) and appends that accuracy to <run>/metrics.jsonl as an "attr_real" record, which
every later attribute-accuracy record quotes as the ceiling it can be read against.
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import checkpoint, cli  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.metrics import append_records, attr_classifier  # noqa: E402


def main(argv=None) -> int:
    code = cli.train_main(attr_classifier.NAME, argv)
    args = cli.parser("train_attr_classifier").parse_args(argv)
    if code or args.dry_run or int(os.environ.get("RANK", "0")) != 0:
        return code
    try:
        args.resume = "auto"  # the run just trained is the newest one with a checkpoint
        run_dir, ckpt = cli.resolve_run_dir(args, Path(args.cfg).stem)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        trainer, _ = checkpoint.load_trainer(ckpt, device)
        record = attr_classifier.validate(trainer)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    record["checkpoint"] = str(ckpt)
    append_records([record], Path(run_dir) / "metrics.jsonl")
    print(json.dumps(record))
    print(f"attribute accuracy on {record['protocol']['images']} real validation images: "
          f"{record['value']:.4f} (appended to {Path(run_dir) / 'metrics.jsonl'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
