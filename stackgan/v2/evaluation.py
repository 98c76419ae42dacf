"""StackGAN++ TRAIN.FLAG False: the evaluation images of a generator, as the original wrote them.

Text models: per evaluation image one noise vector shared by all its captions, single images or
one grid of captions per image; unconditional models: TEST.SAMPLE_NUM noise samples. Pixels are
(x + 1) / 2 * 255, truncated, as the original (docs/stackgan_v2.md, "Evaluation and sampling").
stackgan/v2/model.py builds the trainer and loads TRAIN.NET_G; `write` takes it from there.
"""
from __future__ import annotations

from pathlib import Path

import torch

from common.errors import DataError
from common.images import save_grid, save_png
from common.logging import log
from common.seeds import mix
from stackgan.v2.sampling import eval_split, run_generator, seeded_noise


def write(trainer, root: Path) -> int:
    """The evaluation files of the trainer's EMA generator under `root`; returns their count."""
    cfg = trainer.cfg
    sizes = trainer.sizes if cfg.TEST.ALL_BRANCHES else trainer.sizes[-1:]
    write_files = write_conditional if trainer.conditional else write_unconditional
    count = write_files(trainer, root, sizes)
    log(f"wrote {count} file(s) under {root}")
    return count


def to_uint8_like_original(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) in [-1, 1] -> uint8 as the original wrote it: (x + 1) / 2 * 255, truncated."""
    return image.detach().float().cpu().add(1).div(2).mul(255).clamp(0, 255).to(torch.uint8)


def _safe_key(key: str) -> str:
    if key.startswith("/") or ".." in Path(key).parts:
        raise DataError(f"image key {key!r} would leave the output folder")
    return key


def output_root(cfg, ctx, iteration: int) -> Path:
    """--out if given, else the original's `<folder of NET_G>/iteration<N>`."""
    if ctx.args.out:
        return Path(ctx.args.out)
    net_g = Path(cfg.TRAIN.NET_G).expanduser()
    folder = net_g if net_g.is_dir() else net_g.parent
    return folder / f"iteration{iteration}"


def write_conditional(trainer, root: Path, sizes: list[int]) -> int:
    """Per evaluation image one noise vector shared by all its captions; per caption i:
    single_samples/valid/<key>_<size>_sentence<i>.png (TEST.B_EXAMPLE False), or one grid of all
    captions per image: super/valid/<key>_<size>.png (B_EXAMPLE True)."""
    cfg = trainer.cfg
    split_data = eval_split(cfg)
    table = torch.from_numpy(split_data.embeddings)
    n, captions = table.shape[:2]
    index = {s: trainer.sizes.index(s) for s in sizes}
    seed, written, batch = cfg.RUN.SEED, 0, cfg.TRAIN.BATCH_SIZE
    for b, start in enumerate(range(0, n, batch)):
        keys = [_safe_key(k) for k in split_data.filenames[start:start + batch]]
        z = seeded_noise(len(keys), cfg.GAN.Z_DIM, mix(seed, b, 1))
        per_caption = [run_generator(trainer, z, table[start:start + len(keys), j],
                                     mix(seed, b, 2, j)) for j in range(captions)]
        for size in sizes:
            for k, key in enumerate(keys):
                if cfg.TEST.B_EXAMPLE:
                    grid = torch.stack([imgs[index[size]][k] for imgs in per_caption])
                    save_grid(grid, root / "super" / "valid" / f"{key}_{size}.png", captions)
                    written += 1
                    continue
                for j, imgs in enumerate(per_caption):
                    path = root / "single_samples" / "valid" / f"{key}_{size}_sentence{j}.png"
                    save_png(to_uint8_like_original(imgs[index[size]][k]), path)
                    written += 1
    return written


def write_unconditional(trainer, root: Path, sizes: list[int]) -> int:
    """int(TEST.SAMPLE_NUM / batch) batches of noise: train/single/<k>_<size>.png per image, or
    one grid per batch train/super/<first k>_<size>.png (TEST.B_EXAMPLE True)."""
    cfg = trainer.cfg
    batch = cfg.TRAIN.BATCH_SIZE
    index = {s: trainer.sizes.index(s) for s in sizes}
    written = 0
    for b in range(cfg.TEST.SAMPLE_NUM // batch):
        z = seeded_noise(batch, cfg.GAN.Z_DIM, mix(cfg.RUN.SEED, b, 1))
        images = run_generator(trainer, z, None, mix(cfg.RUN.SEED, b, 2))
        first = b * batch
        for size in sizes:
            out = images[index[size]]
            if cfg.TEST.B_EXAMPLE:
                save_grid(out, root / "train" / "super" / f"{first}_{size}.png", 8)
                written += 1
                continue
            for k in range(batch):
                save_png(to_uint8_like_original(out[k]),
                         root / "train" / "single" / f"{first + k}_{size}.png")
                written += 1
    return written
