"""A CelebA attribute classifier trained on real images, and the attribute accuracy it measures.

The acVAE paper reports how often generated faces carry the attributes they were conditioned
on; its classifier is not published, so ours is documented here: a plain VGG-style CNN (four
stages of two 3x3 conv-BN-ReLU layers and a 2x2 max-pool, widths W, 2W, 4W, 8W), global average
pooling and one linear layer with one logit per attribute, trained with binary cross-entropy.
It is a model module like any other (trained by the one loop through
scripts/train_attr_classifier.py); its checkpoint is what `evaluate.py --attr-classifier` reads.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common import data
from common.errors import DataError
from common.metrics.extractors import FeatureNet
from common.metrics.weights import MetricsError, sha256_file
from common.trainer import Phase, Trainer

NAME = "common.metrics.attr_classifier"
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young").split()
DEFAULTS = {
    "DATA": data.defaults("celeba", image_size=64, split="train"),
    "CLASSIFIER": {
        "ATTRIBUTES": 40,        # logits; must match the dataset's attribute vectors
        "WIDTH": 32,             # channels of the first stage (then 2x, 4x, 8x)
        "BATCH_SIZE": 128,
        "EPOCHS": 5,
        "LR": 1e-3,              # Adam, betas (0.9, 0.999)
        "WEIGHT_DECAY": 1e-4,
        "VAL_SPLIT": "val",      # split whose accuracy is reported after training
        "VAL_FRACTION": 0.0,     # > 0: hold out this last part of DATA.SPLIT instead of VAL_SPLIT
    },
    "RUN": {"SAMPLE_EVERY": 0, "CKPT_EVERY": 1000, "LOG_EVERY": 50},
}


def check_config(cfg):
    from common.errors import ConfigError
    c = cfg.CLASSIFIER
    if not 0.0 <= c.VAL_FRACTION < 1.0:
        raise ConfigError(f"CLASSIFIER.VAL_FRACTION must be in [0, 1), got {c.VAL_FRACTION}",
                          "CLASSIFIER.VAL_FRACTION")
    if c.ATTRIBUTES < 1 or c.WIDTH < 1:
        raise ConfigError("CLASSIFIER.ATTRIBUTES and CLASSIFIER.WIDTH must be positive",
                          "CLASSIFIER.ATTRIBUTES")


class AttributeNet(nn.Module):
    def __init__(self, attributes: int, width: int, channels: int = 3):
        super().__init__()
        layers, c_in = [], channels
        for c_out in (width, 2 * width, 4 * width, 8 * width):
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                           nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, attributes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def targets(item_attributes: torch.Tensor) -> torch.Tensor:
    """Attribute vectors coded 0/1 or -1/+1 -> float 0/1."""
    return (item_attributes.float() > 0).float()


def split_datasets(cfg) -> tuple:
    """(training set, validation set) of the config (see CLASSIFIER.VAL_*)."""
    from torch.utils.data import Subset
    full = data.build(cfg.DATA)
    if cfg.CLASSIFIER.VAL_FRACTION > 0:
        cut = int(round(len(full) * (1 - cfg.CLASSIFIER.VAL_FRACTION)))
        if cut < 1 or cut >= len(full):
            raise DataError(f"CLASSIFIER.VAL_FRACTION {cfg.CLASSIFIER.VAL_FRACTION} leaves no "
                            f"training or no validation images of {len(full)}")
        return Subset(full, range(cut)), Subset(full, range(cut, len(full)))
    val_cfg = {**cfg.DATA, "SPLIT": cfg.CLASSIFIER.VAL_SPLIT, "OPTIONS": dict(cfg.DATA.OPTIONS)}
    kind = data.KINDS.get(cfg.DATA.KIND)
    if kind is not None and "FLIP" in kind.options:
        val_cfg["OPTIONS"]["FLIP"] = False      # validation images as they are
    return full, data.build(val_cfg)


def attribute_names(dataset, count: int) -> list[str]:
    base = getattr(dataset, "dataset", dataset)
    names = getattr(base, "attribute_names", None)
    if names is not None and len(names) == count:
        return list(names)
    return list(CELEBA_ATTRIBUTES) if count == len(CELEBA_ATTRIBUTES) else \
        [f"attribute_{i}" for i in range(count)]


class AttributeTrainer(Trainer):
    name = NAME
    generator = "C"

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        c = cfg.CLASSIFIER
        self.batch_size, self.epochs = c.BATCH_SIZE, c.EPOCHS
        self.nets["C"] = AttributeNet(c.ATTRIBUTES, c.WIDTH, cfg.DATA.CHANNELS).to(device)
        self.optimizers["C"] = torch.optim.Adam(self.nets["C"].parameters(), c.LR,
                                                weight_decay=c.WEIGHT_DECAY)

    def dataset(self):
        return split_datasets(self.cfg)[0]

    def phases(self):
        return [Phase("C", self.step, ["C"])]

    def step(self, batch):
        if "attributes" not in batch:
            raise DataError(f"DATA.KIND {self.cfg.DATA.KIND!r} gives no 'attributes' with its "
                            "images; the attribute classifier needs an attribute dataset (celeba)")
        logits = self.nets["C"](batch["image"])
        target = targets(batch["attributes"])
        with torch.no_grad():
            from common.logging import report
            report("train/accuracy", ((logits > 0).float() == target).float().mean())
        return F.binary_cross_entropy_with_logits(logits.float(), target)

    def snapshot_images(self):
        return {}  # a classifier has no pictures to show

    def generate(self, n, seed=0, ema=True):
        raise MetricsError("an attribute classifier makes no images (use it with "
                           "evaluate.py --metrics attr --attr-classifier RUN)")


def build(cfg, device):
    return AttributeTrainer(cfg, device)


# ---- using a trained classifier ---------------------------------------------------------------
@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, size: int) -> torch.Tensor:
    """Logits for uint8 (B, 3, H, W) images, resized (bilinear, antialiased) to size x size."""
    x = images.float() / 127.5 - 1.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return net(x)


class _Classify(nn.Module):
    def __init__(self, net: nn.Module, size: int, channels: int):
        super().__init__()
        self.net, self.size, self.channels = net, size, channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels == 1:
            images = images[:, :1]
        return predict(self.net, images, self.size)


def real_accuracy_record(run_dir: Path) -> dict | None:
    """The classifier's own accuracy on real held-out images, as written after training."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    found = None
    for line in path.read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("metric") == "attr_real":
            found = row
    return found


