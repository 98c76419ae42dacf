"""From numbers per seed to a verdict. A check holds when every seed agrees; it fails when every
seed says the opposite; anything between is inconclusive. With more seeds a comparison asks that
the ranges over seeds do not overlap (the worst seed of the claimed winner beats the best seed of
the other arm). The claim is reproduced when all its checks hold, not reproduced when one fails,
and inconclusive otherwise (or when a number is missing).
"""
from __future__ import annotations

import math
import statistics

from common.reproduce.recipe import Check

VERDICTS = ("reproduced", "not_reproduced", "inconclusive")


def summary(values: list[float]) -> dict:
    """{per_seed, mean, std, spread (max - min)} of one metric over seeds."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"per_seed": values, "mean": None, "std": None, "spread": None}
    return {"per_seed": values, "mean": statistics.fmean(finite),
            "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "spread": max(finite) - min(finite)}


def _finite(values: list) -> bool:
    return bool(values) and all(v is not None and math.isfinite(v) for v in values)


def judge(check: Check, per_seed: dict[str, dict[str, list]]) -> dict:
    """{check fields, result: holds|fails|inconclusive, reason} for one check;
    per_seed[arm][metric] is the list of values over seeds."""
    mine = per_seed.get(check.arm, {}).get(check.metric, [])
    out = {"metric": check.metric, "arm": check.arm, "why": check.why}
    if not _finite(mine):
        return {**out, "result": "inconclusive", "reason": f"{check.metric} of {check.arm} "
                "is missing or not finite"}
    if check.below is not None or check.above is not None:
        limit = check.below if check.below is not None else check.above
        side = "below" if check.below is not None else "above"
        ok = [v < limit if side == "below" else v > limit for v in mine]
        result = "holds" if all(ok) else "fails" if not any(ok) else "inconclusive"
        return {**out, side: limit, "result": result,
                "reason": f"{check.arm} {check.metric} per seed {_fmt(mine)} vs {side} {limit:g}"}
    reasons, results = [], []
    for other in check.than:
        theirs = per_seed.get(other, {}).get(check.metric, [])
        if not _finite(theirs):
            results.append("inconclusive")
            reasons.append(f"{check.metric} of {other} is missing")
            continue
        sign = 1 if check.better == "lower" else -1      # sign * value: smaller is better
        mine_worst, mine_best = max(sign * v for v in mine), min(sign * v for v in mine)
        their_worst, their_best = max(sign * v for v in theirs), min(sign * v for v in theirs)
        if mine_worst < their_best:
            results.append("holds")
        elif their_worst < mine_best:
            results.append("fails")
        else:
            results.append("inconclusive")
        reasons.append(f"{check.arm} {_fmt(mine)} vs {other} {_fmt(theirs)}")
    result = "fails" if "fails" in results else "holds" if all(r == "holds" for r in results) \
        else "inconclusive"
    return {**out, "better": check.better, "than": list(check.than), "result": result,
            "reason": f"{check.metric} ({check.better} is better): " + "; ".join(reasons)}


def verdict(results: list[dict]) -> str:
    kinds = [r["result"] for r in results]
    if kinds and all(k == "holds" for k in kinds):
        return "reproduced"
    if "fails" in kinds:
        return "not_reproduced"
    return "inconclusive"


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
