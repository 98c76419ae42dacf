"""StackGAN v1 images from caption embeddings: TRAIN.FLAG False files, scripts/sample.py and
the metrics hook. Every function takes the trainer whose G draws (stackgan/v1/model.py builds it).

Caption sources (SAMPLE.CAPTIONS, or --captions of sample.py):
  auto        <DATA_DIR>/test/val_captions.t7 when it exists (the original sampler), else test
  test/train  every caption of every image of that split (embedding pickle), image-major;
              names `<key>_sentence<j>`
  a file      .t7 / .pt / .npz caption file (common.data.t7captions); names `<index>`
Each caption gets SAMPLE.NUM_COPY samples with fresh noise; the generator is in eval mode
(BatchNorm running statistics) while the conditioning augmentation still samples, as in the
original.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.data.t7captions import read_caption_file
from common.data.text_files import load_captions, load_split
from common.errors import ConfigError, DataError
from common.images import save_grid, save_png
from common.logging import log
from common.seeds import mix


@dataclass
class Captions:
    names: list[str]           # output file stem per caption
    embeddings: np.ndarray     # (N, dim)
    texts: list[str]           # sentence per caption ('' where unknown)


def split_captions(data_dir: str | Path, split: str, embedding_type: str,
                   text_dir: str | Path | None = None) -> Captions:
    """Every caption of every image of a split, image-major; the sentences are read from
    `text_dir` (<key>.txt) where given and present."""
    data = load_split(data_dir, split, embedding_type)
    n, k, dim = data.embeddings.shape
    names = [f"{key}_sentence{j}" for key in data.filenames for j in range(k)]
    texts = [""] * len(names)
    if text_dir is not None:
        for i, key in enumerate(data.filenames):
            path = Path(text_dir) / f"{key}.txt"
            lines = load_captions(path) if path.is_file() else []
            texts[i * k:i * k + min(k, len(lines))] = lines[:k]
    return Captions(names, data.embeddings.reshape(n * k, dim), texts)


def resolve_captions(cfg, source: str) -> Captions:
    """The captions a source names (see the module docstring)."""
    if source == "auto":
        t7 = Path(cfg.DATA_DIR) / "test" / "val_captions.t7"
        source = str(t7) if cfg.DATA_DIR and t7.is_file() else "test"
    if source in ("test", "train"):
        if not cfg.DATA_DIR:
            raise ConfigError(f"sampling the {source} split needs DATA_DIR", "DATA_DIR")
        captions = split_captions(cfg.DATA_DIR, source, cfg.EMBEDDING_TYPE,
                                  cfg.DATASET.TEXT_DIR or Path(cfg.DATA_DIR) / "text")
    else:
        found = read_caption_file(source)
        captions = Captions([str(i) for i in range(len(found))], found.embeddings, found.texts)
    if captions.embeddings.shape[1] != cfg.TEXT.DIMENSION:
        raise DataError(f"{source}: caption embeddings have {captions.embeddings.shape[1]} "
                        f"dimensions but TEXT.DIMENSION is {cfg.TEXT.DIMENSION}")
    return captions


@torch.no_grad()
def generate_batches(trainer, embeddings: np.ndarray, copies: int, seed: int, batch_size: int):
    """Yield (caption indices, copy, Stage-I images or None, images) for every caption x copy.

    Noise for batch b comes from the seed (seed, b): results do not depend on what ran before.
    """
    net = trainer.sampling_net(False)
    was_training = net.training
    net.eval()
    device, z_dim = trainer.device, trainer.cfg.Z_DIM
    devices = [device] if device.type == "cuda" else []
    count, step = len(embeddings), max(1, min(batch_size, len(embeddings)))
    try:
        b = 0
        for copy in range(copies):
            for start in range(0, count, step):
                index = list(range(start, min(count, start + step)))
                text = torch.from_numpy(np.ascontiguousarray(embeddings[index])).to(device)
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(mix(seed, b))
                    noise = torch.randn(len(index), z_dim, device=device)
                    stage1, images, _, _ = net(text, noise)
                b += 1
                yield index, copy, stage1, images
    finally:
        net.train(was_training)


def eval_samples(trainer, n: int, seed: int = 0, batch_size: int = 64):
    """Batches {"image", "embedding"} for the metrics: every caption of every evaluation-split
    image in order (the v2/TF protocol: 2,933 CUB test images x 10 captions = 29,330), then
    again with new noise while more than that is asked for."""
    captions = split_captions(trainer.cfg.DATA_DIR, "test", trainer.cfg.EMBEDDING_TYPE)
    copies = math.ceil(n / len(captions.names))
    left = n
    for index, _, _, images in generate_batches(trainer, captions.embeddings, copies, seed,
                                                batch_size):
        take = min(left, len(index))
        yield {"image": images[:take],
               "embedding": torch.from_numpy(captions.embeddings[index[:take]]).to(images.device)}
        left -= take
        if left <= 0:
            return


def write_samples(trainer, out: Path) -> None:
    """TRAIN.FLAG: False's files from the trainer's G: one PNG per caption (x NUM_COPY) under
    out/single, grids under out/grids, and out/captions.txt (name, sentence)."""
    cfg = trainer.cfg
    captions = resolve_captions(cfg, cfg.SAMPLE.CAPTIONS)
    if cfg.SAMPLE.MAX_CAPTIONS:
        keep = cfg.SAMPLE.MAX_CAPTIONS
        captions = Captions(captions.names[:keep], captions.embeddings[:keep],
                            captions.texts[:keep])
    copies = cfg.SAMPLE.NUM_COPY
    out.mkdir(parents=True, exist_ok=True)
    (out / "captions.txt").write_text("".join(f"{name}\t{text}\n" for name, text in
                                              zip(captions.names, captions.texts)))
    per_caption: dict[int, list[torch.Tensor]] = {}
    written = 0
    for index, copy, _, images in generate_batches(trainer, captions.embeddings, copies,
                                                   cfg.RUN.SEED, cfg.TRAIN.BATCH_SIZE):
        for i, image in zip(index, images):
            suffix = f"_copy{copy}" if copies > 1 else ""
            save_png(image.cpu(), out / "single" / f"{captions.names[i]}{suffix}.png")
            per_caption.setdefault(i, []).append(image.cpu())
            written += 1
        if cfg.SAMPLE.GRID and copies == 1:
            save_grid(images, out / "grids" / f"grid_{index[0]:06d}.png", 8)
    if cfg.SAMPLE.GRID and copies > 1:    # one row of NUM_COPY samples per caption
        for i, row in per_caption.items():
            save_grid(torch.stack(row), out / "grids" / f"{captions.names[i]}.png", copies)
    log(f"wrote {written} images for {len(captions.names)} captions x {copies} to "
        f"{out / 'single'}" + (f" and grids to {out / 'grids'}" if cfg.SAMPLE.GRID else ""))


def add_sample_args(parser) -> None:
    parser.add_argument("--captions", default="test",
                        help="test | train (split embeddings) | a .t7/.pt/.npz caption file")
    parser.add_argument("--copies", type=int, default=1, help="samples per caption")


def sample(trainer, args) -> dict:
    """`--n` images: the first n / copies captions, `--copies` samples each (one row each)."""
    captions = resolve_captions(trainer.cfg, args.captions)
    copies = max(1, args.copies)
    count = max(1, min(len(captions.names), args.n // copies))
    by_copy: list[list[torch.Tensor]] = [[] for _ in range(copies)]
    stage1_by_copy: list[list[torch.Tensor]] = [[] for _ in range(copies)]
    for _, copy, stage1, images in generate_batches(trainer, captions.embeddings[:count], copies,
                                                    args.seed, trainer.cfg.TRAIN.BATCH_SIZE):
        by_copy[copy].append(images.cpu())
        if stage1 is not None:
            stage1_by_copy[copy].append(stage1.cpu())

    def rows(parts):    # caption-major: caption i's copies side by side
        return torch.stack([torch.cat(p) for p in parts], 1).flatten(0, 1)

    nrow = copies if copies > 1 else args.nrow
    pictures = {"samples": (rows(by_copy), nrow)}
    if stage1_by_copy[0]:
        pictures["stage1"] = (rows(stage1_by_copy), nrow)
    return pictures
