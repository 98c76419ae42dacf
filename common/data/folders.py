"""Image folders (optionally one sub-folder per class) and list files (one path per line)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from common.data.imageio import is_image_file, load_image
from common.data.registry import DataSpec, one_of, register
from common.data.textio import read_text
from common.data.transforms import CROPS, fit, maybe_flip, short_side_random_crop, to_tensor
from common.errors import DataError

IMAGE_OPTIONS = {"CROP": "center", "FLIP": False}


def check_image_options(options: dict) -> None:
    one_of(options, "CROP", CROPS)


class ImageFiles(Dataset):
    """A list of image paths (and labels), read, cropped and normalised on access."""

    def __init__(self, paths: list[Path], labels: list[int], size: int, channels: int,
                 crop: str = "center", flip: bool = False, source: str = ""):
        if crop not in CROPS:
            raise DataError(f"{source}: crop rule {crop!r} unknown; expected one of {CROPS}")
        self.paths, self.labels = paths, labels
        self.size, self.channels, self.crop, self.flip = size, channels, crop, flip
        self.uses_rng = flip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        img = load_image(path, self.channels)
        try:
            if self.crop == "random":  # RP-GAN's rule works on float pixels (no re-rounding)
                image = short_side_random_crop(to_tensor(img), self.size)
            else:
                image = to_tensor(fit(img, self.size, self.crop))
        except ValueError as err:
            raise DataError(f"{path}: {err}") from None
        return {"image": maybe_flip(image, self.flip),
                "label": torch.tensor(self.labels[index], dtype=torch.long)}


def scan_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """All images below `root`; if its images sit in sub-folders, each sub-folder is a class."""
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    paths: list[Path] = []
    labels: list[int] = []
    if classes and not any(is_image_file(p) for p in root.iterdir() if p.is_file()):
        for label, name in enumerate(classes):
            found = sorted(p for p in (root / name).rglob("*") if is_image_file(p))
            paths += found
            labels += [label] * len(found)
    else:
        classes = []
        paths = sorted(p for p in root.rglob("*") if is_image_file(p))
        labels = [-1] * len(paths)
    if not paths:
        raise DataError(f"{root}: no image files found (expected files ending in .jpg, .png, ...)")
    return paths, labels, classes


def read_list_file(path: Path, base: Path | None = None) -> list[Path]:
    """Image paths from a text file: one per line, '#' comments and blank lines skipped.

    Relative paths are resolved against `base` (default: the list file's folder).
    """
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    base = base or path.parent
    entries = []
    for line in read_text(path, "list file").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(Path(line) if Path(line).is_absolute() else base / line)
    if not entries:
        raise DataError(f"{path}: list file has no image paths (expected one image path per line)")
    missing = [p for p in entries if not p.is_file()]
    if missing:
        raise DataError(f"{path}: {len(missing)} of {len(entries)} listed images do not exist, "
                        f"first {missing[0]}")
    return entries


@register("image_folder", IMAGE_OPTIONS, check=check_image_options)
def build_image_folder(spec: DataSpec) -> Dataset:
    """All images below DATA.ROOT (sub-folders become class labels)."""
    paths, labels, _ = scan_folder(Path(spec.root).expanduser())
    return ImageFiles(paths, labels, spec.image_size, spec.channels, spec.options["CROP"],
                      spec.options["FLIP"], spec.root)


@register("list_file", {**IMAGE_OPTIONS, "BASE_DIR": ""}, check=check_image_options)
def build_list_file(spec: DataSpec) -> Dataset:
    """DATA.ROOT is a text file with one image path per line (relative to OPTIONS.BASE_DIR)."""
    base = Path(spec.options["BASE_DIR"]).expanduser() if spec.options["BASE_DIR"] else None
    paths = read_list_file(Path(spec.root).expanduser(), base)
    return ImageFiles(paths, [-1] * len(paths), spec.image_size, spec.channels,
                      spec.options["CROP"], spec.options["FLIP"], spec.root)
