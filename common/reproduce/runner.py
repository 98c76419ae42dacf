"""Training the arms of a claim: one ordinary run directory per arm and seed, trained by the common
loop in this process, continued with --resume auto when unfinished, skipped when finished.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from common import checkpoint
from common.errors import ConfigError, UserError
from common.reproduce.recipe import Arm, Budget, Recipe

REPO = Path(__file__).resolve().parents[2]
RUN_REF = re.compile(r"\{run:([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class ArmRun:
    arm: Arm
    seed: int
    run_dir: Path
    cfg: Path
    overrides: tuple[str, ...]   # everything given to the training command, in order


def loop_overrides(budget: Budget, seed: int) -> list[str]:
    """The loop settings every arm gets: its seed, the budget's length, snapshots for curves,
    a checkpoint at least as often as a snapshot (a stopped run loses little)."""
    every = budget.iters // budget.points
    return [f"RUN.SEED={seed}", f"RUN.MAX_ITERS={budget.iters}",
            f"RUN.SNAPSHOT_EVERY={every if budget.points > 1 else 0}",
            f"RUN.CKPT_EVERY={every}", f"RUN.SAMPLE_EVERY={every}",
            f"RUN.LOG_EVERY={max(1, budget.iters // 200)}", "RUN.PROGRESS=lines"]


def fill(text: str, data_dir: Path, prepared: dict | None = None) -> str:
    """{data} and the recipe's prepared placeholders ({birds}, ...) in a string."""
    for key, value in (prepared or {}).items():
        text = text.replace(f"{{{key}}}", str(value))
    return text.replace("{data}", str(data_dir))


def plan(recipe: Recipe, budget: Budget, seeds: list[int], out: Path, data_dir: Path,
         prepared: dict | None = None, extra: list[str] = ()) -> list[ArmRun]:
    """Every (arm, seed) in training order: arms in recipe order, so that an arm may name an
    earlier one's run ({run:ARM}, e.g. a Stage-II generator reading its Stage-I run)."""
    runs = []
    for seed in seeds:
        done: dict[str, Path] = {}
        for arm in recipe.arms:
            run_dir = out / "runs" / arm.name / f"seed{seed}"

            def resolve(text: str) -> str:
                for name in RUN_REF.findall(text):
                    if name not in done:
                        raise ConfigError(f"{recipe.source}: ARMS.{arm.name}: {{run:{name}}} "
                                          "must name an arm listed before it")
                    text = text.replace(f"{{run:{name}}}", str(done[name]))
                return fill(text, data_dir, prepared)

            overrides = [resolve(o) for o in (*recipe.common, *arm.overrides, *budget.overrides,
                                           *budget.arm_overrides.get(arm.name, ()), *extra)]
            runs.append(ArmRun(arm, seed, run_dir, REPO / arm.cfg,
                               tuple(overrides + loop_overrides(budget, seed))))
            done[arm.name] = run_dir
    return runs


def iterations_done(run_dir: Path) -> int:
    latest = checkpoint.find_latest(run_dir)
    if latest is None:
        return 0
    return int(checkpoint.load(latest)["counters"].get("iteration", 0))


class Timings:
    """Training seconds per arm and seed, summed over resumed sessions (DIR/timings.json)."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {}

    def key(self, run: ArmRun) -> str:
        return f"{run.arm.name}/seed{run.seed}"

    def add(self, run: ArmRun, seconds: float) -> None:
        self.data[self.key(run)] = round(self.data.get(self.key(run), 0.0) + seconds, 2)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def seconds(self, run: ArmRun) -> float:
        return self.data.get(self.key(run), 0.0)


def train(run: ArmRun, budget: Budget, device: str | None, timings: Timings, log) -> None:
    """Train one arm to the budget's length, unless it is there already."""
    from common.cli import train_main
    done = iterations_done(run.run_dir)
    if done >= budget.iters:
        log(f"{run.arm.name} seed {run.seed}: finished ({done} iterations), not retrained")
        return
    argv = ["--cfg", str(run.cfg), "--out", str(run.run_dir), "--resume", "auto",
            *(["--device", device] if device else []), *run.overrides]
    log(f"{run.arm.name} seed {run.seed}: training {budget.iters} iterations"
        f"{f' from iteration {done}' if done else ''} -> {run.run_dir}")
    start = time.perf_counter()
    code = train_main(run.arm.model, argv)
    timings.add(run, time.perf_counter() - start)
    if code != 0:
        raise UserError(f"{run.run_dir}: training arm {run.arm.name} (seed {run.seed}) stopped "
                        f"with exit code {code}; re-run the same command to continue it")
    if iterations_done(run.run_dir) < budget.iters:
        raise UserError(f"{run.run_dir}: arm {run.arm.name} (seed {run.seed}) stopped before "
                        f"{budget.iters} iterations (a signal?); re-run to continue it")
