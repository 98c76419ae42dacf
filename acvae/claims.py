"""Measures of the acVAE / crVAE claims (cfg/claims/crvae_mnist_nll.yml, acvae_attributes.yml).

nll: the importance-sampled test NLL (acvae/nll.py, as scripts/acvae_eval_nll.py) of the run's
checkpoints/best.pt, the epoch with the best per-epoch 5-sample test NLL (the original's model
selection, NLL.SELECT_ON: test); its curve is the per-epoch NLL from stats.jsonl.
attributes: the share of the 40 attributes the CelebA feature network reads in generated faces
as they were asked for (metric attr of common.metrics), on the budget's sample count.
"""
from __future__ import annotations

import torch

from acvae.nll import evaluate
from acvae.train_mnist import test_images
from common import checkpoint
from common.errors import CheckpointError
from common.reproduce.plots import read_losses
from common.reproduce.scoring import Measured

# importance samples per budget: the original reports 100 and 10,000 (scripts/acvae_eval_nll.py)
SAMPLES = {"smoke": [5], "cpu": [100], "paper": [100, 10000]}


def epoch_curve(run_dir) -> dict:
    """{stat name: [[iteration, nll], ...]} of the per-epoch NLL rows of stats.jsonl."""
    return {"epoch_" + key.replace("/", "_"): curve
            for key, curve in read_losses(run_dir, "nll/").items() if not key.endswith("/best")}


def scored_checkpoint(ctx):
    """best.pt; the last checkpoint only where the run selects none (NLL.SELECT_ON none)."""
    best = ctx.run.run_dir / "checkpoints" / "best.pt"
    if best.is_file():
        return best
    if ctx.trainer.cfg.NLL.SELECT_ON == "none":
        return checkpoint.resolve(ctx.run.run_dir)
    raise CheckpointError(f"{best}: missing; the claim needs at least one whole epoch "
                          "(NLL.SELECT_ON test keeps the best epoch there)")


def nll(ctx) -> Measured:
    best = scored_checkpoint(ctx)
    trainer, state = checkpoint.load_trainer(best, ctx.device)
    images, how = test_images(trainer.cfg)
    images = images[:ctx.budget.n]
    values, records = {}, []
    for k in SAMPLES[ctx.budget.name]:
        with torch.no_grad():
            result = evaluate(trainer.encode, trainer.log_likelihood, images, k,
                              trainer.cfg.NLL.BATCH_SIZE, min(trainer.cfg.NLL.CHUNK, k), 0,
                              trainer.device)
        values[f"nll_k{k}"] = result["nll"]
        records.append({"metric": f"nll_k{k}", "value": result["nll"], "protocol": {
            "name": "crvae_mnist_nll", "samples": k, "images": result["images"],
            "test_set": how, "checkpoint": str(best),
            "iteration": int(state["counters"]["iteration"]),
            "selection": state.get("selection"), "vlb": result["vlb"]}})
    values["nll"] = values[f"nll_k{max(SAMPLES[ctx.budget.name])}"]
    return Measured(values=values, curves=epoch_curve(ctx.run.run_dir), records=records)


def attributes(ctx) -> Measured:
    records = ctx.evaluator(ctx.recipe.protocol, ("attr",),
                            attr_classifier_path=str(ctx.features)).run(ctx.trainer)
    return Measured(values={"attr": float(records[0]["value"])}, records=records)
