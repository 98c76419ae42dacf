"""The project's own feature networks: classifiers trained here on the real data, so that FD, KID,
precision/recall and IS can be computed without the Inception weights (docs/metrics.md).

One code path trains every classifier of the project: the MNIST digits, the CIFAR-10 classes and
the 40 CelebA attributes (the attribute accuracy of acVAE samples is read from the same kind of
network). It is a model module like any other, trained by the one loop through
scripts/train_feature_net.py. The network is a plain VGG-style CNN: STAGES stages of CONVS 3x3
conv-BN-ReLU layers and a 2x2 max-pool (widths W, 2W, 4W, 8W, ...), global average pooling (the
"features" layer read by FD / KID / PR) and one linear layer (the "logits": classes, read by IS,
or attributes).

After training, `export` writes beside the checkpoints a plain state dict `features.pt` (read
with weights_only=True), `features.json` (what the network is and how it was made: the resolved
config, the input rule, the held-out accuracy) and `accuracy.json`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, Dataset, Subset

from common import data
from common import config as config_lib
from common.errors import ConfigError, DataError
from common.models import ModelSpec
from common.trainer import Phase, Trainer

NAME = "common.metrics.feature_net"
TASKS = ("classes", "attributes")
WEIGHTS_FILE, META_FILE, ACCURACY_FILE = "features.pt", "features.json", "accuracy.json"
INPUT_RULE = ("uint8 -> x / 127.5 - 1; 3 -> 1 channel by the channel mean, 1 -> 3 by repetition; "
              "bilinear resize with antialiasing (align_corners=False) to {size}x{size} when the "
              "size differs (non-square images are squashed)")

DEFAULTS = {
    "DATA": data.defaults("celeba", image_size=64, split="train"),
    # a second labelled data set mixed into training (e.g. MNIST-ONE composites beside plain
    # MNIST); KIND "" = none. Its held-out split is scored too (HELDOUT.MIX_SPLIT).
    "MIX": {**data.defaults("mnist_one"), "KIND": ""},
    "NET": {
        "TAG": "",               # which protocols it serves: mnist | cifar10 | celeba64 | "" (none)
        "TASK": "attributes",    # classes (softmax cross-entropy) | attributes (sigmoid BCE each)
        "OUTPUTS": 40,           # classes or attributes
        "WIDTH": 32,             # channels of the first stage (then 2x, 4x, ...)
        "STAGES": 4,
        "CONVS": 2,              # 3x3 conv-BN-ReLU layers per stage
        "DROPOUT": 0.0,          # before the linear layer, while training
    },
    "TRAIN": {
        "BATCH_SIZE": 128,
        "EPOCHS": 5,
        "LR": 1e-3,              # Adam, betas (0.9, 0.999)
        "WEIGHT_DECAY": 1e-4,
        "SCHEDULE": "constant",  # constant | cosine (per iteration, to 0 at the last one)
        "SHIFT": 0,              # augmentation: random translation by up to this many pixels
        "FLIP": False,           # augmentation: random horizontal flip
        "LABEL_SMOOTHING": 0.0,  # classes only
    },
    "HELDOUT": {
        "SPLIT": "val",          # the split of DATA scored after training (when EVERY is 0)
        "EVERY": 0,              # > 0: every EVERY-th item of DATA.SPLIT is held out instead
        "MIX_SPLIT": "test",     # split of MIX scored after training
    },
    "RUN": {"SAMPLE_EVERY": 0, "CKPT_EVERY": 1000, "LOG_EVERY": 50},
}
CHOICES = {"NET.TASK": TASKS, "TRAIN.SCHEDULE": ("constant", "cosine"),
           "NET.TAG": ("", "mnist", "cifar10", "celeba64")}


def check_config(cfg) -> None:
    n, t, h = cfg.NET, cfg.TRAIN, cfg.HELDOUT
    for key in ("OUTPUTS", "WIDTH", "STAGES", "CONVS"):
        if n[key] < 1:
            raise ConfigError(f"NET.{key} must be positive, got {n[key]}", f"NET.{key}")
    if cfg.DATA.IMAGE_SIZE % (2 ** n.STAGES):
        raise ConfigError(f"DATA.IMAGE_SIZE {cfg.DATA.IMAGE_SIZE} must be divisible by "
                          f"2^NET.STAGES = {2 ** n.STAGES}", "NET.STAGES")
    if not 0.0 <= n.DROPOUT < 1.0:
        raise ConfigError(f"NET.DROPOUT must be in [0, 1), got {n.DROPOUT}", "NET.DROPOUT")
    if t.SHIFT < 0 or h.EVERY < 0 or h.EVERY == 1:
        raise ConfigError("TRAIN.SHIFT must be >= 0 and HELDOUT.EVERY 0 or >= 2", "HELDOUT.EVERY")
    if cfg.MIX.KIND:
        data.check(cfg.MIX)
        if (cfg.MIX.IMAGE_SIZE, cfg.MIX.CHANNELS) != (cfg.DATA.IMAGE_SIZE, cfg.DATA.CHANNELS):
            raise ConfigError("MIX.IMAGE_SIZE and MIX.CHANNELS must equal DATA's", "MIX.IMAGE_SIZE")


class FeatureCNN(nn.Module):
    """VGG-style classifier; `forward` gives the logits, `features_and_logits` both layers."""

    def __init__(self, outputs: int, width: int, stages: int = 4, convs: int = 2,
                 channels: int = 3, dropout: float = 0.0):
        super().__init__()
        layers, c_in = [], channels
        for stage in range(stages):
            c_out = width * 2 ** stage
            for _ in range(convs):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                           nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, outputs)
        self.feature_dim = c_in

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x).mean(dim=(2, 3))
        return features, self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


def build_net(net_cfg, channels: int) -> FeatureCNN:
    return FeatureCNN(net_cfg.OUTPUTS, net_cfg.WIDTH, net_cfg.STAGES, net_cfg.CONVS, channels,
                      net_cfg.DROPOUT)


# ---- data ---------------------------------------------------------------------------------------
class Labelled(Dataset):
    """Items reduced to "image" and the target ("label" or "attributes"), so that datasets of
    different kinds can be mixed in one batch."""

    def __init__(self, dataset: Dataset, task: str, source: str):
        self.dataset, self.key, self.source = dataset, _target_key(task), source
        self.uses_rng = getattr(dataset, "uses_rng", True)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        if self.key not in item:
            raise DataError(f"{self.source}: its items carry no {self.key!r}; a classifier with "
                            f"NET.TASK {'classes' if self.key == 'label' else 'attributes'} needs "
                            "them")
        return {"image": item["image"], "target": item[self.key]}


def _target_key(task: str) -> str:
    return "label" if task == "classes" else "attributes"


def _every(dataset: Dataset, every: int, held: bool) -> Subset:
    """Items with index % every == every - 1 (held out) or the others: a fixed interleaved cut
    that keeps the class balance of folders sorted by class."""
    return Subset(dataset, [i for i in range(len(dataset)) if (i % every == every - 1) == held])


def _no_flip(section: dict) -> dict:
    section = config_lib.to_plain(section)
    section["OPTIONS"] = dict(section.get("OPTIONS") or {})
    kind = data.KINDS.get(section["KIND"])
    if kind is not None and "FLIP" in kind.options:
        section["OPTIONS"]["FLIP"] = False
    return section


def datasets(cfg) -> tuple[Dataset, dict[str, Dataset]]:
    """(training set, {name: held-out set}). The first held-out set is the one `accuracy.json`
    reports as "heldout"."""
    task, h = cfg.NET.TASK, cfg.HELDOUT
    full = data.build(cfg.DATA)
    if h.EVERY:
        train = _every(full, h.EVERY, held=False)
        held = _every(data.build(_no_flip(cfg.DATA)), h.EVERY, held=True)
        heldout = {f"every {h.EVERY}th of {cfg.DATA.SPLIT}": held}
        if len(train) == 0 or len(held) == 0:
            raise DataError(f"HELDOUT.EVERY {h.EVERY} leaves no training or no held-out images "
                            f"of {len(full)}")
    else:
        train = full
        heldout = {h.SPLIT: data.build({**_no_flip(cfg.DATA), "SPLIT": h.SPLIT})}
    parts = [Labelled(train, task, f"DATA ({cfg.DATA.KIND})")]
    if cfg.MIX.KIND:
        parts.append(Labelled(data.build(cfg.MIX, "MIX"), task, f"MIX ({cfg.MIX.KIND})"))
        mix_held = _no_flip(cfg.MIX)
        if "LENGTH" in mix_held["OPTIONS"]:     # derived sets: one item per item of the split
            mix_held["OPTIONS"]["LENGTH"] = 0
        mix_held = data.build({**mix_held, "SPLIT": h.MIX_SPLIT}, "MIX")
        heldout[f"{cfg.MIX.KIND} {h.MIX_SPLIT}"] = mix_held
    heldout = {k: Labelled(v, task, f"held-out {k}") for k, v in heldout.items()}
    train_set = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if len(parts) > 1:
        train_set.uses_rng = any(p.uses_rng for p in parts)
    return train_set, heldout


# ---- training -----------------------------------------------------------------------------------
def augment(images: torch.Tensor, shift: int, flip: bool) -> torch.Tensor:
    """Random translation (edge-replicated padding, then a crop) and horizontal flip per image,
    drawn from the global torch RNG (part of every checkpoint, so a resumed run draws the same)."""
    b, _, h, w = images.shape
    if shift:
        padded = F.pad(images, (shift,) * 4, mode="replicate")
        dx = torch.randint(0, 2 * shift + 1, (b,), device=images.device)
        dy = torch.randint(0, 2 * shift + 1, (b,), device=images.device)
        rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
        batch = torch.arange(b, device=images.device)[:, None, None, None]
        chans = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
        images = padded[batch, chans, rows, cols]
    if flip:
        mirror = torch.rand(b, device=images.device) < 0.5
        images = torch.where(mirror[:, None, None, None], images.flip(3), images)
    return images


def loss_and_hits(net_cfg, logits: torch.Tensor, target: torch.Tensor,
                  smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training loss, per-item hits: (B,) for classes, (B, A) for attributes)."""
    if net_cfg.TASK == "classes":
        target = target.long()
        loss = F.cross_entropy(logits.float(), target, label_smoothing=smoothing)
        return loss, (logits.argmax(1) == target).float()
    binary = (target.float() > 0).float()       # attributes coded 0/1 or -1/+1
    loss = F.binary_cross_entropy_with_logits(logits.float(), binary)
    return loss, ((logits > 0).float() == binary).float()