def load_classifier(path: str | Path, device) -> FeatureNet:
    """A trained classifier from its run directory or checkpoint, ready to score images."""
    from common import checkpoint
    ckpt = checkpoint.resolve(path)
    trainer, state = checkpoint.load_trainer(ckpt, device)
    if state["model"] != NAME:
        raise MetricsError(f"{ckpt}: is a {state['model']!r} checkpoint, not an attribute "
                           "classifier (train one with scripts/train_attr_classifier.py)")
    cfg = trainer.cfg
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    real = real_accuracy_record(run_dir)
    info = {"name": "attribute classifier (common.metrics.attr_classifier)", "file": str(ckpt),
            "sha256": sha256_file(ckpt), "iteration": int(state["counters"]["iteration"]),
            "input": f"bilinear antialiased resize to {cfg.DATA.IMAGE_SIZE} px, [-1, 1]",
            "trained_on": {"kind": cfg.DATA.KIND, "split": cfg.DATA.SPLIT},
            "real_accuracy": real.get("value") if real else None,
            "attributes": list(real.get("attributes", [])) if real else None}
    net = _Classify(trainer.nets["C"], cfg.DATA.IMAGE_SIZE, cfg.DATA.CHANNELS)
    return FeatureNet(net, {"attr": "logits"}, info)


def accuracy(logits: torch.Tensor, conditions: torch.Tensor, info: dict) -> tuple[dict, dict]:
    """Share of (image, attribute) pairs where the classifier agrees with the condition."""
    if logits.shape != conditions.shape:
        raise MetricsError(f"attribute classifier gives {logits.shape[1]} attributes, the samples "
                           f"were conditioned on {conditions.shape[1]}")
    hits = ((logits > 0).float() == targets(conditions)).float()
    names = info.get("attributes") or attribute_names(None, logits.shape[1])
    per = {name: round(float(v), 5) for name, v in zip(names, hits.mean(0))}
    extra = {"classifier": info, "rule": "logit > 0 counts as carrying the attribute; the "
             "condition counts when > 0 (0/1 or -1/+1 coding)"}
    return {"attr": {"value": float(hits.mean()), "per_attribute": per}}, extra


@torch.no_grad()
def validate(trainer, batch_size: int = 256, workers: int = 0) -> dict:
    """The 'attr_real' record: accuracy of the classifier on real validation images."""
    from torch.utils.data import DataLoader
    val = split_datasets(trainer.cfg)[1]
    net = trainer.nets["C"].eval()
    hits = []
    for batch in DataLoader(val, batch_size=batch_size, num_workers=workers):
        logits = net(batch["image"].to(trainer.device))
        hits.append(((logits > 0).float().cpu() == targets(batch["attributes"])).float())
    hits = torch.cat(hits)
    names = attribute_names(val, hits.shape[1])
    c = trainer.cfg.CLASSIFIER
    split = (f"last {c.VAL_FRACTION:g} of {trainer.cfg.DATA.SPLIT}" if c.VAL_FRACTION > 0
             else c.VAL_SPLIT)
    return {"metric": "attr_real", "value": float(hits.mean()), "attributes": names,
            "per_attribute": {n: round(float(v), 5) for n, v in zip(names, hits.mean(0))},
            "protocol": {"images": len(val), "split": split, "data": trainer.cfg.DATA.KIND,
                         "rule": "logit > 0 against attribute > 0"},
            "iteration": int(trainer.progress.iteration)}
