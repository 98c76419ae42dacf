"""The text-image training data of both versions, over the shared layer common/data/text.py.

Both configs carry the same DATASET keys (where the pictures are, the CUB crop, missing images,
the decode cache) and EMBEDDING_TYPE; `training_pairs` builds a split from them and checks it
against TEXT.DIMENSION. What differs between the versions is passed in: the resize rule
(v1 square, v2 shorter side), the wrong pictures and how many captions are averaged.
"""
from __future__ import annotations

from common.data.text import BBOX_RULES, TextImageDataset, build_text_dataset
from common.data.text_files import EMBEDDING_FILES
from common.errors import ConfigError
from common.logging import log

CHOICES = {
    "EMBEDDING_TYPE": tuple(EMBEDDING_FILES),
    "DATASET.BBOX_CROP": tuple(BBOX_RULES),
    "DATASET.MISSING_IMAGES": ("error", "skip"),
}


def training_pairs(cfg, split: str, sizes: list[int], *, resize: str, wrong: str,
                   num_embedding: int = 1) -> TextImageDataset:
    """Caption-image pairs of <DATA_DIR>/<split> at `sizes`, randomly cropped and flipped; the
    CUB bbox crop by DATASET.BBOX_CROP (auto: when DATA_DIR contains 'birds', the original
    rule). Errors name the key: DATA_DIR empty, embeddings not of TEXT.DIMENSION."""
    if not cfg.DATA_DIR:
        raise ConfigError("DATA_DIR is empty; set it to the StackGAN data directory "
                          "(<DATA_DIR>/train/filenames.pickle, the embedding pickle, images)",
                          "DATA_DIR")
    d = cfg.DATASET
    dataset = build_text_dataset(
        cfg.DATA_DIR, split, sizes, cfg.EMBEDDING_TYPE, bbox_crop=BBOX_RULES[d.BBOX_CROP],
        image_dir=d.IMAGE_DIR or None, cub_dir=d.CUB_DIR or None, resize=resize, augment=True,
        wrong=wrong, num_embedding=num_embedding, missing_images=d.MISSING_IMAGES,
        cache_mb=d.CACHE_MB)
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
