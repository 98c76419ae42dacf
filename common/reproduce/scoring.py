"""Scoring the trained arms: the offline protocol at every snapshot (curves) and at the final
checkpoint, then the claim's own measures (package functions named in the recipe) at the final one.

A measure is `fn(ctx: MeasureContext) -> Measured`; it may read the run's stats, generate
samples, score them, and save pictures under ctx.pictures.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from common import checkpoint
from common.errors import ConfigError
from common.images import save_grid
from common.reproduce.recipe import PROTOCOL_MEASURE, Budget, Recipe
from common.reproduce.runner import ArmRun

# names in the report: FD, not FID, since the features are the project's, not Inception's
NAMES = {"fid": "fd"}


@dataclass
class Measured:
    values: dict = field(default_factory=dict)     # {metric: number}
    curves: dict = field(default_factory=dict)     # {metric: [[iteration, number], ...]}
    records: list = field(default_factory=list)    # the metrics layer's records (protocols)
    pictures: dict = field(default_factory=dict)   # {name: path}


@dataclass
class MeasureContext:
    recipe: Recipe
    budget: Budget
    run: ArmRun
    trainer: object               # the final checkpoint's trainer (eval mode)
    state: dict                   # the final checkpoint
    device: str
    features: Path | None         # the feature network's run directory
    pictures: Path                # where pictures of this arm and seed go
    log: object
    evaluators: dict = field(default_factory=dict)   # shared between arms (reference features)
    reference: str = ""           # the protocol's real images: "" = the model's data, or a folder

    def evaluator(self, protocol: str, metrics: tuple[str, ...] | None = None, **kwargs):
        """An Evaluator of `protocol` at the budget's sample count, kept for the next arm."""
        from common import metrics as metrics_lib
        p = metrics_lib.resolve(protocol, n=self.budget.n,
                                reference_n=self.budget.reference_n or None)
        chosen = tuple(metrics or p.metrics)
        key = (protocol, chosen, tuple(sorted(kwargs.items())))
        if key not in self.evaluators:
            if self.reference:
                kwargs = {"reference": self.reference,
                          "reference_size": self.recipe.reference_size, **kwargs}
            self.evaluators[key] = metrics_lib.Evaluator(
                chosen, p, self.device, features=str(self.features) if self.features else None,
                seed=0, log=self.log, **kwargs)
        return self.evaluators[key]


def snapshots(run_dir: Path) -> list[Path]:
    """The numbered snapshots and the final checkpoint, in training order, each once."""
    found = sorted((run_dir / "checkpoints").glob("ckpt_*.pt"))
    last = run_dir / "checkpoints" / "last.pt"
    final_it = int(checkpoint.load(last)["counters"]["iteration"])
    if not any(int(p.stem.split("_")[1]) == final_it for p in found):
        found.append(last)
    return found


def values_of(records: list[dict]) -> dict:
    return {NAMES.get(r["metric"], r["metric"]): float(r["value"]) for r in records}


def measure_function(name: str):
    module, _, fn = name.partition(":")
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError):
        raise ConfigError(f"MEASURES: {name!r} is not an importable function") from None


def sample_grid(trainer, path: Path, n: int = 64, seed: int = 0) -> Path:
    from common.metrics.samples import generated
    images = torch.cat([b["image"] for b in generated(trainer, n, seed, batch_size=n)])
    save_grid(images.float() / 127.5 - 1, path, nrow=int(n ** 0.5))
    return path


def score_arm(ctx_base: dict, run: ArmRun, log) -> Measured:
    """Everything measured on one arm and seed."""
    recipe: Recipe = ctx_base["recipe"]
    result = Measured()
    points = snapshots(run.run_dir)
    pictures = ctx_base["pictures"] / run.arm.name / f"seed{run.seed}"
    pictures.mkdir(parents=True, exist_ok=True)
    final_ctx = None
    for i, path in enumerate(points):
        trainer, state = checkpoint.load_trainer(path, ctx_base["device"])
        it = int(state["counters"]["iteration"])
        ctx = MeasureContext(recipe, ctx_base["budget"], run, trainer, state, ctx_base["device"],
                             ctx_base["features"], pictures, log, ctx_base["evaluators"],
                             ctx_base["reference"])
        if PROTOCOL_MEASURE in recipe.measures:
            log(f"{run.arm.name} seed {run.seed}: {recipe.protocol} at iteration {it}")
            records = ctx.evaluator(recipe.protocol).run(trainer, checkpoint={
                "path": str(path), "counters": state["counters"]})
            for name, value in values_of(records).items():
                result.curves.setdefault(name, []).append([it, value])
            if i == len(points) - 1:
                result.values.update(values_of(records))
                result.records.extend(records)
        grid = sample_grid(trainer, pictures / f"samples_{it:07d}.png", n=16)
        result.pictures[f"samples_{it:07d}"] = grid
        final_ctx = ctx
    result.pictures["samples"] = sample_grid(final_ctx.trainer, pictures / "samples.png")
    for name in recipe.measures:
        if name == PROTOCOL_MEASURE:
            continue
        log(f"{run.arm.name} seed {run.seed}: {name}")
        extra = measure_function(name)(final_ctx)
        result.values.update(extra.values)
        for key, curve in extra.curves.items():
            result.curves[key] = curve
        result.records.extend(extra.records)
        result.pictures.update(extra.pictures)
    return result
