"""Measures of the RP-GAN claim (cfg/claims/rpgan_k_vs_1.yml): does the discriminator overwhelm
the generator? Read from the run's logged losses (stats.jsonl), over the second half of training:

- d_near_zero: share of logged iterations where the discriminators' mean loss (loss/D_mean: the
  single D's loss, or the mean over the K projected ones) is below NEAR_ZERO;
- g_loss_growth: the generator's mean loss over the last quarter of training over that of the
  second quarter (above 1: G's loss grows while D wins).
"""
from __future__ import annotations

import statistics

from common.reproduce.plots import read_losses
from common.reproduce.scoring import Measured

NEAR_ZERO = 0.1   # a D whose real + fake BCE is below this classifies nearly every image right


def stability(ctx) -> Measured:
    losses = read_losses(ctx.run.run_dir)
    d, g = losses.get("loss/D_mean", []), losses.get("loss/G/G", [])
    total = ctx.budget.iters
    late_d = [v for it, v in d if it > total / 2]
    q2 = [v for it, v in g if total / 4 < it <= total / 2]
    q4 = [v for it, v in g if it > 3 * total / 4]
    values = {}
    if late_d:
        values["d_near_zero"] = sum(v < NEAR_ZERO for v in late_d) / len(late_d)
        values["d_loss_late"] = statistics.fmean(late_d)
    if q2 and q4:
        values["g_loss_growth"] = statistics.fmean(q4) / max(statistics.fmean(q2), 1e-8)
    return Measured(values=values)
