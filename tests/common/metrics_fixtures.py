"""Test stand-ins for the metrics (no downloads): small feature extractors registered with
torch-fidelity, a conditional toy model with an `eval_samples` hook, and an attribute dataset.

Importing this module registers everything; `scripts/evaluate.py --import
tests.common.metrics_fixtures --extractor tiny-random` uses it from the command line.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from torch_fidelity import register_feature_extractor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from common import data
from common.models import ModelSpec
from tests.common import toy_model

CLASSES = 5


class TinyRandomExtractor(FeatureExtractorBase):
    """A fixed, randomly initialised conv net in place of Inception: 16-d 'pool' features and
    10 'logits'. Takes uint8 images like torch-fidelity's extractors."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, stride=2)
        self.fc = nn.Linear(16, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        if feature_extractor_weights_path:
            self.load_state_dict(torch.load(feature_extractor_weights_path, weights_only=True))

    @staticmethod
    def get_provided_features_list():
        return "pool", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "pool", "kid": "pool", "prc": "pool"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 16, 16, dtype=torch.uint8)

    def forward(self, x):
        x = F.interpolate(x.float() / 127.5 - 1, size=(16, 16), mode="bilinear",
                          align_corners=False)
        pool = torch.tanh(self.conv(x)).mean(dim=(2, 3))
        out = {"pool": pool, "logits": self.fc(pool)}
        return tuple(out[name] for name in self.features_list)


class UniformExtractor(TinyRandomExtractor):
    """A classifier that is never sure: every image gets the same logits."""

    def forward(self, x):
        out = {"pool": torch.zeros(len(x), 16), "logits": torch.zeros(len(x), CLASSES)}
        return tuple(out[name] for name in self.features_list)


class ConfidentExtractor(TinyRandomExtractor):
    """A perfectly confident classifier: the class is the image's brightness level (see
    ClassImages), with a margin of 100 in the logits."""

    def forward(self, x):
        level = (x.float().mean(dim=(1, 2, 3)) / 256 * CLASSES).long().clamp(0, CLASSES - 1)
        logits = F.one_hot(level, CLASSES).float() * 100
        out = {"pool": torch.zeros(len(x), 16), "logits": logits}
        return tuple(out[name] for name in self.features_list)


for _name, _cls in (("tiny-random", TinyRandomExtractor), ("uniform-classifier", UniformExtractor),
                    ("confident-classifier", ConfidentExtractor)):
    if _name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(_name, _cls)


# ---- a conditional toy model: the toy DCGAN plus an eval_samples hook -------------------------
NAME = "tests.common.metrics_fixtures"
DEFAULTS = {**toy_model.DEFAULTS, "EVAL_SPLIT": {"ATTRIBUTES": 2, "CONDITIONS": 24}}


def evaluation_conditions(cfg) -> torch.Tensor:
    """The 'evaluation split' of the conditional toy: a fixed list of 0/1 attribute vectors."""
    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, 2, (cfg.EVAL_SPLIT.CONDITIONS, cfg.EVAL_SPLIT.ATTRIBUTES),
                         generator=g).float()


def paint(attributes: torch.Tensor, size: int) -> torch.Tensor:
    """Images carrying their attributes: attribute 0 lights the left half, 1 the top half."""
    img = torch.full((len(attributes), 3, size, size), -0.8)
    half = size // 2
    img[:, :, :, :half] += 1.2 * attributes[:, 0, None, None, None]
    img[:, :, :half, :] += 0.4 * attributes[:, 1, None, None, None]
    return img.clamp(-1, 1)


class ConditionalToy(toy_model.ToyTrainer):
    name = NAME
    invert = False  # paint the opposite attributes (a generator that ignores its conditions)

    def conditional_images(self, attributes):
        return paint(1 - attributes if self.invert else attributes, self.cfg.DATA.IMAGE_SIZE)


def eval_samples(trainer, n, seed, batch_size):
    """The evaluation conditions in order, cycled until n images are made."""
    conditions = evaluation_conditions(trainer.cfg)
    made = 0
    while made < n:
        index = torch.arange(made, min(made + batch_size, n)) % len(conditions)
        attributes = conditions[index]
        yield {"image": trainer.conditional_images(attributes).to(trainer.device),
               "attributes": attributes, "condition_index": index}
        made += len(index)


def build(cfg, device):
    return ConditionalToy(cfg, device)


# ---- a dataset with attributes (stands in for CelebA in the classifier tests) ------------------
class PaintedAttributes(Dataset):
    def __init__(self, length, size, seed):
        g = torch.Generator().manual_seed(seed)
        self.attributes = torch.randint(0, 2, (length, 2), generator=g).float()
        self.noise = torch.randn(length, 3, size, size, generator=g) * 0.1
        self.size = size

    def __len__(self):
        return len(self.attributes)

    def __getitem__(self, i):
        image = (paint(self.attributes[i:i + 1], self.size)[0] + self.noise[i]).clamp(-1, 1)
        return {"image": image, "attributes": self.attributes[i] * 2 - 1,  # -1/+1 like CelebA
                "label": torch.tensor(0)}


if "painted_attributes" not in data.KINDS:
    @data.register("painted_attributes", {"LENGTH": 256, "SEED": 0}, needs_root=False)
    def build_painted(spec):
        """Images whose halves show two binary attributes (tests only)."""
        seed = spec.options["SEED"] + (0 if spec.split == "train" else 1)
        return PaintedAttributes(spec.options["LENGTH"], spec.image_size, seed)


SPEC = ModelSpec(NAME, DEFAULTS, build, eval_samples=eval_samples)
