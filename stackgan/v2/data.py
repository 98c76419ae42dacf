"""StackGAN++ training data: the v2 multi-size crop, unconditional image folders, text pairs.

The v2 transform (docs/stackgan_v2.md, "Data"): resize the shorter side to int(S * 76 / 64)
(S = the largest branch size, aspect kept, bilinear), random S x S crop, random horizontal flip,
then bilinear downscales of that same crop to every smaller branch size. Items carry "images"
(smallest first) and "image" (the largest, which the common loop shows in samples/reals.png).
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from common import data
from common.data.folders import scan_folder
from common.data.imageio import load_image
from common.data.registry import DataSpec, option_error, register
from common.data.transforms import to_tensor
from common.errors import DataError
from stackgan import text_data


def branch_sizes(base_size: int, branches: int) -> list[int]:
    return [base_size * 2 ** i for i in range(branches)]


def multi_size_crop(img: Image.Image, sizes: list[int], flip: bool = True) -> list[torch.Tensor]:
    """The v2 transform of one PIL image -> tensors in [-1, 1], one per size (ascending).

    Random draws use the torch RNG, which the common loader seeds per item.
    """
    final = sizes[-1]
    load = int(final * 76 / 64)
    w, h = img.size
    if w <= h:
        new_size = (load, int(load * h / w))
    else:
        new_size = (int(load * w / h), load)
    img = img.resize(new_size, Image.BILINEAR)
    w, h = img.size
    top = int(torch.randint(0, h - final + 1, ()))
    left = int(torch.randint(0, w - final + 1, ()))
    img = img.crop((left, top, left + final, top + final))
    if flip and torch.rand(()) < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return [to_tensor(img if s == final else img.resize((s, s), Image.BILINEAR)) for s in sizes]


class MultiSizeImageFolder(Dataset):
    """Every image below a folder (recursively), v2-transformed to all branch sizes."""

    def __init__(self, root: str | Path, sizes: list[int]):
        self.root = Path(root).expanduser()
        self.paths, _, _ = scan_folder(self.root)
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        images = multi_size_crop(load_image(path, 3), self.sizes)
        return {"images": images, "image": images[-1]}


def check_sizes(options: dict) -> None:
    sizes = options["SIZES"]
    if not all(isinstance(s, int) and s > 0 for s in sizes) or sizes != sorted(set(sizes)):
        raise option_error("SIZES", "ascending distinct positive sizes (empty: DATA.IMAGE_SIZE)",
                           sizes)


@register("multi_size_folder", {"SIZES": []}, check=check_sizes)
def build_multi_size_folder(spec: DataSpec) -> Dataset:
    """Every image below DATA.ROOT, v2-cropped to OPTIONS.SIZES (unconditional StackGAN++)."""
    return MultiSizeImageFolder(spec.root, list(spec.options["SIZES"]) or [spec.image_size])


def image_folder_root(data_dir: str, dataset_name: str, split: str = "train") -> Path:
    """Where the unconditional images are: <DATA_DIR>/<DATASET_NAME>_<split> if that folder
    exists (the name an LSUN export mirrors: bedroom_train_lmdb -> bedroom_train), else
    DATA_DIR itself."""
    base = Path(data_dir).expanduser()
    named = base / f"{dataset_name}_{split}"
    if named.is_dir():
        return named
    if base.is_dir():
        return base
    raise DataError(f"DATA_DIR {data_dir!r}: folder not found (unconditional StackGAN++ reads "
                    f"images from {named} or from DATA_DIR itself)")


def training_set(cfg, sizes: list[int]) -> Dataset:
    """The training data a config names: caption-image pairs of <DATA_DIR>/train (B_CONDITION),
    else the unconditional image folder."""
    if cfg.GAN.B_CONDITION:
        return text_set(cfg, "train", sizes)
    root = image_folder_root(cfg.DATA_DIR, cfg.DATASET_NAME)
    return data.build(data.defaults("multi_size_folder", max(sizes), 3, str(root), "train",
                                    {"SIZES": list(sizes)}), source=None)


def text_set(cfg, split: str, sizes: list[int]) -> Dataset:
    """v2 text data (stackgan/text_data.py): shorter-side resize, random crop and flip, a wrong
    image resampled once on a class collision, one random caption per load."""
    return text_data.training_pairs(cfg, split, sizes, resize="shorter", wrong="resample")
