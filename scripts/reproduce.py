"""Reproduce a paper's claim: train its arms, score them offline, write a report with a verdict.

python scripts/reproduce.py CLAIM [--budget smoke|cpu|paper] [--seeds N] [--out DIR]
       [--device cpu|cuda] [--data DIR] [--features RUN] [KEY.SUB=VALUE ...]
python scripts/reproduce.py --list
python scripts/reproduce.py --table DIR [DIR ...]   (markdown table of finished reports)

Each claim is a recipe in cfg/claims/<CLAIM>.yml: its arms (a config and overrides each), the
length and widths per budget, the measures and the checks the paper's statement implies. The arms
train with the common loop into DIR/runs/<arm>/seed<k> (re-running the command continues
unfinished arms with --resume auto and does not retrain finished ones), are scored at every
snapshot and at the end, and DIR gets report.json, report.md and the pictures. Default DIR:
runs/reproduce/<CLAIM>-<budget>. KEY=VALUE overrides go to every arm after the recipe's (e.g.
RUN.TF32=true on a GPU) and are written in the report. See docs/reproductions.md.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import ArgumentParser  # noqa: E402
from common.errors import UserError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("GANREPRO_SHARED_DATA", REPO.parent / "shared" / "data"))


def parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("items", nargs="*", metavar="CLAIM [KEY.SUB=VALUE ...]",
                   help="claim name (--list) or a recipe .yml file, then config overrides")
    p.add_argument("--list", action="store_true", help="one line per claim, then exit")
    p.add_argument("--table", nargs="+", metavar="DIR", help="print one markdown row per "
                   "DIR/report.json (the table of docs/reproductions.md), then exit")
    p.add_argument("--budget", default="cpu", choices=("smoke", "cpu", "paper"))
    p.add_argument("--seeds", type=int, default=2, help="seeds 0 .. N-1 (default 2)")
    p.add_argument("--out", default=None, help="folder of the claim's runs and report")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: each "
                   "config's RUN.DEVICE for training, cuda if present for scoring)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder holding mnist/, celeba/, "
                   "cifar10/, cub/ (default $GANREPRO_SHARED_DATA or ../shared/data)")
    p.add_argument("--features", default=None, metavar="RUN", help="feature network run "
                   "(default runs/features_<data>, trained first if missing)")
    return p


def listing() -> str:
    from common.reproduce import recipe
    lines = []
    for name in recipe.names():
        r = recipe.load(name)
        times = ", ".join(f"{b.name} " + (f"~{b.minutes:g} min/seed" if b.minutes is not None
                                          else "time unknown") + f" ({b.where})"
                          for b in r.budgets.values())
        lines.append(f"{r.name}: {r.compares}. Paper ({r.paper}): {r.statement} [{times}]")
    return "\n".join(lines)


def summary_table(folders: list[str]) -> str:
    import json
    from common.reproduce import report
    reports = []
    for folder in folders:
        path = Path(folder) / "report.json"
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: not a readable report ({err})") from None
    return report.table(reports, {r["claim"]: f"{Path(f).as_posix()}/report.md"
                                  for r, f in zip(reports, folders)})


def main(argv=None) -> int:
    args = parser().parse_intermixed_args(argv)
    try:
        from common.reproduce import claim, recipe, report
        if args.list:
            print(listing())
            return 0
        if args.table:
            print(summary_table(args.table))
            return 0
        if not args.items or "=" in args.items[0]:
            raise UserError("CLAIM: give a claim name first (see --list)")
        args.claim, overrides = args.items[0], args.items[1:]
        bad = [o for o in overrides if "=" not in o or o.startswith("=")]
        if bad:
            raise UserError(f"{bad[0]}: expected one claim, then KEY.SUB=VALUE overrides")
        if args.seeds < 1:
            raise UserError(f"--seeds: expected a positive count, got {args.seeds}")
        r = recipe.load(args.claim)
        budget = r.budgets[args.budget]
        out = Path(args.out or REPO / "runs" / "reproduce" / f"{r.name}-{args.budget}")
        estimate = (f"estimated {budget.minutes * args.seeds:g} min ({budget.where})"
                    if budget.minutes is not None else f"time not measured ({budget.where})")
        print(f"{r.name} at the {args.budget} budget, {args.seeds} seed(s): {budget.iters} "
              f"iterations per arm, {estimate} -> {out}", flush=True)
        result = claim.reproduce(r, args.budget, list(range(args.seeds)), out, Path(args.data),
                                 args.device, args.features, overrides,
                                 log=lambda m: print(m, flush=True))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"verdict: {report.VERDICT_WORDS[result['verdict']]}; report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