class FeatureNetTrainer(Trainer):
    name = NAME
    generator = "C"

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        t = cfg.TRAIN
        self.batch_size, self.epochs = t.BATCH_SIZE, t.EPOCHS
        self.nets["C"] = build_net(cfg.NET, cfg.DATA.CHANNELS).to(device)
        self.optimizers["C"] = torch.optim.Adam(self.nets["C"].parameters(), t.LR,
                                                weight_decay=t.WEIGHT_DECAY)

    def dataset(self):
        return datasets(self.cfg)[0]

    def phases(self):
        return [Phase("C", self.step, ["C"])]

    def learning_rate(self) -> float:
        """A pure function of the iteration, over the configured length (TRAIN.EPOCHS, not a
        --max-iters stop), so that a stopped and resumed run continues exactly."""
        t, p = self.cfg.TRAIN, self.progress
        length = self.epochs * p.iters_per_epoch
        if t.SCHEDULE == "constant" or length <= 0:
            return t.LR
        return t.LR * 0.5 * (1 + math.cos(math.pi * min(p.iteration / length, 1.0)))

    def step(self, batch):
        from common.logging import report
        for group in self.optimizers["C"].param_groups:
            group["lr"] = self.learning_rate()
        t = self.cfg.TRAIN
        images = augment(batch["image"], t.SHIFT, t.FLIP)
        loss, hits = loss_and_hits(self.cfg.NET, self.nets["C"](images), batch["target"],
                                   t.LABEL_SMOOTHING)
        report("train/accuracy", hits.detach().mean())
        return loss

    def synthetic_batch(self, batch_size: int) -> dict:
        d, n = self.cfg.DATA, self.cfg.NET
        image = torch.rand(batch_size, d.CHANNELS, d.IMAGE_SIZE, d.IMAGE_SIZE,
                           device=self.device) * 2 - 1
        target = (torch.zeros(batch_size, dtype=torch.long, device=self.device)
                  if n.TASK == "classes" else torch.zeros(batch_size, n.OUTPUTS,
                                                          device=self.device))
        return {"image": image, "target": target}

    def snapshot_images(self):
        return {}  # a classifier has no pictures to show

    def generate(self, n, seed=0, ema=True):
        from common.metrics.weights import MetricsError
        raise MetricsError("a feature network makes no images (use it with evaluate.py "
                           "--features RUN)")


