"""Images to evaluate: generated batches from a trainer, and real reference images.

Everything reaches the extractors as uint8 (B, 3, H, W) made by the rule of the PNG writer
(`common.images.to_uint8`: (x + 1) * 127.5, rounded half up, clamped), so scoring a folder of saved
samples and scoring the generator directly give the same number. Grey images get 3 channels.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from common import config as config_lib
from common import models
from common.metrics.weights import MetricsError
from common.seeds import mix

UINT8_RULE = "uint8 = clamp((x + 1) * 127.5 + 0.5, 0, 255) truncated (as the PNG writer)"


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) floats in [-1, 1] on any device -> uint8 with 3 channels, same device."""
    x = (images.detach().float() - (-1.0)) / 2.0
    x = (x * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise MetricsError(f"images have {x.shape[1]} channels; metrics need 1 or 3")
    return x.contiguous()


def generator_kind(trainer, ema: bool) -> str:
    if models.spec(trainer.name).eval_samples is not None:
        return f"eval_samples hook of {trainer.name} (conditions from the evaluation split)"
    has_ema = f"{trainer.generator}_ema" in trainer.nets
    return "EMA generator" if ema and has_ema else "generator (no EMA)" if not has_ema \
        else "live generator (--raw)"


@torch.no_grad()
def generated(trainer, n: int, seed: int, batch_size: int, ema: bool = True) -> Iterator[dict]:
    """Exactly `n` generated images in batches: dicts with "image" (uint8, on the trainer's
    device) and, for conditional models, the conditions their `eval_samples` hook used."""
    eval_samples = models.spec(trainer.name).eval_samples
    if eval_samples is not None:
        source = eval_samples(trainer, n, seed, batch_size)
    else:
        source = ({"image": trainer.generate(min(batch_size, n - start), mix(seed, i), ema)}
                  for i, start in enumerate(range(0, n, batch_size)))
    count = 0
    for batch in source:
        if not isinstance(batch, dict) or "image" not in batch:
            raise MetricsError(f"{trainer.name}: eval_samples must yield dicts with an 'image' "
                               f"entry, got {type(batch).__name__}")
        take = min(len(batch["image"]), n - count)
        out = {k: v[:take] if isinstance(v, (torch.Tensor, list, tuple)) else v
               for k, v in batch.items()}
        out["image"] = to_uint8_rgb(out["image"])
        count += take
        yield out
        if count >= n:
            return
    raise MetricsError(f"{trainer.name}: produced {count} images, {n} were asked for")


# ---- real reference images ----------------------------------------------------------------------
class Uint8Images(Dataset):
    """Items of a common.data dataset (dicts with "image" in [-1, 1]) as uint8 RGB tensors."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        item = self.dataset[index]
        image = item["image"] if isinstance(item, dict) else item
        return to_uint8_rgb(image[None])[0]


class FolderImages(Dataset):
    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        from common.data.imageio import load_image
        from common.data.transforms import fit
        img = load_image(self.paths[index], 3)
        if self.size:
            img = fit(img, self.size, "center")
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


class Reference:
    """A set of real images: a description (for the record and the cache key) and a dataset."""

    def __init__(self, description: dict, dataset: Dataset):
        self.description, self.dataset = description, dataset

    def key(self, extra: dict) -> str:
        text = json.dumps({"reference": self.description, **extra}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def subset(self, n: int, seed: int = 0) -> "Reference":
        """A seeded random subset of n images (all of them when n is 0 or too large)."""
        total = len(self.dataset)
        if n <= 0 or n >= total:
            return Reference({**self.description, "n": total}, self.dataset)
        order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
        subset = f"random {n} of {total}, seed {seed}"
        return Reference({**self.description, "n": n, "subset": subset},
                         Subset(self.dataset, sorted(order.tolist())))

    def batches(self, batch_size: int, workers: int) -> Iterator[torch.Tensor]:
        loader = DataLoader(self.dataset, batch_size=batch_size, num_workers=workers)
        try:
            yield from loader
        except RuntimeError as err:
            if "stack expects each tensor to be equal size" in str(err):
                raise MetricsError(f"reference {self.description.get('path', '')}: images differ "
                                   "in size; pass --reference-size S to center-crop them to S x S"
                                   ) from None
            raise


def reference_from_data(data_cfg: dict, split: str) -> Reference:
    """A DATA section's images (the given split, random flips and crops off) as the reference."""
    from common import data
    from common.data.registry import spec_from_config
    cfg = config_lib.to_plain(data_cfg)
    if split:
        cfg["SPLIT"] = split
    cfg["OPTIONS"] = dict(spec_from_config(cfg, "reference DATA").options)  # with kind defaults
    for switch in ("FLIP", "AUGMENT"):  # the reference is the data, not its augmentation
        if switch in cfg["OPTIONS"]:
            cfg["OPTIONS"][switch] = False
    if cfg.get("ROOT"):
        cfg["ROOT"] = str(Path(cfg["ROOT"]).expanduser().resolve())
    dataset = data.build(cfg, "reference DATA")
    return Reference({"kind": "data", "data": without_cache_sizes(cfg), "split": cfg.get("SPLIT")},
                     Uint8Images(dataset))


def without_cache_sizes(cfg: dict) -> dict:
    """The config without its CACHE_MB entries: a cache changes speed, never the pixels, so it
    must not change a reference's key (and force its statistics to be computed again)."""
    return {k: without_cache_sizes(v) if isinstance(v, dict) else v
            for k, v in cfg.items() if k != "CACHE_MB"}


def listing_sha256(folder: Path, paths: list[Path]) -> str:
    """A folder's identity for records and cache keys: names, sizes and mtimes of its files."""
    listing = hashlib.sha256()
    for p in paths:
        st = p.stat()
        listing.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return listing.hexdigest()


def reference_from_folder(folder: str | Path, size: int = 0) -> Reference:
    """All images below `folder` (center-cropped to size x size when size > 0)."""
    from common.data.folders import scan_folder
    folder = Path(folder).expanduser().resolve()
    paths, _, _ = scan_folder(folder)
    return Reference({"kind": "folder", "path": str(folder), "files": len(paths),
                      "listing_sha256": listing_sha256(folder, paths),
                      "resize": f"center crop to {size}" if size else "none"},
                     FolderImages(paths, size))


def reference_for(trainer, spec: str, split: str, size: int = 0,
                  features: str | None = None) -> Reference:
    """The reference named by `spec`: 'data' (the model's own data; without a model, the data
    of the feature network `features`), a folder, or a YAML file holding a DATA section."""
    if spec and spec != "data":
        path = Path(spec).expanduser()
        if path.is_dir():
            return reference_from_folder(path, size)
        if path.is_file() and path.suffix in (".yml", ".yaml"):
            loaded = config_lib.read_yaml(path, "reference file") or {}
            section = loaded.get("DATA", loaded) if isinstance(loaded, dict) else None
            if not isinstance(section, dict) or "KIND" not in section:
                raise MetricsError(f"{path}: expected a DATA section (KIND, ROOT, SPLIT, ...)")
            return reference_from_data(section, split)
        raise MetricsError(f"{spec}: reference must be 'data', a folder of images or a YAML file "
                           "with a DATA section")
    if trainer is None:
        if not features:
            raise MetricsError("images scored without a model need a reference: pass --reference "
                               "DIR (real images) or a YAML file with a DATA section, or "
                               "--features RUN to compare with the feature network's own data")
        from common.metrics import project_features
        return reference_from_data(project_features.reference_data(features), split)
    eval_reference = models.spec(trainer.name).eval_reference
    if eval_reference is not None:
        dataset = eval_reference(trainer, split)
        plain = {k: v for k, v in without_cache_sizes(config_lib.to_plain(trainer.cfg)).items()
                 if k not in ("RUN", "EVAL")}
        return Reference({"kind": "model", "model": trainer.name, "split": split, "config": plain},
                         Uint8Images(dataset))
    data_cfg = trainer.cfg.get("DATA")
    if not isinstance(data_cfg, dict) or "KIND" not in data_cfg:
        raise MetricsError(f"model {trainer.name} has no DATA section and no eval_reference hook; "
                           "pass --reference DIR (a folder of real images) or a YAML file with "
                           "a DATA section")
    return reference_from_data(data_cfg, split)
