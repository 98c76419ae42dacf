"""StackGAN++ sampling: the generator run under a seed, sample.py pictures, metric batches.

Every function takes the trainer whose generator draws; none imports the trainer (the TRAIN.FLAG
False files are stackgan/v2/evaluation.py). All of them use the EMA generator in eval mode (the
CA net still samples its condition, as in the original). Conditional models draw their captions from the evaluation split
(`<DATA_DIR>/test`: filenames.pickle and the caption-embedding pickle; no image is opened).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from common.data.text_files import load_split
from common.errors import ConfigError, DataError
from common.seeds import mix

EVAL_SPLIT = "test"


# ---- captions of the evaluation split ------------------------------------------------------------
def eval_split(cfg, data_dir: str | None = None, split: str = EVAL_SPLIT):
    """keys and (N, captions, dim) embeddings of a split (common.data.text_files.TextSplit)."""
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


def seeded_noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """(n, z_dim) standard normal noise from its own generator seeded with `seed` (CPU)."""
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
        z = seeded_noise(count, cfg.GAN.Z_DIM, mix(seed, b, 1))
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
                            "scripts/stackgan_embed_captions.py --captions) to condition on; default: the "
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