def build(cfg, device):
    return FeatureNetTrainer(cfg, device)


# ---- after training: held-out accuracy and the exported weights --------------------------------
@torch.no_grad()
def heldout_accuracy(net: nn.Module, net_cfg, dataset: Dataset, device, batch_size: int = 256,
                     workers: int = 0) -> dict:
    """Accuracy on a held-out set: {"value", "n"} (+ per attribute and the majority baseline for
    attributes)."""
    from torch.utils.data import DataLoader
    net.eval()
    hits, targets = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=workers):
        logits = net(batch["image"].to(device))
        hits.append(loss_and_hits(net_cfg, logits, batch["target"].to(device))[1].cpu())
        targets.append(batch["target"].float())
    hits, targets = torch.cat(hits), torch.cat(targets)
    out = {"value": round(float(hits.mean()), 6), "n": len(dataset)}
    if net_cfg.TASK == "attributes":
        share = (targets > 0).float().mean(0)
        out["majority_baseline"] = round(float(torch.maximum(share, 1 - share).mean()), 6)
        out["per_attribute"] = [round(float(v), 5) for v in hits.mean(0)]
    else:
        counts = torch.bincount(targets.long(), minlength=net_cfg.OUTPUTS)
        out["majority_baseline"] = round(float(counts.max()) / len(dataset), 6)
    return out


