"""Evaluation: IS, FID, KID, precision/recall (torch-fidelity) and attribute accuracy, offline,
with the protocol written beside every number. See docs/metrics.md.

    evaluator = Evaluator(("is", "fid"), resolve("fid50k"), device="cuda")
    records = evaluator.run(trainer)          # one dict per number: value, std, protocol, ...
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from common.metrics.evaluator import Evaluator
from common.metrics.protocols import METRICS, PROTOCOLS, Protocol, parse_metrics, resolve
from common.metrics.weights import INCEPTION, MetricsError

__all__ = ["Evaluator", "METRICS", "PROTOCOLS", "Protocol", "parse_metrics", "resolve",
           "INCEPTION", "MetricsError", "evaluator_from_config", "append_records", "summary",
           "eval_mode"]


def evaluator_from_config(cfg, device, log=print) -> Evaluator:
    """The Evaluator an EVAL config section describes (checked now, networks built later)."""
    from common.errors import ConfigError
    ev = cfg.EVAL
    try:
        protocol = resolve(ev.PROTOCOL, n=ev.N or None)
        metrics = parse_metrics(list(ev.METRICS), protocol)
        return Evaluator(metrics, protocol, device, extractor=ev.EXTRACTOR,
                         weights=ev.WEIGHTS or None, cache_dir=ev.CACHE_DIR or None,
                         allow_download=ev.ALLOW_DOWNLOAD, reference=ev.REFERENCE,
                         is_classifier=ev.IS_CLASSIFIER or None,
                         attr_classifier_path=ev.ATTR_CLASSIFIER or None,
                         batch_size=ev.BATCH_SIZE, seed=cfg.RUN.SEED,
                         features=ev.FEATURES or None, log=log)
    except MetricsError as err:
        raise ConfigError(f"EVAL section: {err}", "EVAL") from None


def append_records(records: list[dict], path: str | Path, extra: dict | None = None) -> None:
    """Append records as JSON lines (a run's metrics.jsonl)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for record in records:
            f.write(json.dumps({**(extra or {}), **record}) + "\n")


def summary(records: list[dict]) -> str:
    """'fid50k: fid 12.3  is 6.1 +- 0.05' for the console."""
    parts = []
    for r in records:
        std = f" +- {r['std']:.4g}" if r.get("std") is not None else ""
        parts.append(f"{r['metric']} {r['value']:.5g}{std}")
    name = records[0]["protocol"]["name"] if records else ""
    return f"{name}: " + "  ".join(parts)


@contextmanager
def eval_mode(nets: dict):
    """Networks in eval mode inside (as evaluate.py sees a checkpoint), modes restored after."""
    modes = {name: [m.training for m in net.modules()] for name, net in nets.items()}
    for net in nets.values():
        net.eval()
    try:
        yield
    finally:
        for name, net in nets.items():
            for m, mode in zip(net.modules(), modes[name]):
                m.training = mode
