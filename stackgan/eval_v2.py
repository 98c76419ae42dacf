"""StackGAN++ sampling: TRAIN.FLAG False evaluation files, sample.py pictures, metric batches.

All of them use the EMA generator in eval mode (the CA net still samples its condition, as in the
original). Conditional models draw their captions from the evaluation split
(`<DATA_DIR>/test`: filenames.pickle and the caption-embedding pickle; no image is opened).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from common import dist
from common.seeds import mix
from common.errors import ConfigError, DataError
from common.images import save_grid, save_png
from common.logging import log

EVAL_SPLIT = "test"


# ---- captions of the evaluation split ------------------------------------------------------------
def eval_split(cfg, data_dir: str | None = None, split: str = EVAL_SPLIT):
    """keys and (N, captions, dim) embeddings of a split (common.data.text_files.TextSplit)."""
    from common.data.text_files import load_split
    split_data = load_split(data_dir or cfg.DATA_DIR, split, cfg.EMBEDDING_TYPE)
    dim = split_data.embeddings.shape[2]
    if dim != cfg.TEXT.DIMENSION:
        raise DataError(f"{split_data.split_dir}: caption embeddings have {dim} dimensions but "
                        f"TEXT.DIMENSION is {cfg.TEXT.DIMENSION}")
    return split_data


def caption_pairs(split_data) -> list[tuple[int, int]]:
    """(image, caption) index pairs, image-major: every caption of image 0, then image 1, ..."""
    n, k = split_data.embeddings.shape[:2]
    return [(i, j) for i in range(n) for j in range(k)]


@torch.no_grad()
def run_generator(trainer, z: torch.Tensor, emb: torch.Tensor | None, seed: int,
                  ema: bool = True) -> list[torch.Tensor]:
    """All branch images for noise z (and embeddings), with the CA noise drawn under `seed`."""
    net = trainer.sampling_net(ema)
    was_training = net.training
    net.eval()
    device = trainer.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        images, _, _ = net(z.to(device), emb.to(device) if emb is not None else None)
    net.train(was_training)
    return images


def _noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def conditioned_batches(trainer, n: int, seed: int, batch_size: int, embeddings=None,
                        ema: bool = True):
    """Yield (branch images, embeddings or None, info) for n samples in batches.

    Conditional: the evaluation split's captions in image-major order, cycling when n exceeds
    them (so several samples per caption), or `embeddings` (M, dim) cycled likewise.
    Unconditional: noise only. Deterministic in `seed`.
    """
    cfg = trainer.cfg
    keys, pairs, table = None, None, None
    if trainer.conditional:
        if embeddings is None:
            split_data = eval_split(cfg)
            keys, table = split_data.filenames, torch.from_numpy(split_data.embeddings)
            pairs = caption_pairs(split_data)
        else:
            table = torch.as_tensor(embeddings, dtype=torch.float32)[:, None, :]
            pairs = [(i, 0) for i in range(table.shape[0])]
    for b, start in enumerate(range(0, n, batch_size)):
        count = min(batch_size, n - start)
        z = _noise(count, cfg.GAN.Z_DIM, mix(seed, b, 1))
        info: dict = {}
        emb = None
        if pairs is not None:
            chosen = [pairs[(start + k) % len(pairs)] for k in range(count)]
            emb = torch.stack([table[i, j] for i, j in chosen])
            info["caption_index"] = torch.tensor([j for _, j in chosen])
            if keys is not None:
                info["key"] = [keys[i] for i, _ in chosen]
        images = run_generator(trainer, z, emb, mix(seed, b, 2), ema)
        yield images, emb, info


def generate_images(trainer, n: int, seed: int = 0, ema: bool = True) -> list[torch.Tensor]:
    """n samples at every branch resolution (smallest first)."""
    return _concat(conditioned_batches(trainer, n, seed, max(n, 1), ema=ema))


def _concat(batches) -> list[torch.Tensor]:
    outs = [images for images, _, _ in batches]
    return [torch.cat([o[i] for o in outs]) for i in range(len(outs[0]))]


def eval_samples(trainer, n: int, seed: int = 0, batch_size: int = 50):
    """Batches for common.metrics: {"image": last branch (B, 3, 256, 256) in [-1, 1],
    "embedding", "caption_index", "key"} (conditional) or {"image"} (unconditional)."""
    for images, emb, info in conditioned_batches(trainer, n, seed, batch_size):
        batch = {"image": images[-1]}
        if emb is not None:
            batch["embedding"] = emb
        batch.update(info)
        yield batch


# ---- scripts/sample.py hooks ---------------------------------------------------------------------
def add_sample_args(parser) -> None:
    group = parser.add_argument_group("StackGAN++ (conditional models)")
    group.add_argument("--captions", default=None,
                       help="caption file (.t7, .pt or .npz with raw_txt / fea_txt, e.g. from "
                            "scripts/embed_captions.py --captions) to condition on; default: the "
                            "evaluation split of the checkpoint's DATA_DIR")
    group.add_argument("--data-dir", default=None,
                       help="StackGAN data directory to read the evaluation split from "
                            "(default: the checkpoint's DATA_DIR)")


def side_by_side(images: list[torch.Tensor]) -> torch.Tensor:
    """(n * branches, 3, S, S): each sample's branch images, upsampled (nearest) to the largest."""
    size = images[-1].shape[-1]
    scaled = [F.interpolate(im, size=(size, size), mode="nearest") for im in images]
    return torch.stack(scaled, dim=1).flatten(0, 1)


