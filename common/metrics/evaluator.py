"""One evaluation: generate n images once, feed every batch to the networks the metrics need,
then compute the metrics with torch-fidelity's own functions and write one record per number.

IS reads the classifier logits, FID/KID/precision/recall read the same pool features of the
same pass (precision/recall on Inception pool3 features, as the ADM evaluator; torch-fidelity's
default for PR would be a second pass through VGG-16).
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable

import torch
import torch_fidelity as fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from common.metrics import attr_classifier
from common.metrics import weights as weights_lib
from common.metrics.extractors import FeatureNet, build_extractor, build_user_classifier
from common.metrics.protocols import BINARY, Protocol
from common.metrics.reference import reference_features
from common.metrics.samples import (UINT8_RULE, Reference, generated, generator_kind,
                                    reference_for)
from common.metrics.weights import MetricsError

KID_KERNEL = "polynomial k(x, y) = (x.y / dim + 1)^3"


@contextmanager
def exact_float32():
    """Features in true float32: TF32 matmuls/convolutions (a training switch) are off inside."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class Evaluator:
    """Keeps the networks and the reference features between evaluations (e.g. during training)."""

    def __init__(self, metrics: tuple[str, ...], protocol: Protocol, device="cpu",
                 extractor: str = "inception-v3-compat", weights: str | None = None,
                 cache_dir: str | None = None, allow_download: bool = False,
                 use_cache: bool = True, is_classifier: str | None = None,
                 attr_classifier_path: str | None = None, reference: str = "data",
                 reference_size: int = 0, batch_size: int = 64, workers: int = 0, seed: int = 0,
                 features: str | None = None, log: Callable[[str], None] = print):
        self.metrics, self.protocol, self.device = tuple(metrics), protocol, torch.device(device)
        self.extractor_name, self.weights, self.cache_dir = extractor, weights, cache_dir
        self.allow_download, self.use_cache = allow_download, use_cache
        self.is_classifier, self.attr_path = is_classifier, attr_classifier_path
        self.reference_spec, self.reference_size = reference or "data", reference_size
        self.batch_size, self.workers, self.seed, self.log = batch_size, workers, seed, log
        self.features = features or None
        if protocol.features and not self.features:
            data = {"mnist": "mnist", "cifar10": "cifar10", "celeba64": "celeba"}[protocol.features]
            raise MetricsError(f"protocol {protocol.name} scores with the project's "
                               f"{protocol.features} feature network: pass --features RUN (train "
                               f"it with python scripts/train_feature_net.py --cfg "
                               f"cfg/features_{data}.yml)")
        if self.features and self._main_metrics():  # a wrong file fails now, not after sampling
            from common.metrics import project_features
            _, meta = project_features.locate(self.features)
            if protocol.features and meta["tag"] != protocol.features:
                raise MetricsError(f"{self.features}: protocol {protocol.name} needs the "
                                   f"{protocol.features!r} feature network, this one is for "
                                   f"{meta['tag'] or 'no protocol'!r}")
        if "is" in metrics and protocol.is_classifier == "user" and not is_classifier:
            raise MetricsError(f"protocol {protocol.name} scores IS with a classifier you supply: "
                               "pass --is-classifier PATH (a state dict of torchvision's "
                               "inception_v3 layout, see docs/metrics.md)")
        if "attr" in metrics and not attr_classifier_path:
            raise MetricsError("metric attr needs --attr-classifier PATH (a run directory or "
                               "features.pt of scripts/train_feature_net.py with an attribute "
                               "network, e.g. cfg/features_celeba.yml)")
        if self._main_metrics() and not self.features and extractor in weights_lib.KNOWN:
            weights_lib.resolve(weights_lib.KNOWN[extractor], weights, cache_dir, allow_download)
        self.main: FeatureNet | None = None
        self.is_net: FeatureNet | None = None
        self.attr_net: FeatureNet | None = None
        self._references: dict = {}

    # ---- networks -----------------------------------------------------------------------------
    def _main_metrics(self) -> list[str]:
        """Metrics read from the main extractor (IS too, unless a user classifier scores it)."""
        return [m for m in self.metrics if m in BINARY or (m == "is" and not self.is_classifier)]

    def _networks(self) -> None:
        main_metrics = self._main_metrics()
        if main_metrics and self.main is None and self.features:
            from common.metrics import project_features
            self.main = project_features.build(self.features, main_metrics, self.device,
                                               self.protocol.features)
        elif main_metrics and self.main is None:
            self.main = build_extractor(self.extractor_name, main_metrics, self.device,
                                        self.weights, self.cache_dir, self.allow_download)
        if "is" in self.metrics and self.is_classifier and self.is_net is None:
            self.is_net = build_user_classifier(self.is_classifier,
                                                self.protocol.drop_first_logit, self.device)
        if "attr" in self.metrics and self.attr_net is None:
            self.attr_net = attr_classifier.load_classifier(self.attr_path, self.device)

    def _reference(self, trainer, layers: list[str]) -> tuple[dict, dict]:
        p = self.protocol
        memo = (trainer.name if trainer is not None else None, id(self.reference_spec), p.reference_split,
                self.reference_size, p.reference_n, tuple(layers))
        if memo not in self._references:
            ref = self.reference_spec if isinstance(self.reference_spec, Reference) else \
                reference_for(trainer, self.reference_spec, p.reference_split,
                              self.reference_size, self.features)
            ref = ref.subset(p.reference_n)
            self._references[memo] = reference_features(
                ref, self.main, layers, self.device, self.batch_size, self.workers,
                self.cache_dir, self.use_cache, self.log)
        return self._references[memo]

    # ---- one evaluation -----------------------------------------------------------------------
    def run(self, trainer, ema: bool = True, checkpoint: dict | None = None) -> list[dict]:
        """Evaluate the trainer's generator; one record per number (see docs/metrics.md)."""
        start = time.perf_counter()
        batches = generated(trainer, self.protocol.n, self.seed, self.batch_size, ema)
        records = self._score(batches, trainer.name, lambda layers: self._reference(trainer, layers),
                              generator_kind(trainer, ema))
        seconds = round(time.perf_counter() - start, 2)
        for record in records:
            record.update(model=trainer.name, iteration=int(trainer.progress.iteration),
                          checkpoint=checkpoint, seconds=seconds)
        return records

    def run_images(self, images) -> list[dict]:
        """Score a set of images that came from no checkpoint (an `image_sets.ImageSet`); the
        reference is the one asked for, by default the feature network's own data."""
        start = time.perf_counter()
        batches = images.batches(self.protocol.n, self.batch_size)
        path = images.description["path"]
        records = self._score(batches, path, lambda layers: self._reference(None, layers),
                              f"images of {path} (no model)")
        seconds = round(time.perf_counter() - start, 2)
        for record in records:
            record.update(model=None, iteration=None, images=images.description, seconds=seconds)
        return records

    def _score(self, batches, source: str, reference, generator: str) -> list[dict]:
        """Features of every batch (dicts with uint8 "image"), then one record per number."""
        p = self.protocol
        self._networks()
        fake: dict[str, list] = defaultdict(list)
        resolution = None
        with exact_float32(), torch.no_grad():
            for batch in batches:
                images = batch["image"].to(self.device)
                if resolution is None:
                    resolution = list(images.shape[-2:])
                    if p.resolution and resolution != [p.resolution, p.resolution]:
                        raise MetricsError(f"protocol {p.name} needs {p.resolution} px images; "
                                           f"{source} makes {resolution[0]}x{resolution[1]}")
                if self.main is not None:
                    for layer, value in self.main(images).items():
                        fake["main/" + layer].append(value)
                if self.is_net is not None:
                    fake["is/logits"].append(self.is_net(images)["logits"])
                if self.attr_net is not None:
                    if "attributes" not in batch:
                        raise MetricsError(f"metric attr: {source} gives no 'attributes' "
                                           "with its samples (not an attribute-conditioned model)")
                    fake["attr/logits"].append(self.attr_net(images)["logits"])
                    fake["attr/target"].append(batch["attributes"].float().cpu())
            fake = {k: torch.cat(v) for k, v in fake.items()}
            ref, ref_info = {}, None
            binary = [m for m in self.metrics if m in BINARY]
            if binary:
                layers = sorted({self.main.layers[m] for m in binary})
                ref, ref_info = reference(layers)
        base = {
            "name": p.name, "overrides": dict(p.overrides), "n": p.n, "seed": self.seed,
            "batch_size": self.batch_size, "device": str(self.device), "generator": generator,
            "resolution": resolution, "uint8": UINT8_RULE,
        }
        records = []
        for metric in self.metrics:
            values, extra = self._compute(metric, fake, ref)
            protocol = {**base, **extra}
            if metric in BINARY:
                protocol["reference"] = ref_info
            for name, value in values.items():
                records.append({"metric": name, **value, "protocol": protocol})
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        versions = {"torch": str(torch.__version__), "torch-fidelity": fidelity.__version__}
        for record in records:
            record.update(time=when, versions=versions)
        return records

    def _compute(self, metric: str, fake: dict, ref: dict) -> tuple[dict, dict]:
        p, seed = self.protocol, self.seed
        if metric == "is":
            net = self.is_net or self.main
            logits = fake["is/logits"] if self.is_net else fake["main/" + self.main.layers["is"]]
            if p.splits < 1 or p.splits > len(logits):
                raise MetricsError(f"IS splits must be between 1 and the sample count "
                                   f"{len(logits)}, got {p.splits}")
            out = isc_features_to_metric(logits, p.splits, shuffle=True, rng_seed=seed)
            extra = {"splits": p.splits, "split_order": f"shuffled with seed {seed}",
                     "classifier": net.info}
            return {"is": {"value": out[fidelity.KEY_METRIC_ISC_MEAN],
                           "std": out[fidelity.KEY_METRIC_ISC_STD]}}, extra
        if metric == "attr":
            return attr_classifier.accuracy(fake["attr/logits"], fake["attr/target"],
                                            self.attr_net.info)
        layer = self.main.layers[metric]
        f1, f2 = fake["main/" + layer], ref[layer]
        extra = {"extractor": self.main.info, "layer": layer}
        if metric == "fid":
            stats1, stats2 = fid_features_to_statistics(f1), fid_features_to_statistics(f2)
            out = fid_statistics_to_metric(stats1, stats2, False)
            return {"fid": {"value": out[fidelity.KEY_METRIC_FID]}}, extra
        if metric == "kid":
            size = min(p.kid_subset_size, len(f1), len(f2))
            out = kid_features_to_metric(f1, f2, kid_subsets=p.kid_subsets, kid_subset_size=size,
                                         rng_seed=seed, verbose=False)
            extra.update(kid_subsets=p.kid_subsets, kid_subset_size=size, kid_kernel=KID_KERNEL)
            return {"kid": {"value": out[fidelity.KEY_METRIC_KID_MEAN],
                            "std": out[fidelity.KEY_METRIC_KID_STD]}}, extra
        k = p.pr_neighborhood
        if min(len(f1), len(f2)) <= k:
            raise MetricsError(f"precision/recall with k={k} needs more than {k} images per set")
        out = prc_features_to_metric(f1.to(self.device), f2.to(self.device), prc_neighborhood=k,
                                     prc_batch_size=10_000, save_cpu_ram=True, verbose=False)
        extra.update(pr_neighborhood=k, pr_method="k-NN manifolds (Kynkaenniemi et al. 2019)")
        return {"precision": {"value": out[fidelity.KEY_METRIC_PRECISION]},
                "recall": {"value": out[fidelity.KEY_METRIC_RECALL]}}, extra
