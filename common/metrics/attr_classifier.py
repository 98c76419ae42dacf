"""Attribute accuracy: how often generated faces carry the attributes they were conditioned on.

The acVAE paper measures it with a classifier it did not publish. Ours is the project's CelebA
feature network (common.metrics.feature_net with NET.TASK attributes), trained like every
classifier of the project by scripts/train_feature_net.py; `evaluate.py --attr-classifier RUN`
reads its exported features.pt / features.json.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from common.metrics.extractors import FeatureNet
from common.metrics.weights import MetricsError, sha256_file


class _Classify(nn.Module):
    """uint8 images -> attribute logits, through the network's documented input rule."""

    def __init__(self, net: nn.Module, size: int, channels: int):
        super().__init__()
        self.net, self.size, self.channels = net, size, channels

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from common.metrics.project_features import prepare
        return self.net(prepare(images, self.size, self.channels))


def load_classifier(path: str | Path, device) -> FeatureNet:
    """A trained attribute network from its run directory or features.pt, ready to score."""
    from common.metrics.project_features import load_net, locate
    weights, meta = locate(path)
    if meta["task"] != "attributes":
        raise MetricsError(f"{weights}: predicts {meta['task']}, not attributes (train the "
                           "attribute network with cfg/features_celeba.yml)")
    net = load_net(weights, meta)
    info = {"name": "attribute network (common.metrics.feature_net)", "file": str(weights),
            "sha256": sha256_file(weights), "iteration": meta["accuracy"].get("iteration"),
            "input": meta.get("input_rule", ""),
            "trained_on": {"kind": meta["config"]["DATA"]["KIND"],
                           "split": meta["config"]["DATA"]["SPLIT"]},
            "real_accuracy": meta["accuracy"]["heldout"],
            "real_accuracy_set": {"split": meta["accuracy"].get("split"),
                                  "n": meta["accuracy"].get("n")},
            "attributes": list(meta.get("outputs") or [])}
    module = _Classify(net, int(meta["input_size"]), int(meta["channels"]))
    return FeatureNet(module.to(device), {"attr": "logits"}, info)


def accuracy(logits: torch.Tensor, conditions: torch.Tensor, info: dict) -> tuple[dict, dict]:
    """Share of (image, attribute) pairs where the classifier agrees with the condition."""
    if logits.shape != conditions.shape:
        raise MetricsError(f"attribute classifier gives {logits.shape[1]} attributes, the samples "
                           f"were conditioned on {conditions.shape[1]}")
    hits = ((logits > 0).float() == (conditions.float() > 0).float()).float()
    names = info.get("attributes") or [f"attribute_{i}" for i in range(logits.shape[1])]
    per = {name: round(float(v), 5) for name, v in zip(names, hits.mean(0))}
    extra = {"classifier": info, "rule": "logit > 0 counts as carrying the attribute; the "
             "condition counts when > 0 (0/1 or -1/+1 coding)"}
    return {"attr": {"value": float(hits.mean()), "per_attribute": per}}, extra
