"""Features of the real reference images, cached on disk under a key that covers everything
they depend on: the data (config or folder listing), the split and subset, the uint8 rule, the
extractor, the sha256 of its weights and the layers.

Cache files live in <cache>/reference/<key>.pt (see weights.cache_root) and hold only tensors,
strings and numbers (read with weights_only=True). Delete the folder to recompute everything.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch

from common import checkpoint
from common.metrics.extractors import FeatureNet
from common.metrics.samples import UINT8_RULE, Reference
from common.metrics.weights import cache_root

CACHE_VERSION = 1


def cache_path(key: str, cache_dir: str | Path | None) -> Path:
    return cache_root(cache_dir) / "reference" / f"{key[:40]}.pt"


def reference_features(reference: Reference, net: FeatureNet, layers: list[str],
                       device: torch.device, batch_size: int = 64, workers: int = 0,
                       cache_dir: str | Path | None = None, use_cache: bool = True,
                       log: Callable[[str], None] = print) -> tuple[dict[str, torch.Tensor], dict]:
    """({layer: (N, D) features}, description with n, resolution and cache key)."""
    extractor = {k: net.info.get(k) for k in ("name", "library", "weights", "sha256", "resize")}
    key = reference.key({"extractor": extractor, "layers": sorted(layers), "uint8": UINT8_RULE,
                         "version": CACHE_VERSION})
    path = cache_path(key, cache_dir)
    if use_cache and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("key") == key and all(layer in state["features"] for layer in layers):
            log(f"reference features from cache {path}")
            return state["features"], {**state["description"], "cache": str(path)}
    log(f"extracting reference features ({reference.description.get('kind')}, "
        f"{len(reference.dataset)} images)")
    parts: dict[str, list] = defaultdict(list)
    resolution = None
    with torch.no_grad():
        for images in reference.batches(batch_size, workers):
            resolution = resolution or list(images.shape[-2:])
            out = net(images.to(device))
            for layer in layers:
                parts[layer].append(out[layer])
    features = {layer: torch.cat(parts[layer]) for layer in layers}
    description = {**reference.description, "resolution": resolution, "cache_key": key}
    if use_cache:
        checkpoint.save({"key": key, "features": features, "description": description}, path)
        description["cache"] = str(path)
    return features, description