def sample(trainer, args) -> dict:
    """sample.py pictures: every resolution side by side (`--nrow` samples per row) and the
    largest resolution alone."""
    embeddings = None
    if not trainer.conditional and (args.captions or args.data_dir):
        raise ConfigError("--captions / --data-dir: this StackGAN++ model is unconditional "
                          "(GAN.B_CONDITION False) and samples from noise only")
    if trainer.conditional and args.captions:
        from common.data.t7captions import read_caption_file
        embeddings = read_caption_file(args.captions).embeddings
        if embeddings.shape[1] != trainer.cfg.TEXT.DIMENSION:
            raise DataError(f"{args.captions}: embeddings have {embeddings.shape[1]} dimensions "
                            f"but the model expects TEXT.DIMENSION {trainer.cfg.TEXT.DIMENSION}")
    elif trainer.conditional and args.data_dir:
        trainer.cfg.DATA_DIR = args.data_dir
    images = _concat(conditioned_batches(trainer, args.n, args.seed, min(args.n, 64), embeddings,
                                         ema=not args.raw))
    largest = images[-1].shape[-1]
    return {"branches": (side_by_side(images), trainer.branches * args.nrow),
            str(largest): (images[-1], args.nrow)}


# ---- TRAIN.FLAG: False ---------------------------------------------------------------------------
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


def main_without_training(cfg, ctx) -> bool:
    """TRAIN.FLAG False: write the evaluation images of TRAIN.NET_G as the original did."""
    if cfg.TRAIN.FLAG:
        return False
    if not cfg.TRAIN.NET_G:
        raise ConfigError("TRAIN.FLAG is False (evaluation) but TRAIN.NET_G names no generator",
                          "TRAIN.NET_G")
    from stackgan.trainer_v2 import StackGAN2Trainer
    from stackgan.weights_v2 import load_generator
    trainer = StackGAN2Trainer(cfg, ctx.device, with_discriminators=False)
    iteration = load_generator(trainer, cfg.TRAIN.NET_G)
    if not dist.is_main():
        return True
    root = output_root(cfg, ctx, iteration)
    sizes = trainer.sizes if cfg.TEST.ALL_BRANCHES else trainer.sizes[-1:]
    write = write_conditional if trainer.conditional else write_unconditional
    count = write(trainer, root, sizes)
    log(f"wrote {count} file(s) under {root}")
    return True


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
        z = _noise(len(keys), cfg.GAN.Z_DIM, mix(seed, b, 1))
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
        z = _noise(batch, cfg.GAN.Z_DIM, mix(cfg.RUN.SEED, b, 1))
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
