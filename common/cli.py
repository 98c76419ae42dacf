"""The command line every training script shares.

python scripts/train_<model>.py --cfg FILE [--out DIR] [--resume auto|PATH] [--force-resume]
    [--device cpu|cuda] [--max-iters N] [--dry-run] [KEY.SUB=VALUE ...]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common import checkpoint, dist, models
from common import config as config_lib
from common.errors import CheckpointError, ConfigError, UserError
from common.seeds import SEED_RANGE_TEXT, seed_in_range


@dataclass
class RunContext:
    """What a model's `main_without_training` hook gets besides the config."""

    args: argparse.Namespace
    device: torch.device
    run_dir: Path


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error form, one line
    `error: <option>: <what> (see <script> --help)` and exit code 2, instead of the usage block
    followed by the message."""

    def error(self, message: str):
        message = message.removeprefix("argument ")
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser(prog: str) -> argparse.ArgumentParser:
    p = ArgumentParser(prog=prog, description="Train a model from a YAML config.")
    p.add_argument("--cfg", required=True, help="YAML config file (see cfg/)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", default=None, metavar="auto|PATH",
                   help="continue the newest checkpoint of the run (auto) or a given file")
    p.add_argument("--force-resume", action="store_true",
                   help="resume even if the config differs from the checkpoint's")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: RUN.DEVICE)")
    p.add_argument("--max-iters", type=int, default=None,
                   help="stop after this many iterations in total (sets RUN.MAX_ITERS)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config and exit without touching data or devices")
    p.add_argument("overrides", nargs="*", metavar="KEY.SUB=VALUE", help="config overrides")
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Options and KEY=VALUE overrides in any order (`--cfg x A=1 --dry-run B=2`), as people
    type them; plain parse_args stops collecting positionals at the first option after them."""
    return p.parse_intermixed_args(argv)


def check_counts(args, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    """Count options of a script are in range: a negative or zero count is a typo, not a
    request. Options left at None (not given) are skipped."""
    for names, lowest, expected in ((positive, 1, "a positive count"),
                                    (non_negative, 0, "a count >= 0")):
        for name in names:
            value = vars(args).get(name)
            if isinstance(value, int) and value < lowest:
                raise ConfigError(f"--{name.replace('_', '-')}: expected {expected}, got {value}")


def check_seeds(args, *names: str) -> None:
    """Seed options are what torch.manual_seed accepts."""
    for name in names:
        value = vars(args).get(name)
        if value is not None and not seed_in_range(value):
            raise ConfigError(f"--{name}: expected {SEED_RANGE_TEXT}, got {value}")


def check_output_file(target: str | Path) -> Path:
    """An output file can be written there, found out before the work that makes it and without
    creating anything."""
    target = Path(target)
    if target.is_dir():
        raise UserError(f"{target}: is a folder; expected an output file name")
    check_writable(target.parent, f"{target}: the output file")
    if target.exists() and not os.access(target, os.W_OK):
        raise UserError(f"{target}: the output file exists and is not writable")
    return target


def write_output(target: str | Path, write) -> Path:
    """write(path) for a script's output file, atomically: into a temporary file beside it, then
    renamed. A folder or an unwritable place is one error naming the file; no temporary file
    stays behind."""
    target = check_output_file(target)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, target)
    except OSError as err:
        raise UserError(f"{target}: cannot be written ({err.strerror or err})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def _has_checkpoint(folder: Path) -> bool:
    return checkpoint.find_latest(folder) is not None


def resolve_run_dir(args, name: str) -> tuple[Path, Path | None]:
    """(run directory, checkpoint to resume or None) from --out and --resume."""
    if args.resume and args.resume != "auto":
        ckpt = checkpoint.resolve(args.resume)
        default_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
        return (Path(args.out) if args.out else default_dir), ckpt
    if args.out:
        run_dir = Path(args.out)
        latest = checkpoint.find_latest(run_dir)
        if args.resume == "auto":
            return run_dir, latest
        if latest is not None:
            raise CheckpointError(f"{run_dir} already holds a run ({latest}); pass --resume auto "
                                  "to continue it or choose another --out")
        return run_dir, None
    base = Path("runs")
    candidates = [base / name] + sorted(base.glob(f"{name}-*"),
                                        key=lambda p: int(p.name.rsplit("-", 1)[1])
                                        if p.name.rsplit("-", 1)[1].isdigit() else 0)
    candidates = [c for c in candidates if c == base / name or c.name.rsplit("-", 1)[1].isdigit()]
    if args.resume == "auto":
        runs = [c for c in candidates if _has_checkpoint(c)]
        if runs:
            newest = max(runs, key=lambda c: checkpoint.find_latest(c).stat().st_mtime)
            return newest, checkpoint.find_latest(newest)
    for i in range(1, 10_000):
        run_dir = base / (name if i == 1 else f"{name}-{i}")
        if not _has_checkpoint(run_dir):
            return run_dir, None
    raise CheckpointError(f"{base}: no free run directory for {name}")


def check_writable(run_dir: Path, what: str | None = None) -> None:
    """A folder exists and is writable, or can be made: checked before anything is written, so
    that a bad --out fails at once and not after the data is loaded. `what` starts the message
    (default: "<run_dir>: the run directory")."""
    what = what or f"{run_dir}: the run directory"
    folder = Path(run_dir).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} cannot be written here ({folder} is "
                          f"{'not a folder' if not folder.is_dir() else 'not writable'})")
    if folder != Path(run_dir).absolute():
        try:   # some folders pass the access test and still refuse (e.g. /proc, read-only mounts)
            probe = folder / f".ganrepro-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
        except OSError as err:
            raise ConfigError(f"{what} cannot be created in {folder} "
                              f"({err.strerror or err})") from None


