"""The text-image training data of both versions, over the shared layer common/data/text.py.

Both configs carry the same DATASET keys (where the pictures are, the CUB crop, missing images,
the decode cache) and EMBEDDING_TYPE; `training_pairs` builds a split from them and checks it
against TEXT.DIMENSION. `data_section` translates these keys, once, into a common DATA section
of kind stackgan_text, so the data is built by `common.data.build` like every model's. What
differs between the versions is passed in: the resize rule (v1 square, v2 shorter side), the
wrong pictures and how many captions are averaged.
"""
from __future__ import annotations

from common import data
from common.data.text import BBOX_RULES, TextImageDataset
from common.data.text_files import EMBEDDING_FILES
from common.errors import ConfigError
from common.logging import log

CHOICES = {
    "EMBEDDING_TYPE": tuple(EMBEDDING_FILES),
    "DATASET.BBOX_CROP": tuple(BBOX_RULES),
    "DATASET.MISSING_IMAGES": ("error", "skip"),
}


def data_section(cfg, split: str, sizes: list[int], *, resize: str, wrong: str,
                 num_embedding: int = 1) -> dict:
    """The common DATA section (kind stackgan_text) that the original-format keys describe: the
    one place where DATA_DIR, EMBEDDING_TYPE and DATASET.* are translated."""
    d = cfg.DATASET
    return data.defaults("stackgan_text", max(sizes), 3, cfg.DATA_DIR, split, {
        "EMBEDDING_TYPE": cfg.EMBEDDING_TYPE, "SIZES": list(sizes), "RESIZE": resize,
        "AUGMENT": True, "BBOX_CROP": d.BBOX_CROP, "IMAGE_DIR": d.IMAGE_DIR,
        "CUB_DIR": d.CUB_DIR, "WRONG": wrong, "NUM_EMBEDDING": num_embedding,
        "MISSING_IMAGES": d.MISSING_IMAGES, "CACHE_MB": float(d.CACHE_MB)})


ORIGINAL_KEYS = {"EMBEDDING_TYPE": "EMBEDDING_TYPE", "BBOX_CROP": "DATASET.BBOX_CROP",
                 "MISSING_IMAGES": "DATASET.MISSING_IMAGES", "CACHE_MB": "DATASET.CACHE_MB",
                 "NUM_EMBEDDING": "TRAIN.NUM_EMBEDDING"}


def check_keys(cfg) -> None:
    """Config-time check of the translated data keys; errors name the original key."""
    section = data_section(cfg, "train", [64], resize="square", wrong="none",
                           num_embedding=cfg.TRAIN.get("NUM_EMBEDDING", 1))
    section["ROOT"] = section["ROOT"] or "DATA_DIR"   # may stay empty until training (dry runs)
    try:
        data.check(section)
    except ConfigError as err:
        original = ORIGINAL_KEYS.get((err.key or "").removeprefix("DATA.OPTIONS."))
        if original is None:
            raise
        message = str(err).replace(err.key, original).split(" (DATA.KIND")[0]
        raise ConfigError(message, original) from None


def training_pairs(cfg, split: str, sizes: list[int], *, resize: str, wrong: str,
                   num_embedding: int = 1) -> TextImageDataset:
    """Caption-image pairs of <DATA_DIR>/<split> at `sizes`, randomly cropped and flipped; the
    CUB bbox crop by DATASET.BBOX_CROP (auto: when DATA_DIR contains 'birds', the original
    rule). Errors name the key: DATA_DIR empty, embeddings not of TEXT.DIMENSION."""
    if not cfg.DATA_DIR:
        raise ConfigError("DATA_DIR is empty; set it to the StackGAN data directory "
                          "(<DATA_DIR>/train/filenames.pickle, the embedding pickle, images)",
                          "DATA_DIR")
    dataset = data.build(data_section(cfg, split, sizes, resize=resize, wrong=wrong,
                                      num_embedding=num_embedding), source=None)
    dim = dataset.split.embeddings.shape[2]
    if dim != cfg.TEXT.DIMENSION:
        raise ConfigError(f"{dataset.split.split_dir}: the caption embeddings have {dim} "
                          f"dimensions but TEXT.DIMENSION is {cfg.TEXT.DIMENSION}",
                          "TEXT.DIMENSION")
    if dataset.skipped:
        log(f"{dataset.split.split_dir}: {dataset.skipped} of {len(dataset.split)} images are "
            f"missing on disk; training on the {len(dataset)} present "
            "(DATASET.MISSING_IMAGES: skip)")
    return dataset
