"""Text-image pairs in the StackGAN formats (CUB birds, COCO, Oxford flowers), for v1 and v2.

    dataset = build_text_dataset(data_dir, split="train", sizes=[64], embedding_type="cnn-rnn",
                                 bbox_crop=None, resize="square", wrong="none")

Item `i` is a dict:
  "images"        list of float (3, s, s) tensors in [-1, 1], one per size in `sizes`
                  (ascending), all cut from the same random crop and flip of one picture
  "image"         the largest of them (what the common loop shows as real samples)
  "embedding"     (dim,) float32: one caption embedding drawn uniformly at random at every load
                  (or the mean of `num_embedding` distinct captions, the TF rule)
  "key"           the image key (filenames.pickle entry), "class_id" int64 tensor
  "wrong_images"  only when `wrong` is not "none": the same list for a mismatched picture
  "embeddings"    only when `all_embeddings`: (captions, dim), every caption of the image

Pictures: `<image_dir>/<key>.jpg`. With the CUB crop (`bbox_crop`; default: on when the data
directory's path contains "birds", the original rule) the picture is first cut to the square of
side 1.5 * max(w, h) around its bounding box. It is then resized to `int(max(sizes) * 76 / 64)`
(76 or 304): `resize="square"` ignores the aspect ratio (StackGAN v1), `"shorter"` scales the
shorter side (v2); then a random max(sizes) crop and a random horizontal flip (`augment`; else a
centre crop, no flip). Smaller sizes are bilinear downscales of that crop.

Wrong images: "none" (v1-pt pairs images with the next row's text inside the batch instead),
"resample" (v2: a random other index, drawn once more if it has the same class), "shift" (v1-tf:
a random index; on a class collision it moves by a random offset in [100, 200)).

Decoding the JPEG and the bbox crop and resize cost milliseconds per picture, more than a small
GPU step: `cache_pictures(max_mb)` does them once for every picture (threads, at start-up) and
keeps the results as uint8 in one buffer that DataLoader workers share; later loads do only the
random crop, flip and downscales, with the same pixels as without the cache.

Images listed in filenames.pickle but absent on disk are an error naming the first one;
`missing_images="skip"` keeps the images that exist (e.g. the 543-image CUB subset of the
shared data) and says how many were dropped.
"""
from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from common.data.imageio import load_image
from common.data.registry import DataSpec, one_of, option_error, register
from common.data.text_files import (EMBEDDING_FILES, TextSplit, crop_box, load_bboxes,
                                     load_captions, load_split)
from common.data.transforms import to_tensor
from common.errors import DataError
from common.logging import log

RESIZE_MODES = ("square", "shorter")
WRONG_MODES = ("none", "resample", "shift")
LOAD_RATIO = 76 / 64      # load size / crop size of both StackGAN versions


def default_cub_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "CUB_200_2011"


def default_image_dir(data_dir: str | Path, bbox_crop: bool, cub_dir: str | Path | None) -> Path:
    """Birds read `<CUB dir>/images`; COCO and flowers read `<DATA_DIR>/images`."""
    if bbox_crop:
        return Path(cub_dir or default_cub_dir(data_dir)) / "images"
    return Path(data_dir) / "images"


