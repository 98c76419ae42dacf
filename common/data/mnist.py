"""MNIST from its original idx files (gzip or raw), as published or in torchvision's layout."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from common.data.registry import DataSpec, one_of, register
from common.errors import DataError

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (magic 0 0 type ndim, big-endian int32 dims, then the data)."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # not gzip, truncated or corrupt
        raise DataError(f"{path}: not a readable {'gzip' if path.suffix == '.gz' else 'idx'} "
                        f"file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an idx file (bad magic number {raw[:4].hex()!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: idx header says {dims} ({expected} bytes of data) but the file "
                        f"holds {len(raw) - header} bytes (truncated?)")
    return np.frombuffer(raw[header:], dtype=dtype).reshape(dims)


def find_idx(root: Path, stem: str) -> Path:
    """`stem` or `stem.gz` in root, root/raw or root/MNIST/raw (torchvision's layout)."""
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
            if (folder / name).is_file():
                return folder / name
    raise DataError(f"{root}: MNIST file {stem}[.gz] not found (looked in {root}, {root}/raw and "
                    f"{root}/MNIST/raw); set DATA.DOWNLOAD: true to fetch it with torchvision")


def load_mnist(root: str | Path, split: str = "train", download: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 28, 28) uint8 images and (N,) int64 labels of the train or test split."""
    if split not in FILES:
        raise DataError(f"DATA.SPLIT is {split!r}; MNIST has the splits train and test")
    root = Path(root).expanduser()
    if download:
        from torchvision.datasets import MNIST  # only when the config asks for a download
        MNIST(str(root), train=split == "train", download=True)
    images = read_idx(find_idx(root, FILES[split][0]))
    labels = read_idx(find_idx(root, FILES[split][1]))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{root}: MNIST {split} images {images.shape} and labels {labels.shape} "
                        "do not match (expected (N, 28, 28) and (N,))")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


class MNIST(Dataset):
    """Digits in [-1, 1], resized (bilinear) or zero-padded to DATA.IMAGE_SIZE."""

    uses_rng = False

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int, channels: int,
                 resize: str):
        self.images, self.labels = images, labels
        self.size, self.channels, self.resize = size, channels, resize

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        x = self.images[index].float().div(127.5).sub(1.0)[None]
        if x.shape[-1] != self.size:
            if self.resize == "pad":
                p = self.size - x.shape[-1]
                x = F.pad(x, (p // 2, p - p // 2, p // 2, p - p // 2), value=-1.0)
            else:
                x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear",
                                  align_corners=False, antialias=True)[0]
        return {"image": x.expand(self.channels, -1, -1).contiguous(), "label": self.labels[index]}


@register("mnist", {"RESIZE": "pad"}, check=lambda o: one_of(o, "RESIZE", ("pad", "scale")))
def build_mnist(spec: DataSpec) -> Dataset:
    """MNIST idx files in DATA.ROOT; OPTIONS.RESIZE 'pad' (centre in a larger frame) or 'scale'."""
    if spec.options["RESIZE"] == "pad" and spec.image_size < 28:
        raise DataError(f"DATA.IMAGE_SIZE {spec.image_size} is smaller than MNIST's 28 px; "
                        "use OPTIONS.RESIZE: scale")
    images, labels = load_mnist(spec.root, spec.split, spec.download)
    return MNIST(images, labels, spec.image_size, spec.channels, spec.options["RESIZE"])
