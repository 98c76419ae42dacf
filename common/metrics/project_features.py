"""The project's feature networks (common.metrics.feature_net) as torch-fidelity extractors.

Each dataset tag is registered under its own name (`ganrepro-mnist`, `ganrepro-cifar10`,
`ganrepro-celeba64`) with `torch_fidelity.register_feature_extractor`, so the networks are driven
like any torch-fidelity extractor: uint8 (B, 3, H, W) in, a tuple of the requested layers out.
Layers: "features" (the global-average-pooled last stage, the penultimate layer) for FID, KID and
precision/recall, "logits" for IS (networks trained on classes only).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor

from common.errors import first_line
from common.metrics import feature_net
from common.metrics.extractors import FeatureNet
from common.metrics.weights import MetricsError, sha256_file

EXTRACTORS = {"mnist": "ganrepro-mnist", "cifar10": "ganrepro-cifar10",
              "celeba64": "ganrepro-celeba64"}
_LAYERS = {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}


def locate(path: str | Path) -> tuple[Path, dict]:
    """(weights file, its features.json) from a run directory or a features.pt file."""
    path = Path(path).expanduser()
    weights = path / feature_net.WEIGHTS_FILE if path.is_dir() else path
    meta_path = weights.with_name(feature_net.META_FILE)
    if not weights.is_file() or not meta_path.is_file():
        raise MetricsError(f"{path}: not a feature network (expected {feature_net.WEIGHTS_FILE} "
                           f"and {feature_net.META_FILE} written by scripts/train_feature_net.py)")
    try:
        meta = json.loads(meta_path.read_text())
        for key in ("tag", "task", "net", "channels", "input_size", "accuracy"):
            meta[key]  # noqa: B018  (each must be there)
    except (ValueError, KeyError, TypeError) as err:
        raise MetricsError(f"{meta_path}: not a feature network description ({err})") from None
    return weights, meta


def load_net(weights: Path, meta: dict) -> feature_net.FeatureCNN:
    """The trained network that features.json describes, with the weights of features.pt."""
    from types import SimpleNamespace
    net = feature_net.build_net(SimpleNamespace(**meta["net"]), meta["channels"])
    try:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as err:  # unpickling and shape errors come in many types
        raise MetricsError(f"{weights}: does not load into the network its "
                           f"{feature_net.META_FILE} describes ({first_line(err)})") from None
    return net.eval().requires_grad_(False)


class ProjectFeatures(FeatureExtractorBase):
    """A trained FeatureCNN fed with uint8 images by the documented input rule."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if not feature_extractor_weights_path:
            raise MetricsError(f"feature extractor {name} needs its weights: pass --features RUN "
                               "(a run of scripts/train_feature_net.py)")
        weights, meta = locate(feature_extractor_weights_path)
        tag = next((t for t, n in EXTRACTORS.items() if n == name), None)
        if meta["tag"] != tag:
            raise MetricsError(f"{weights}: a feature network for {meta['tag'] or 'no protocol'!r}, "
                               f"not for {tag!r} ({name})")
        if "logits" in features_list and meta["task"] != "classes":
            raise MetricsError(f"{weights}: an attribute network has no class logits; IS cannot "
                               "be computed with it")
        self.net = load_net(weights, meta)
        self.size, self.channels = int(meta["input_size"]), int(meta["channels"])
        self.pad_from = int(meta.get("pad_from", 0))
        self.meta = meta

    @staticmethod
    def get_provided_features_list():
        return "features", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return _LAYERS[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    def forward(self, images: torch.Tensor):
        x = prepare(images, self.size, self.channels, self.pad_from)
        features, logits = self.net.features_and_logits(x)
        out = {"features": features, "logits": logits}
        return tuple(out[name] for name in self.features_list)


def prepare(images: torch.Tensor, size: int, channels: int, pad_from: int = 0) -> torch.Tensor:
    """uint8 (B, C, H, W) -> the network's input (feature_net.INPUT_RULE). Images of the size
    `pad_from` (MNIST's native 28 px) are framed in black as the training digits were."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise MetricsError(f"feature network input must be (B, 1 or 3, H, W), got "
                           f"{tuple(images.shape)}")
    x = images.float() / 127.5 - 1.0
    if channels == 1 and x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    elif channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if pad_from and x.shape[-2:] == (pad_from, pad_from) and pad_from < size:
        p = size - pad_from
        x = F.pad(x, (p // 2, p - p // 2, p // 2, p - p // 2), value=-1.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x


for _name in EXTRACTORS.values():
    if _name not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(_name, ProjectFeatures)


def build(path: str | Path, metrics: list[str], device, tag: str = "") -> FeatureNet:
    """The feature network at `path` (run directory or features.pt) for `metrics`; `tag` (a
    protocol's) must match the network's own when given."""
    weights, meta = locate(path)
    if tag and meta["tag"] != tag:
        raise MetricsError(f"{weights}: this protocol needs the {tag!r} feature network, this one "
                           f"is for {meta['tag'] or 'no protocol'!r} (trained with "
                           f"{meta['config'].get('DATA', {}).get('KIND')!r} data)")
    if not meta["tag"]:
        raise MetricsError(f"{weights}: NET.TAG is empty, so it serves no protocol; train it "
                           "with NET.TAG set (mnist, cifar10 or celeba64)")
    if "is" in metrics and meta["task"] != "classes":
        raise MetricsError(f"{weights}: IS needs class logits, this network predicts attributes "
                           "(drop is from --metrics)")
    name = EXTRACTORS[meta["tag"]]
    from common.metrics.extractors import _TF_NAMES
    layers = {m: _LAYERS[_TF_NAMES[m]] for m in metrics}
    module = create_feature_extractor(name, sorted(set(layers.values())), cuda=False,
                                      feature_extractor_weights_path=str(weights), verbose=False)
    info = {"name": name, "library": f"torch-fidelity {torch_fidelity.__version__} (registered "
            "by ganrepro)", "weights": str(weights.resolve()), "sha256": sha256_file(weights),
            "layers": dict(layers), "resize": meta.get("input_rule", ""),
            "feature_dim": meta.get("feature_dim"), "task": meta["task"],
            "heldout_accuracy": meta["accuracy"], "training_config": meta.get("config")}
    return FeatureNet(module.to(device), layers, info)


def reference_data(path: str | Path) -> dict:
    """The DATA section the network was trained on (ROOT made absolute at export), the default
    reference of images scored without a model."""
    _, meta = locate(path)
    section = meta.get("reference_data") or meta["config"]["DATA"]
    return dict(section)