def train_main(model: str, argv: list[str] | None = None) -> int:
    """Entry point of scripts/train_<model>.py; returns the process exit code."""
    # the script's file name, for the "(see ... --help)" hint: stackgan_v1 and _v2 share one
    args = parse(parser(f"train_{model.split('_')[0]}.py"), argv)
    try:
        return _train(model, args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    finally:
        dist.shutdown()


def _train(model: str, args) -> int:
    from common import train
    declared = models.spec(model)
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"RUN.DEVICE={args.device}")
    if args.max_iters is not None:
        overrides.append(f"RUN.MAX_ITERS={args.max_iters}")
    cfg = models.load_config(model, args.cfg, overrides)
    if args.dry_run:
        print(config_lib.to_yaml(cfg), end="")
        return 0
    device = dist.init(cfg.RUN.DEVICE)
    run_dir, ckpt = dist.broadcast_object(resolve_run_dir(args, Path(args.cfg).stem)
                                          if dist.is_main() else None)
    if dist.is_main():
        check_writable(run_dir)
    if declared.main_without_training is not None and \
            declared.main_without_training(cfg, RunContext(args, device, run_dir)):
        return 0
    state = None
    if ckpt is not None:
        state = checkpoint.load(ckpt)
        if state["model"] != declared.name:
            raise CheckpointError(f"{ckpt}: is a {state['model']!r} checkpoint, not {model!r}")
        changed = config_lib.differences(state["config"], cfg)
        if changed and not args.force_resume:
            raise ConfigError(f"{ckpt}: the config differs from the checkpoint's "
                              f"({'; '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}); "
                              "pass --force-resume to continue anyway")
    elif args.resume == "auto":
        print(f"--resume auto: no checkpoint in {run_dir}; starting a new run", flush=True)
    seed_everything(cfg.RUN.SEED)
    try:
        trainer = declared.build(cfg, device)
    except ValueError as err:
        refused = optimizer_refusal(err, cfg)
        if refused is None:
            raise
        raise refused from None
    train.run(trainer, run_dir, state)
    return 0


def optimizer_refusal(err: ValueError, cfg) -> ConfigError | None:
    """torch.optim's "Invalid beta parameter at index 0: 1.5" as an error naming the config
    key that holds the refused value (the models' configs name their optimizer keys freely)."""
    text = str(err)
    if not text.startswith("Invalid "):
        return None
    value = text.rsplit(":", 1)[-1].strip()
    try:
        number = float(value)
    except ValueError:
        return None
    hints = {"beta": "BETA", "learning rate": "LR", "epsilon": "EPS", "weight_decay": "DECAY"}
    parts = [part for word, part in hints.items() if word in text]
    # only keys whose name fits the refused parameter: an equal value elsewhere proves nothing
    keys = [k for k, v in config_lib.flatten(cfg).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) == number
            and any(part in k.rsplit(".", 1)[-1] for part in parts)]
    where = " or ".join(keys) if keys else "config"
    return ConfigError(f"{where}: {text} (refused by the optimizer)", keys[0] if keys else None)
