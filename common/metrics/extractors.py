"""The networks that turn uint8 images into features: torch-fidelity's, or a user's classifier.

The main extractor is any feature extractor registered with torch-fidelity (by default its
TF-exact `inception-v3-compat`, whose weights are found offline and checked by sha256). It runs
once per batch and yields every layer the chosen metrics need. A user's classifier (e.g. the
StackGAN birds Inception fine-tuned on the CUB test classes, no longer downloadable) can score IS
instead of the ImageNet Inception.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_fidelity
from torch import nn
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor

from common.metrics import weights as weights_lib
from common.metrics.weights import MetricsError

# torch-fidelity's metric names for our metrics (which layer each metric reads by default)
_TF_NAMES = {"is": "isc", "fid": "fid", "kid": "kid", "pr": "prc"}
TF1_RESIZE = ("TF1-compatible bilinear resize to {size}x{size} inside the extractor "
              "(torch-fidelity interpolate_bilinear_2d_like_tensorflow1x)")


@dataclass
class FeatureNet:
    """A network fed with every image batch, and which of its outputs each metric reads."""

    module: nn.Module
    layers: dict[str, str]                       # metric -> output name
    info: dict = field(default_factory=dict)     # for the protocol record

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.module(images)
        if isinstance(out, torch.Tensor):
            return {"logits": out.float().cpu()}
        named = self.module.convert_features_tuple_to_dict(out)
        return {k: v.float().cpu() for k, v in named.items()}


def build_extractor(name: str, metrics: list[str], device: torch.device,
                    weights_path: str | Path | None = None, cache_dir: str | Path | None = None,
                    allow_download: bool = False) -> FeatureNet:
    """A torch-fidelity feature extractor producing the layers `metrics` need, on `device`."""
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        raise MetricsError(f"feature extractor {name!r} is not registered with torch-fidelity; "
                           f"known: {', '.join(sorted(FEATURE_EXTRACTORS_REGISTRY))}")
    cls = FEATURE_EXTRACTORS_REGISTRY[name]
    layers = {m: cls.get_default_feature_layer_for_metric(_TF_NAMES[m]) for m in metrics}
    info = {"name": name, "library": f"torch-fidelity {torch_fidelity.__version__}",
            "layers": dict(layers)}
    size = getattr(cls, "INPUT_IMAGE_SIZE", None)
    info["resize"] = TF1_RESIZE.format(size=size) if size else f"as done inside {name}"
    kwargs = {"verbose": False}
    if name in weights_lib.KNOWN:
        path, digest = weights_lib.resolve(weights_lib.KNOWN[name], weights_path, cache_dir,
                                           allow_download)
    elif weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise MetricsError(f"{path}: weights file of feature extractor {name!r} not found")
        digest = weights_lib.sha256_file(path)
    else:
        path, digest = None, None
    if path is not None:
        kwargs["feature_extractor_weights_path"] = str(path)
        info.update(weights=path.name, sha256=digest)
    module = create_feature_extractor(name, sorted(set(layers.values())), cuda=False, **kwargs)
    return FeatureNet(module.to(device), layers, info)


class UserClassifier(nn.Module):
    """An Inception-v3 classifier in torchvision's layout, loaded from a state-dict file.

    Images are resized bilinearly to 299 and rounded to uint8 (as scipy.misc.imresize did in the
    StackGAN evaluator), then scaled to [-1, 1] (Inception/slim preprocessing). With
    `drop_first` the first logit (the background class of slim checkpoints) is removed before
    the softmax.
    """

    SIZE = 299

    def __init__(self, path: str | Path, drop_first: bool):
        super().__init__()
        from torchvision.models import inception_v3
        path = Path(path).expanduser()
        if not path.is_file():
            raise MetricsError(f"{path}: IS classifier file not found (expected a state dict of "
                               "torchvision's inception_v3 layout)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling errors come in many types
            raise MetricsError(f"{path}: not a readable state-dict file "
                               f"({str(err).strip().splitlines()[0]})") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or "fc.weight" not in state:
            raise MetricsError(f"{path}: expected an inception_v3 state dict with an fc.weight "
                               "entry (torchvision layout)")
        classes = int(state["fc.weight"].shape[0])
        aux = any(k.startswith("AuxLogits.") for k in state)
        self.net = inception_v3(weights=None, num_classes=classes, aux_logits=aux,
                                transform_input=False, init_weights=False)
        try:
            self.net.load_state_dict(state)
        except RuntimeError as err:
            raise MetricsError(f"{path}: does not fit torchvision's inception_v3 with {classes} "
                               f"classes ({str(err).splitlines()[0]})") from None
        self.drop_first = drop_first
        self.classes = classes - int(drop_first)
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.SIZE, self.SIZE), mode="bilinear",
                          align_corners=False).round_().clamp_(0, 255)
        logits = self.net(x / 127.5 - 1.0)
        return logits[:, 1:] if self.drop_first else logits


def build_user_classifier(path: str | Path, drop_first: bool, device: torch.device) -> FeatureNet:
    net = UserClassifier(path, drop_first)
    info = {"name": "user inception_v3 classifier", "file": str(Path(path).expanduser()),
            "sha256": weights_lib.sha256_file(Path(path).expanduser()), "classes": net.classes,
            "background_logit_dropped": drop_first,
            "resize": "bilinear (align_corners=False) to 299x299, rounded to uint8, then [-1, 1]",
            "layers": {"is": "logits"}}
    return FeatureNet(net.to(device), {"is": "logits"}, info)
