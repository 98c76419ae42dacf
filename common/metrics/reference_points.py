"""Reference points of a feature network's protocol, measured on real data: the floor (two
disjoint sets of real images), uniform noise, and Gaussian-blurred real images. They say what a
number of that protocol means (docs/metrics.md; benchmarks/metric_floors.py writes them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from common import data
from common.metrics import image_sets
from common.metrics.samples import Reference, Uint8Images

BLUR_SIGMAS = (0.5, 1.0, 2.0)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (sigma in pixels, edges replicated) of uint8 (N, C, H, W); 0 = unchanged."""
    if sigma == 0:
        return images
    radius = int(np.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    t = torch.from_numpy(images).float()
    n, c, h, w = t.shape
    t = F.pad(t.reshape(n * c, 1, h, w), (radius,) * 4, mode="replicate")
    t = F.conv2d(F.conv2d(t, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return t.reshape(n, c, h, w).round().clamp(0, 255).to(torch.uint8).numpy()


def uint8_array(dataset, channels: int) -> np.ndarray:
    """All items of a common.data dataset as uint8 (N, channels, H, W)."""
    from torch.utils.data import DataLoader
    parts = [b for b in DataLoader(Uint8Images(dataset), batch_size=500)]
    return torch.cat(parts)[:, :channels].numpy()


def noise(shape: tuple, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _section(kind: str, root: Path, split: str, size: int, channels: int, **options) -> dict:
    return {"KIND": kind, "ROOT": str(root), "SPLIT": split, "IMAGE_SIZE": size,
            "CHANNELS": channels, "OPTIONS": options}


def _halves(section: dict, n: int):
    """Two disjoint interleaved halves of a data set: (uint8 array, reference)."""
    full = data.build(section, "reference points")
    a, b = Subset(full, range(0, len(full), 2)), Subset(full, range(1, len(full), 2))
    a, b = Subset(a, range(min(n, len(a)))), Subset(b, range(min(n, len(b))))
    ref = Reference({"kind": "data", "data": section, "subset": "odd indices"}, Uint8Images(b))
    return uint8_array(a, section["CHANNELS"]), ref, "even indices"


def cases(tag: str, root: Path, n: int) -> list[tuple[str, np.ndarray, Reference]]:
    """(name, images, reference) per reference point of a tag's protocol; root: shared data."""
    out = []
    if tag == "mnist":
        sets = [("MNIST", _section("mnist", root / "mnist", "test", 32, 1, RESIZE="pad"),
                 _section("mnist", root / "mnist", "train", 32, 1, RESIZE="pad")),
                ("MNIST-ONE", _section("mnist_one", root / "mnist", "test", 32, 1),
                 _section("mnist_one", root / "mnist", "train", 32, 1))]
        for name, test, train in sets:
            real = uint8_array(Subset(data.build(test), range(n)), 1)
            ref = Reference({"kind": "data", "data": train}, Uint8Images(data.build(train)))
            out += _points(f"{name} test", f"{name} train", real, ref)
        return out
    if tag == "cifar10":
        real, ref, name = _halves(_section("cifar10", root / "cifar10" / "test_jpg", "test",
                                           32, 3), n)
        return _points(f"CIFAR-10 test JPEGs ({name})", "the other half", real, ref)
    if tag == "celeba64":
        real, ref, name = _halves(_section("celeba", root / "celeba", "train", 64, 3,
                                           IMAGES="img_align_celeba_89x109", MISSING="skip",
                                           FLIP=False), n)
        return _points(f"CelebA faces ({name})", "the other half", real, ref)
    raise ValueError(f"no reference points for tag {tag!r}")


def _points(real_name: str, ref_name: str, real: np.ndarray, ref: Reference) -> list:
    points = [(f"{real_name} against {ref_name} (the floor)", real, ref)]
    points += [(f"{real_name} blurred, sigma {s:g} px", blur(real, s), ref) for s in BLUR_SIGMAS]
    points.append((f"uniform noise against {ref_name}", noise(real.shape), ref))
    return points


def as_set(name: str, images: np.ndarray) -> image_sets.ImageSet:
    return image_sets.from_array(images, {"path": name})
