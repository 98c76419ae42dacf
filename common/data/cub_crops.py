"""CUB-200-2011 birds as square crops around their bounding boxes.

LR-GAN trained on a "processed" CUB folder of already-square bird images (its link is dead and
the crop was never described). This kind re-creates such a folder on the fly from the official
release: a square of side OPTIONS.CROP_SCALE x the box's longer side, centred on the box, moved
(and if need be shrunk) to stay inside the photo, then resized to DATA.IMAGE_SIZE. 1.5 is the
margin StackGAN used for the same birds.

DATA.ROOT is the CUB_200_2011 folder (images/, images.txt, bounding_boxes.txt,
train_test_split.txt) or its parent. DATA.SPLIT: all | train | test (the official split).
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from common.data.imageio import load_image
from common.data.registry import DataSpec, option_error, register
from common.data.textio import read_text
from common.data.transforms import maybe_flip, to_tensor
from common.errors import DataError
from common.logging import warn

SPLITS = ("all", "train", "test")


def read_table(path: Path, columns: int) -> dict[int, list[str]]:
    """{image id: the other fields} of a whitespace-separated CUB metadata file."""
    if not path.is_file():
        raise DataError(f"{path}: CUB metadata file not found")
    table = {}
    for number, line in enumerate(read_text(path, "CUB metadata file").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns or not fields[0].isdigit():
            raise DataError(f"{path}:{number}: expected {columns} fields starting with an image "
                            f"id, got {line!r}")
        table[int(fields[0])] = fields[1:]
    return table


def square_box(box: tuple[float, float, float, float], width: int, height: int,
               margin: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a square around box (x, y, w, h), inside the photo."""
    x, y, w, h = box
    side = min(max(w, h) * margin, width, height)
    cx, cy = x + w / 2, y + h / 2
    left = min(max(cx - side / 2, 0), width - side)
    top = min(max(cy - side / 2, 0), height - side)
    return round(left), round(top), round(left + side), round(top + side)


class CUBCrops(Dataset):
    def __init__(self, paths: list[Path], boxes: list[tuple], labels: list[int], size: int,
                 channels: int, margin: float, flip: bool):
        self.paths, self.boxes, self.labels = paths, boxes, labels
        self.size, self.channels, self.margin, self.flip = size, channels, margin, flip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        img = load_image(self.paths[index], self.channels)
        img = img.crop(square_box(self.boxes[index], img.width, img.height, self.margin))
        img = img.resize((self.size, self.size), Image.BICUBIC)
        return {"image": maybe_flip(to_tensor(img), self.flip),
                "label": torch.tensor(self.labels[index], dtype=torch.long)}


def check_crop_options(options: dict) -> None:
    if options["CROP_SCALE"] <= 0:
        raise option_error("CROP_SCALE", "positive", options["CROP_SCALE"])


@register("cub_crops", {"CROP_SCALE": 1.5, "FLIP": False, "ALLOW_MISSING": False},
          check=check_crop_options)
def build_cub_crops(spec: DataSpec) -> Dataset:
    """CUB-200-2011 bird crops (bounding box x CROP_SCALE, square); DATA.ROOT: CUB_200_2011."""
    root = Path(spec.root).expanduser()
    if not (root / "images.txt").is_file() and (root / "CUB_200_2011" / "images.txt").is_file():
        root = root / "CUB_200_2011"
    if spec.split not in SPLITS:
        raise DataError(f"DATA.SPLIT is {spec.split!r}; CUB has the splits {', '.join(SPLITS)}")
    names = read_table(root / "images.txt", 2)
    boxes = read_table(root / "bounding_boxes.txt", 5)
    ids = sorted(names)
    if spec.split != "all":
        split = read_table(root / "train_test_split.txt", 2)
        wanted = "1" if spec.split == "train" else "0"
        ids = [i for i in ids if split.get(i, [None])[0] == wanted]
    missing_box = [i for i in ids if i not in boxes]
    if missing_box:
        raise DataError(f"{root / 'bounding_boxes.txt'}: no box for image id {missing_box[0]} "
                        f"({len(missing_box)} ids without a box)")
    paths = {i: root / "images" / names[i][0] for i in ids}
    absent = [i for i in ids if not paths[i].is_file()]
    if absent and not spec.options["ALLOW_MISSING"]:
        raise DataError(f"{root / 'images'}: {len(absent)} of {len(ids)} listed images are "
                        f"missing, first {paths[absent[0]]} (set DATA.OPTIONS.ALLOW_MISSING: "
                        "true to train on the images present)")
    if absent:
        warn(f"{root / 'images'}: training on the {len(ids) - len(absent)} of {len(ids)} listed "
             "CUB images that exist (DATA.OPTIONS.ALLOW_MISSING)")
    ids = [i for i in ids if paths[i].is_file()]
    if not ids:
        raise DataError(f"{root / 'images'}: none of the listed CUB images exist")
    labels = [int(names[i][0].split(".", 1)[0]) - 1 if names[i][0][:3].isdigit() else -1
              for i in ids]
    return CUBCrops([paths[i] for i in ids], [tuple(map(float, boxes[i])) for i in ids], labels,
                    spec.image_size, spec.channels, spec.options["CROP_SCALE"],
                    spec.options["FLIP"])