def output_names(cfg, heldout: Dataset) -> list[str]:
    """Class or attribute names of the logits, as far as the data knows them."""
    base = heldout
    while hasattr(base, "dataset"):
        base = base.dataset
    n = cfg.NET.OUTPUTS
    if cfg.NET.TASK == "attributes":
        names = list(getattr(base, "attribute_names", []) or [])
        if not names and cfg.DATA.KIND == "celeba" and n == 40:
            from common.data.celeba import ATTRIBUTES
            names = list(ATTRIBUTES)
    elif cfg.DATA.KIND == "cifar10":
        from common.data.cifar import CLASSES
        names = list(CLASSES)
    elif cfg.DATA.KIND in ("mnist", "mnist_one", "mnist_two"):
        names = [str(d) for d in range(10)]
    else:
        names = []
    return names if len(names) == n else [f"output_{i}" for i in range(n)]


def export(trainer: FeatureNetTrainer, run_dir: str | Path, seconds: float | None = None,
           workers: int = 0) -> dict:
    """Score the held-out sets, then write features.pt, features.json and accuracy.json (each
    atomically); returns the accuracy record."""
    from common import checkpoint
    run_dir = Path(run_dir)
    cfg, net = trainer.cfg, trainer.nets["C"]
    _, heldout = datasets(cfg)
    scores = {name: heldout_accuracy(net, cfg.NET, ds, trainer.device, workers=workers)
              for name, ds in heldout.items()}
    first = next(iter(scores))
    seconds = _kept_seconds(run_dir, int(trainer.progress.iteration), seconds)
    accuracy = {"heldout": scores[first]["value"], "n": scores[first]["n"], "split": first,
                "metric": "mean attribute accuracy" if cfg.NET.TASK == "attributes"
                else "top-1 accuracy",
                "majority_baseline": scores[first]["majority_baseline"],
                "sets": scores, "iteration": int(trainer.progress.iteration),
                "train_seconds": seconds}
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    pad_from, pad_rule = 0, ""
    if cfg.DATA.KIND == "mnist" and cfg.DATA.OPTIONS.get("RESIZE", "pad") == "pad":
        pad_from = 28   # MNIST's own size: framed in black, as the training digits were
        pad_rule = (f"; 28x28 images are first padded with black to {cfg.DATA.IMAGE_SIZE}x"
                    f"{cfg.DATA.IMAGE_SIZE} (as the training digits)")
    checkpoint.save(state, run_dir / WEIGHTS_FILE)
    meta = {"format": 1, "tag": cfg.NET.TAG, "task": cfg.NET.TASK,
            "outputs": output_names(cfg, heldout[first]),
            "net": config_lib.to_plain(cfg.NET), "channels": cfg.DATA.CHANNELS,
            "input_size": cfg.DATA.IMAGE_SIZE, "feature_dim": net.feature_dim,
            "input_rule": INPUT_RULE.format(size=cfg.DATA.IMAGE_SIZE) + pad_rule,
            "pad_from": pad_from,
            "accuracy": {k: v for k, v in accuracy.items() if k != "sets"},
            "reference_data": reference_section(cfg.DATA), "config": config_lib.to_plain(cfg)}
    _write_json(run_dir / META_FILE, meta)
    _write_json(run_dir / ACCURACY_FILE, accuracy)
    return accuracy


def _kept_seconds(run_dir: Path, iteration: int, seconds: float | None) -> float | None:
    """A finished run exported again keeps the training time of the command that trained it."""
    try:
        before = json.loads((run_dir / ACCURACY_FILE).read_text())
    except (OSError, ValueError):
        return seconds
    if before.get("iteration") == iteration and before.get("train_seconds"):
        return before["train_seconds"]
    return seconds


def reference_section(data_cfg) -> dict:
    """The DATA section with an absolute ROOT and no flips: the images that images scored
    without a model are compared with by default (evaluate.py --images)."""
    section = _no_flip(data_cfg)
    if section.get("ROOT"):
        section["ROOT"] = str(Path(section["ROOT"]).expanduser().resolve())
    return section


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    tmp.replace(path)


SPEC = ModelSpec(NAME, DEFAULTS, build, CHOICES, check_config)