class TextImageDataset(Dataset):
    """Images of one split with their caption embeddings (see the module docstring)."""

    def __init__(self, split: TextSplit, image_dir: Path, sizes: Sequence[int],
                 bboxes: dict | None = None, resize: str = "square", augment: bool = True,
                 wrong: str = "none", num_embedding: int = 1, all_embeddings: bool = False,
                 missing_images: str = "error", text_dir: Path | None = None):
        sizes = [int(s) for s in sizes]
        if not sizes or any(s <= 0 for s in sizes) or sizes != sorted(set(sizes)):
            raise DataError(f"image sizes {sizes} must be positive and strictly ascending")
        if resize not in RESIZE_MODES:
            raise DataError(f"resize rule {resize!r} unknown; expected one of {RESIZE_MODES}")
        if wrong not in WRONG_MODES:
            raise DataError(f"wrong-image rule {wrong!r} unknown; expected one of {WRONG_MODES}")
        if num_embedding < 1:
            raise DataError(f"num_embedding must be at least 1, got {num_embedding}")
        self.split, self.image_dir, self.sizes = split, Path(image_dir), sizes
        self.bboxes, self.resize, self.augment = bboxes, resize, augment
        self.wrong, self.num_embedding, self.all_embeddings = wrong, num_embedding, all_embeddings
        self.text_dir = text_dir
        self.load_size = int(sizes[-1] * LOAD_RATIO)
        self.indices = self._present_indices(missing_images)
        self.skipped = len(split) - len(self.indices)
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ---- which images exist ---------------------------------------------------------------
    def _present_indices(self, missing_images: str) -> list[int]:
        if missing_images not in ("error", "skip"):
            raise DataError(f"missing_images must be 'error' or 'skip', got {missing_images!r}")
        if not self.image_dir.is_dir():
            raise DataError(f"{self.image_dir}: image folder not found (expected "
                            f"<key>.jpg files for the keys of {self.split.split_dir})")
        present = [i for i, key in enumerate(self.split.filenames)
                   if self.image_path_of(key).is_file()]
        missing = len(self.split) - len(present)
        if missing and missing_images == "error":
            first = next(k for i, k in enumerate(self.split.filenames)
                         if not self.image_path_of(k).is_file())
            raise DataError(f"{self.image_dir}: {missing} of {len(self.split)} images listed in "
                            f"{self.split.split_dir / 'filenames.pickle'} are missing (first: "
                            f"{self.image_path_of(first)}); to train on the {len(present)} "
                            "present, set missing_images='skip' (StackGAN: "
                            "DATASET.MISSING_IMAGES: skip)")
        if not present:
            raise DataError(f"{self.image_dir}: none of the {len(self.split)} images of "
                            f"{self.split.split_dir} exist")
        if self.bboxes is not None:
            lost = [self.split.filenames[i] for i in present
                    if self.split.filenames[i] not in self.bboxes]
            if lost:
                raise DataError(f"no CUB bounding box for {len(lost)} image(s), first {lost[0]!r} "
                                "(images.txt must list every key of filenames.pickle)")
        return present

    def image_path_of(self, key: str) -> Path:
        return self.image_dir / f"{key}.jpg"

    # ---- public views ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    @property
    def keys(self) -> list[str]:
        return [self.split.filenames[i] for i in self.indices]

    @property
    def class_ids(self) -> np.ndarray:
        return self.split.class_ids[self.indices]

    @property
    def embeddings(self) -> np.ndarray:
        """(len, captions, dim) embeddings of the images this dataset serves."""
        return self.split.embeddings[self.indices]

    def captions(self, index: int) -> list[str]:
        """The caption text of item `index` (read from `text_dir`/<key>.txt on demand)."""
        if self.text_dir is None:
            raise DataError("no caption text folder was given (text_dir)")
        return load_captions(self.text_dir / f"{self.split.filenames[self.indices[index]]}.txt")

    # ---- loading --------------------------------------------------------------------------
    def picture(self, index: int) -> Image.Image:
        """Item `index`'s picture before the random crop: decoded, bbox-cropped, resized."""
        if self._cache is not None:
            buffer, offsets, shapes = self._cache
            shape = tuple(shapes[index])
            return Image.fromarray(buffer[offsets[index]:offsets[index + 1]].reshape(shape))
        key = self.split.filenames[self.indices[index]]
        img = load_image(self.image_path_of(key), channels=3)
        if self.bboxes is not None:
            img = img.crop(crop_box(self.bboxes[key], *img.size))
        return self._resize_for_crop(img)

    def cache_pictures(self, max_mb: float, threads: int | None = None) -> bool:
        """Decode every picture once and keep it (see the module docstring). Skipped, returning
        False, when the pictures would take more than `max_mb` MB (estimated from the load
        size, a 4:3 aspect for the shorter-side rule)."""
        aspect = 1.0 if self.resize == "square" else 4 / 3
        estimate = len(self) * self.load_size ** 2 * 3 * aspect / 2 ** 20
        if max_mb <= 0 or estimate > max_mb:
            return False
        threads = threads or min(16, os.cpu_count() or 1)
        with ThreadPoolExecutor(threads) as pool:   # PIL decodes and resizes without the GIL
            arrays = list(pool.map(lambda i: np.asarray(self.picture(i)), range(len(self))))
        sizes = np.array([a.size for a in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        buffer = np.empty(int(offsets[-1]), dtype=np.uint8)
        for a, start in zip(arrays, offsets[:-1]):
            buffer[start:start + a.size] = a.reshape(-1)
        self._cache = buffer, offsets, np.array([a.shape for a in arrays], dtype=np.int64)
        return True

    @property
    def cached_mb(self) -> float:
        return 0.0 if self._cache is None else self._cache[0].nbytes / 2 ** 20

    def load_images(self, index: int) -> list[torch.Tensor]:
        """The picture of item `index` at every size, with this load's random crop and flip."""
        img = self.picture(index)
        size = self.sizes[-1]
        width, height = img.size
        if self.augment:
            left, top = random.randint(0, width - size), random.randint(0, height - size)
        else:
            left, top = int(round((width - size) / 2)), int(round((height - size) / 2))
        img = img.crop((left, top, left + size, top + size))
        if self.augment and random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        smaller = [to_tensor(img.resize((s, s), Image.BILINEAR)) for s in self.sizes[:-1]]
        return smaller + [to_tensor(img)]

    def _resize_for_crop(self, img: Image.Image) -> Image.Image:
        n = self.load_size
        if self.resize == "square":
            return img.resize((n, n), Image.BILINEAR)
        width, height = img.size
        if width <= height:
            target = (n, int(n * height / width))
        else:
            target = (int(n * width / height), n)
        return img if target == img.size else img.resize(target, Image.BILINEAR)

    def pick_embedding(self, index: int) -> torch.Tensor:
        """One random caption's embedding (or the mean of `num_embedding` distinct ones)."""
        all_captions = self.split.embeddings[self.indices[index]]
        count = all_captions.shape[0]
        if self.num_embedding == 1:
            return torch.from_numpy(all_captions[random.randint(0, count - 1)].copy())
        chosen = np.random.choice(count, min(self.num_embedding, count), replace=False)
        return torch.from_numpy(all_captions[chosen].mean(axis=0))

    def wrong_index(self, index: int) -> int:
        classes, n = self.split.class_ids, len(self.indices)
        mine = classes[self.indices[index]]
        other = random.randint(0, n - 1)
        if classes[self.indices[other]] == mine:
            if self.wrong == "resample":
                other = random.randint(0, n - 1)
            else:
                other = (other + random.randint(100, 199)) % n
        return other

    def __getitem__(self, index: int) -> dict:
        images = self.load_images(index)
        position = self.indices[index]
        item = {"images": images, "image": images[-1], "embedding": self.pick_embedding(index),
                "key": self.split.filenames[position],
                "class_id": torch.tensor(int(self.split.class_ids[position]))}
        if self.wrong != "none":
            item["wrong_images"] = self.load_images(self.wrong_index(index))
        if self.all_embeddings:
            item["embeddings"] = torch.from_numpy(self.split.embeddings[position].copy())
        return item


def build_text_dataset(data_dir: str | Path, split: str = "train", sizes: Sequence[int] = (64,),
                       embedding_type: str = "cnn-rnn", bbox_crop: bool | None = None,
                       image_dir: str | Path | None = None, cub_dir: str | Path | None = None,
                       resize: str = "square", augment: bool = True, wrong: str = "none",
                       num_embedding: int = 1, all_embeddings: bool = False,
                       missing_images: str = "error",
                       text_dir: str | Path | None = None, cache_mb: float = 0) -> TextImageDataset:
    """The dataset of `<data_dir>/<split>` (see the module docstring for every argument); with
    `cache_mb` > 0 its pictures are decoded once if they fit in that many MB."""
    data_dir = Path(data_dir).expanduser()
    if bbox_crop is None:
        bbox_crop = "birds" in str(data_dir)
    cub_dir = Path(cub_dir).expanduser() if cub_dir else default_cub_dir(data_dir)
    image_dir = Path(image_dir).expanduser() if image_dir else \
        default_image_dir(data_dir, bbox_crop, cub_dir)
    if text_dir is None:    # v2 layout text/, Reed et al.'s download text_c10/
        text_dir = next((data_dir / n for n in ("text", "text_c10") if (data_dir / n).is_dir()),
                        None)
    split_data = load_split(data_dir, split, embedding_type)
    bboxes = load_bboxes(cub_dir) if bbox_crop else None
    dataset = TextImageDataset(split_data, image_dir, sizes, bboxes, resize, augment, wrong,
                               num_embedding, all_embeddings, missing_images,
                               Path(text_dir) if text_dir else None)
    if cache_mb > 0:
        if dataset.cache_pictures(cache_mb):
            log(f"{split_data.split_dir}: {len(dataset)} pictures decoded once and kept in memory "
                f"({dataset.cached_mb:.0f} MB)")
        else:
            log(f"{split_data.split_dir}: pictures read from disk at every load (they would take "
                f"more than the cache's {cache_mb:g} MB)")
    return dataset


BBOX_RULES = {"auto": None, "always": True, "never": False}   # words YAML keeps as text


def check_text_options(o: dict) -> None:
    one_of(o, "EMBEDDING_TYPE", tuple(EMBEDDING_FILES))
    one_of(o, "RESIZE", RESIZE_MODES)
    one_of(o, "BBOX_CROP", tuple(BBOX_RULES))
    one_of(o, "WRONG", WRONG_MODES)
    one_of(o, "MISSING_IMAGES", ("error", "skip"))
    sizes = o["SIZES"]
    if not all(isinstance(s, int) and s > 0 for s in sizes) or sizes != sorted(set(sizes)):
        raise option_error("SIZES", "ascending distinct positive sizes (empty: DATA.IMAGE_SIZE)",
                           o["SIZES"])
    if o["NUM_EMBEDDING"] < 1:
        raise option_error("NUM_EMBEDDING", ">= 1", o["NUM_EMBEDDING"])
    if o["CACHE_MB"] < 0:
        raise option_error("CACHE_MB", ">= 0 (0: no cache)", o["CACHE_MB"])


@register("stackgan_text", {"EMBEDDING_TYPE": "cnn-rnn", "SIZES": [], "RESIZE": "square",
                            "AUGMENT": True, "BBOX_CROP": "auto", "IMAGE_DIR": "",
                            "CUB_DIR": "", "WRONG": "none", "NUM_EMBEDDING": 1,
                            "ALL_EMBEDDINGS": False, "MISSING_IMAGES": "error",
                            "TEXT_DIR": "", "CACHE_MB": 0.0}, check=check_text_options)
def build_stackgan_text(spec: DataSpec) -> Dataset:
    """DATA.ROOT is a StackGAN data directory (<ROOT>/<SPLIT>/filenames.pickle, embeddings)."""
    o = spec.options
    return build_text_dataset(spec.root, spec.split, list(o["SIZES"]) or [spec.image_size],
                              o["EMBEDDING_TYPE"], BBOX_RULES[o["BBOX_CROP"]],
                              o["IMAGE_DIR"] or None, o["CUB_DIR"] or None, o["RESIZE"],
                              o["AUGMENT"], o["WRONG"], o["NUM_EMBEDDING"], o["ALL_EMBEDDINGS"],
                              o["MISSING_IMAGES"], o["TEXT_DIR"] or None, o["CACHE_MB"])
