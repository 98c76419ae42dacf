"""CIFAR-10: torchvision's python batches, or a folder with one sub-folder of images per class."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from common.data.folders import ImageFiles, scan_folder
from common.data.registry import DataSpec, register
from common.data.transforms import fit, maybe_flip, to_tensor
from common.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def load_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and (N,) labels from cifar-10-batches-py."""
    images, labels = [], []
    for name in BATCHES[split]:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: CIFAR-10 batch file not found")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
            raise DataError(f"{path}: not a CIFAR-10 python batch ({err})") from None
        images.append(data.transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


class CIFAR10Arrays(Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, size: int, channels: int,
                 flip: bool):
        self.images, self.labels = images, labels
        self.size, self.channels, self.flip = size, channels, flip
        self.uses_rng = flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        img = Image.fromarray(self.images[index])
        if self.channels == 1:
            img = img.convert("L")
        if self.size != 32:
            img = fit(img, self.size, "resize")
        return {"image": maybe_flip(to_tensor(img), self.flip),
                "label": torch.tensor(self.labels[index], dtype=torch.long)}


@register("cifar10", {"FLIP": False})
def build_cifar10(spec: DataSpec) -> Dataset:
    """DATA.ROOT holds cifar-10-batches-py (torchvision layout) or class folders of images.

    For class folders, ROOT may contain train/ and test/ (chosen by DATA.SPLIT) or be the split.
    """
    if spec.split not in BATCHES:
        raise DataError(f"DATA.SPLIT is {spec.split!r}; CIFAR-10 has the splits train and test")
    root = Path(spec.root).expanduser()
    if spec.download:
        from torchvision.datasets import CIFAR10  # only when the config asks for a download
        CIFAR10(str(root), train=spec.split == "train", download=True)
    for folder in (root / "cifar-10-batches-py", root):
        if (folder / BATCHES[spec.split][0]).is_file():
            images, labels = load_batches(folder, spec.split)
            return CIFAR10Arrays(images, labels, spec.image_size,
                                 spec.channels, spec.options["FLIP"])
    folder = root / spec.split if (root / spec.split).is_dir() else root
    if not folder.is_dir():
        raise DataError(f"{root}: CIFAR-10 not found (expected cifar-10-batches-py/ or a folder "
                        "of class sub-folders); set DATA.DOWNLOAD: true to fetch it")
    paths, labels, classes = scan_folder(folder)
    if classes and sorted(classes) == sorted(CLASSES):
        labels = [CLASSES.index(classes[label]) for label in labels]
    return ImageFiles(paths, labels, spec.image_size, spec.channels, "resize",
                      spec.options["FLIP"], str(folder))
