"""One claim end to end: validate every arm's config, train the arms (seeds x arms), score them,
judge the checks, write report.json, report.md and the pictures into the claim's folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from common import config as config_lib
from common import models
from common.errors import ConfigError
from common.reproduce import features, plots, report, runner, scoring, verdict
from common.reproduce.recipe import Recipe


def validate(recipe: Recipe, runs: list[runner.ArmRun], device: str | None) -> None:
    """Every arm's config loads with its overrides, before anything is written."""
    for run in runs:
        extra = [f"RUN.DEVICE={device}"] if device else []
        models.load_config(run.arm.model, run.cfg, [*run.overrides, *extra])


def arm_config(run: runner.ArmRun) -> dict:
    cfg = models.load_config(run.arm.model, run.cfg, list(run.overrides))
    return config_lib.to_plain(cfg)


def reproduce(recipe: Recipe, budget_name: str, seeds: list[int], out: Path, data_dir: Path,
              device: str | None, features_dir: str | None, overrides: list[str] = (),
              log=print) -> dict:
    budget = recipe.budgets[budget_name]
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: no data folder (--data DIR: the folder holding mnist/, "
                          "celeba/, cifar10/, cub/ as ../shared/data does)")
    prepared = {}
    if recipe.prepare:
        out.mkdir(parents=True, exist_ok=True)
        prepared = scoring.measure_function(recipe.prepare)(out, data_dir)
    runs = runner.plan(recipe, budget, seeds, out, data_dir, prepared, list(overrides))
    validate(recipe, runs, device)
    out.mkdir(parents=True, exist_ok=True)
    net = features.ensure(recipe.features, features_dir, budget_name, out, data_dir, device,
                          log) if recipe.features else None
    timings = runner.Timings(out / "timings.json")
    for run in runs:
        runner.train(run, budget, device, timings, log)
    scoring_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = {"recipe": recipe, "budget": budget, "device": scoring_device, "features": net,
            "pictures": out / "pictures", "evaluators": {},
            "reference": runner.fill(recipe.reference, data_dir, prepared)}
    measured = {run: scoring.score_arm(base, run, log) for run in runs}
    return write(recipe, budget, seeds, runs, measured, timings, out, scoring_device, net)


def write(recipe, budget, seeds, runs, measured, timings, out: Path, device: str, net) -> dict:
    labels = {a.name: a.label for a in recipe.arms}
    per_seed: dict[str, dict[str, list]] = {}
    arms = {}
    for arm in recipe.arms:
        mine = [r for r in runs if r.arm.name == arm.name]
        names = sorted({k for r in mine for k in measured[r].values})
        values = {k: [measured[r].values.get(k) for r in mine] for k in names}
        per_seed[arm.name] = values
        arms[arm.name] = {
            "label": arm.label, "model": arm.model, "cfg": arm.cfg,
            "overrides": list(mine[0].overrides), "config": arm_config(mine[0]),
            "iterations": budget.iters, "train_seconds": [timings.seconds(r) for r in mine],
            "run_dirs": [str(r.run_dir) for r in mine],
            "metrics": {k: verdict.summary(v) for k, v in values.items()},
            "curves": {k: [measured[r].curves.get(k, []) for r in mine]
                       for k in sorted({k for r in mine for k in measured[r].curves})},
        }
    checks = [verdict.judge(c, per_seed) for c in recipe.checks]
    result = {
        "claim": recipe.name, "budget": budget.name, "seeds": list(seeds),
        "paper": recipe.paper, "statement": recipe.statement, "compares": recipe.compares,
        "reduced": budget.reduced, "notes": recipe.notes,
        "budget_settings": {"iterations": budget.iters, "points": budget.points, "n": budget.n,
                            "overrides": list(budget.overrides)},
        "arms": arms, "checks": checks, "verdict": verdict.verdict(checks),
        "protocols": [rec for r in runs for rec in measured[r].records],
        "features": str(net) if net else None,
        "git": report.git_commit(), "machine": report.machine(device), "created": report.now(),
    }
    pictures = draw(recipe, runs, measured, arms, labels, out)
    report.write_json(result, out / "report.json")
    (out / "report.md").write_text(report.markdown(result, pictures))
    return result


def draw(recipe, runs, measured, arms, labels, out: Path) -> dict[str, str]:
    """The pictures of report.md, {title: file name in out}."""
    pictures = {}
    curves = {}
    for name, arm in arms.items():
        for metric, per_seed in arm["curves"].items():
            if any(len(c) > 1 for c in per_seed):
                curves.setdefault(metric, {})[name] = per_seed
    if plots.metric_curves(curves, labels, out / "metrics.png"):
        pictures["Metrics against iterations (mean over seeds, range shaded)"] = "metrics.png"
    run_dirs = {a.name: [r.run_dir for r in runs if r.arm.name == a.name] for a in recipe.arms}
    if plots.loss_curves(run_dirs, labels, out / "losses.png"):
        pictures["Training losses (stats.jsonl; mean over seeds, range shaded)"] = "losses.png"
    first = [r for r in runs if r.seed == runs[0].seed]
    along = {}
    for run in first:
        grids = sorted((int(k.split("_")[1]), Path(v)) for k, v in measured[run].pictures.items()
                       if k.startswith("samples_"))
        along[run.arm.name] = grids
    if plots.along_training(along, labels, out / "along_training.png"):
        pictures[f"Samples along training (seed {runs[0].seed})"] = "along_training.png"
    for run in first:
        for key, path in measured[run].pictures.items():
            if key.startswith("samples_"):
                continue
            name = f"{key}_{run.arm.name}.png"
            shutil.copyfile(path, out / name)
            pictures[f"{key.replace('_', ' ').capitalize()}: {labels[run.arm.name]} "
                     f"(seed {run.seed})"] = name
    return pictures
