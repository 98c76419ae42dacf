"""StackGAN v1 (ICCV 2017, PyTorch COCO code): Stage-I and Stage-II training through the loop.

The config keeps the original key names, so an original yml loads unchanged. How the original
keys that steer the loop are honoured:
  TRAIN.BATCH_SIZE        per process (per GPU, as the original's per-GPU batch); the global
                          batch is BATCH_SIZE x the torchrun world size
  TRAIN.MAX_EPOCH         the run length (RUN.MAX_ITERS / --max-iters cut it short)
  TRAIN.SNAPSHOT_INTERVAL a numbered checkpoint after every epoch e with e % interval == 0
                          (epoch 0 included, as the original); 0 = none; last.pt always
  TRAIN.LR_DECAY_EPOCH    both learning rates halve at every multiple of it (set_epoch)
  WORKERS                 data loader workers, unless RUN.WORKERS is set (>= 0)
  VIS_COUNT               images per snapshot grid (fixed noise, current batch's captions)
  TRAIN.FLAG: False       sample from NET_G instead of training (stackgan/sampling.py)
  GPU_ID, CUDA            accepted and ignored: the device is RUN.DEVICE / --device / torchrun
  TRAIN.PRETRAINED_*      accepted and ignored (unused by the PyTorch code as well)
Additions (absent from the original config; defaults = the PyTorch code's behaviour):
  GAN.CA_TYPE, GAN.D_TEXT, TRAIN.NUM_EMBEDDING, TRAIN.WRONG   the TF birds variant's switches
  TRAIN.STAGE1_BN         the frozen Stage-I G's BatchNorm in Stage-II: train (original) | eval
  TRAIN.LOSS              sigmoid_bce (original: sigmoid + BCELoss) | logits (common/losses.py)
  DATASET.*               where the pictures are, the CUB crop, images missing on disk
  SAMPLE.*                what TRAIN.FLAG: False samples
"""
from __future__ import annotations

import torch

from common import dist
from common.data.text import BBOX_RULES, build_text_dataset
from common.data.text_files import EMBEDDING_FILES
from common.errors import ConfigError
from common.logging import log, report
from common.losses import FORMS
from common.trainer import Phase, Trainer
from stackgan import losses, sampling, weights
from stackgan.v1 import CA_TYPES, networks_from_config

NAME = "stackgan"
DEFAULTS = {
    "CONFIG_NAME": "",
    "DATASET_NAME": "birds",
    "EMBEDDING_TYPE": "cnn-rnn",
    "GPU_ID": "0",
    "CUDA": True,
    "WORKERS": 6,
    "NET_G": "",              # G weights to start from (training) or to sample from (FLAG False)
    "NET_D": "",
    "STAGE1_G": "",           # Stage-I generator for Stage-II training (run dir, .pt or .pth)
    "DATA_DIR": "",
    "VIS_COUNT": 64,
    "Z_DIM": 100,
    "IMSIZE": 64,
    "STAGE": 1,
    "TRAIN": {
        "FLAG": True,
        "BATCH_SIZE": 64,
        "MAX_EPOCH": 600,
        "SNAPSHOT_INTERVAL": 50,
        "PRETRAINED_MODEL": "",
        "PRETRAINED_EPOCH": 600,
        "LR_DECAY_EPOCH": 600,
        "DISCRIMINATOR_LR": 2e-4,
        "GENERATOR_LR": 2e-4,
        "COEFF": {"KL": 2.0},
        "NUM_EMBEDDING": 1,        # captions averaged per image (TF birds: 4)
        "WRONG": "batch_shift",    # batch_shift (PyTorch) | dataset (TF: mismatched pictures)
        "STAGE1_BN": "train",
        "LOSS": "sigmoid_bce",     # sigmoid_bce: sigmoid + BCELoss (original; its backward damps
                                   # the gradient for logits < -27.6) | logits: BCE with logits
    },
    "GAN": {
        "CONDITION_DIM": 128,
        "DF_DIM": 64,
        "GF_DIM": 128,
        "R_NUM": 4,
        "CA_TYPE": "relu_logvar",  # relu_logvar (PyTorch) | lrelu_logsigma (TF)
        "D_TEXT": "mu",            # mu (PyTorch: D sees the CA mean) | embedding (TF)
    },
    "TEXT": {"DIMENSION": 1024},
    "DATASET": {
        "IMAGE_DIR": "",           # default <CUB_DIR>/images (birds) or <DATA_DIR>/images
        "CUB_DIR": "",             # default <DATA_DIR>/CUB_200_2011
        "BBOX_CROP": "auto",       # auto (on when DATA_DIR contains 'birds', the original rule)
                                   # | always | never
        "MISSING_IMAGES": "error",  # error | skip (train on the images that exist)
        "TEXT_DIR": "",            # caption text <key>.txt for sample names; default <DATA_DIR>/text
        "CACHE_MB": 2048,          # decode the training pictures once if they fit in this many MB
                                   # (same pixels; 0 = read every load from disk, the original)
    },
    "SAMPLE": {
        "CAPTIONS": "auto",        # auto | test | train | a .t7/.pt/.npz caption file
        "NUM_COPY": 1,             # samples per caption
        "MAX_CAPTIONS": 0,         # 0 = every caption (the original stopped after ~3,000)
        "GRID": True,              # also write grids
    },
    "RUN": {"WORKERS": -1, "LOG_EVERY": 100, "SAMPLE_EVERY": 100},
}
CHOICES = {
    "STAGE": (1, 2),
    "EMBEDDING_TYPE": tuple(EMBEDDING_FILES),
    "GAN.CA_TYPE": CA_TYPES,
    "GAN.D_TEXT": ("mu", "embedding"),
    "TRAIN.WRONG": ("batch_shift", "dataset"),
    "TRAIN.STAGE1_BN": ("train", "eval"),
    "TRAIN.LOSS": FORMS,
    "DATASET.BBOX_CROP": tuple(BBOX_RULES),
    "DATASET.MISSING_IMAGES": ("error", "skip"),
}
POSITIVE = ("Z_DIM", "VIS_COUNT", "TRAIN.MAX_EPOCH", "TRAIN.LR_DECAY_EPOCH",
            "TRAIN.NUM_EMBEDDING", "GAN.CONDITION_DIM", "GAN.DF_DIM", "GAN.GF_DIM",
            "TEXT.DIMENSION", "SAMPLE.NUM_COPY")


def check_config(cfg) -> None:
    from common.config import get
    for key in POSITIVE:
        if get(cfg, key) < 1:
            raise ConfigError(f"{key} must be at least 1, got {get(cfg, key)}", key)
    for key in ("GAN.R_NUM", "TRAIN.SNAPSHOT_INTERVAL", "SAMPLE.MAX_CAPTIONS"):
        if get(cfg, key) < 0:
            raise ConfigError(f"{key} must not be negative, got {get(cfg, key)}", key)
    size = 64 if cfg.STAGE == 1 else 256
    if cfg.IMSIZE != size:
        raise ConfigError(f"IMSIZE is {cfg.IMSIZE}, but Stage-{'I' * cfg.STAGE} networks make "
                          f"{size}x{size} images (IMSIZE: {size})", "IMSIZE")
    multiple = 2 if cfg.STAGE == 1 else 4
    if cfg.GAN.GF_DIM % multiple:
        raise ConfigError(f"GAN.GF_DIM must be a multiple of {multiple} for Stage-"
                          f"{'I' * cfg.STAGE} (its narrowest layer has GF_DIM/{8 // multiple} "
                          "channels)", "GAN.GF_DIM")
    if cfg.TRAIN.BATCH_SIZE < 2:
        raise ConfigError("TRAIN.BATCH_SIZE must be at least 2 (BatchNorm, and the wrong pairs "
                          "shift the batch by one)", "TRAIN.BATCH_SIZE")
    if cfg.RUN.WORKERS < 0:
        cfg.RUN.WORKERS = cfg.WORKERS   # the original key, unless RUN.WORKERS is given


class StackGANTrainer(Trainer):
    name = NAME
    cuda_graphs_safe = True  # the same kernels every iteration; LR halving triggers a recapture

    def __init__(self, cfg, device, with_discriminator: bool = True):
        super().__init__(cfg, device)
        self.batch_size = cfg.TRAIN.BATCH_SIZE * dist.world_size()
        self.epochs = cfg.TRAIN.MAX_EPOCH
        g, d = networks_from_config(cfg)
        self.nets["G"] = g.to(self.device)
        trainable = [p for p in g.parameters() if p.requires_grad]
        self.optimizers["G"] = torch.optim.Adam(trainable, cfg.TRAIN.GENERATOR_LR,
                                                betas=(0.5, 0.999))
        if with_discriminator:   # sampling builds no D (the COCO Stage-II D has 160M weights)
            self.nets["D"] = d.to(self.device)
            self.optimizers["D"] = torch.optim.Adam(self.nets["D"].parameters(),
                                                    cfg.TRAIN.DISCRIMINATOR_LR, betas=(0.5, 0.999))
        self.shared: tuple | None = None        # the D step's generator output, reused by G
        self.vis_embedding: torch.Tensor | None = None

    # ---- data and schedules ---------------------------------------------------------------
    def dataset(self):
        cfg = self.cfg
        if not cfg.DATA_DIR:
            raise ConfigError("DATA_DIR is empty; set it to the StackGAN data directory "
                              "(<DATA_DIR>/train/filenames.pickle ...)", "DATA_DIR")
        ds = build_text_dataset(
            cfg.DATA_DIR, "train", [cfg.IMSIZE], cfg.EMBEDDING_TYPE,
            bbox_crop=BBOX_RULES[cfg.DATASET.BBOX_CROP], image_dir=cfg.DATASET.IMAGE_DIR or None,
            cub_dir=cfg.DATASET.CUB_DIR or None, resize="square", augment=True,
            wrong="shift" if cfg.TRAIN.WRONG == "dataset" else "none",
            num_embedding=cfg.TRAIN.NUM_EMBEDDING, missing_images=cfg.DATASET.MISSING_IMAGES,
            cache_mb=cfg.DATASET.CACHE_MB)
        dim = ds.split.embeddings.shape[2]
        if dim != cfg.TEXT.DIMENSION:
            raise ConfigError(f"{ds.split.split_dir}: the embeddings have {dim} dimensions but "
                              f"TEXT.DIMENSION is {cfg.TEXT.DIMENSION}", "TEXT.DIMENSION")
        if ds.skipped:
            log(f"{ds.split.split_dir}: {ds.skipped} of {len(ds.split)} images are missing on "
                f"disk; training on the {len(ds)} present (DATASET.MISSING_IMAGES: skip)")
        return ds

    def set_epoch(self, epoch: int) -> None:
        factor = 0.5 ** (epoch // self.cfg.TRAIN.LR_DECAY_EPOCH)
        for name, base in (("G", self.cfg.TRAIN.GENERATOR_LR),
                           ("D", self.cfg.TRAIN.DISCRIMINATOR_LR)):
            if name in self.optimizers:
                for group in self.optimizers[name].param_groups:
                    group["lr"] = base * factor

    def snapshot_due(self) -> bool:
        p, interval = self.progress, self.cfg.TRAIN.SNAPSHOT_INTERVAL
        if interval <= 0 or p.iters_per_epoch <= 0 or p.iteration % p.iters_per_epoch:
            return False
        return (p.iteration // p.iters_per_epoch - 1) % interval == 0

    def start_fresh(self) -> None:
        """NET_G / NET_D as starting weights (original behaviour); else Stage-II loads the
        frozen Stage-I generator from STAGE1_G and refuses to start without it."""
        cfg, g = self.cfg, self.nets["G"]
        if cfg.NET_G:
            weights.load_into(g, weights.load_state(cfg.NET_G, "G", "NET_G"), cfg.NET_G, "NET_G")
            log(f"G starts from NET_G {cfg.NET_G}")
        elif cfg.STAGE == 2:
            if not cfg.STAGE1_G:
                raise ConfigError(
                    "Stage-II training needs the trained Stage-I generator: set STAGE1_G to a "
                    "Stage-I run directory, its checkpoint (.pt) or an original "
                    "netG_epoch_*.pth", "STAGE1_G")
            state = weights.stage1_part(weights.load_state(cfg.STAGE1_G, "G", "STAGE1_G"))
            weights.load_into(g.STAGE1_G, state, cfg.STAGE1_G, "STAGE1_G")
            log(f"frozen Stage-I generator loaded from {cfg.STAGE1_G}")
        if cfg.NET_D and "D" in self.nets:
            weights.load_into(self.nets["D"], weights.load_state(cfg.NET_D, "D", "NET_D"),
                              cfg.NET_D, "NET_D")

    # ---- one iteration --------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("D", self.d_step, ["D"]), Phase("G", self.g_step, ["G"])]

    def condition(self, embedding: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """What D is conditioned on: the CA mean, detached (PyTorch) or the raw text (TF)."""
        return embedding if self.cfg.GAN.D_TEXT == "embedding" else mu.detach()

    def d_step(self, batch: dict) -> torch.Tensor:
        real, text = batch["image"], batch["embedding"]
        noise = torch.randn(real.shape[0], self.cfg.Z_DIM, device=self.device)
        stage1_fake, fake, mu, logvar = self.nets["G"](text, noise)
        self.shared = (text, fake, mu, logvar)
        self.vis_embedding = text[:self.cfg.VIS_COUNT].detach()
        cond, net_d = self.condition(text, mu), self.nets["D"]
        real_code, fake_code = net_d(real), net_d(fake.detach())
        # the head's BatchNorm sees real, wrong, fake in the original's order (running stats)
        real_logits = net_d.get_cond_logits(real_code, cond)
        if self.cfg.TRAIN.WRONG == "batch_shift":   # picture i with the caption of row i + 1
            wrong = net_d.get_cond_logits(real_code[:-1], cond[1:])
        else:
            wrong = net_d.get_cond_logits(net_d(batch["wrong_images"][-1]), cond)
        uncond = net_d.get_uncond_logits
        total, parts = losses.discriminator_loss(
            real_logits, wrong, net_d.get_cond_logits(fake_code, cond),
            uncond(real_code) if uncond is not None else None,
            uncond(fake_code) if uncond is not None else None, self.cfg.TRAIN.LOSS)
        for name, value in parts.items():
            report(f"D_loss_{name}", value)
        return total

    def g_step(self, batch: dict) -> dict:
        text, fake, mu, logvar = self.shared
        self.shared = None
        net_d = self.nets["D"]
        code = net_d(fake)
        uncond = net_d.get_uncond_logits
        adversarial = losses.generator_adversarial_loss(
            net_d.get_cond_logits(code, self.condition(text, mu)),
            uncond(code) if uncond is not None else None, self.cfg.TRAIN.LOSS)
        kl = losses.kl_loss(mu, logvar)
        report("G_loss", adversarial)
        report("KL_loss", kl)
        return {"G": adversarial + self.cfg.TRAIN.COEFF.KL * kl}

    def synthetic_batch(self, batch_size: int) -> dict:
        """Random tensors shaped like a training batch (for benchmarks without data)."""
        size, dev = self.cfg.IMSIZE, self.device
        batch = {"image": torch.rand(batch_size, 3, size, size, device=dev) * 2 - 1,
                 "embedding": torch.randn(batch_size, self.cfg.TEXT.DIMENSION, device=dev)}
        if self.cfg.TRAIN.WRONG == "dataset":
            batch["wrong_images"] = [torch.rand_like(batch["image"]) * 2 - 1]
        return batch

    # ---- pictures -------------------------------------------------------------------------
    def snapshot_images(self) -> dict:
        """Fixed noise with the current batch's captions (Stage-II: the Stage-I images too)."""
        if self.vis_embedding is None:
            return {}
        text = self.vis_embedding
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.RUN.SEED)
        noise = torch.randn(text.shape[0], self.cfg.Z_DIM, generator=gen, device=self.device)
        stage1_fake, fake, _, _ = self.nets["G"](text, noise)
        pictures = {"fakes": (fake, 8)}
        if stage1_fake is not None:
            pictures["lr_fakes"] = (stage1_fake, 8)
        return pictures

    def generate(self, n: int, seed: int = 0, ema: bool = True) -> torch.Tensor:
        """n images for the first captions of the evaluation split (v1 keeps no EMA)."""
        return torch.cat([b["image"] for b in sampling.eval_samples(self, n, seed,
                                                                    self.cfg.TRAIN.BATCH_SIZE)])


def build(cfg, device) -> StackGANTrainer:
    return StackGANTrainer(cfg, device)


main_without_training = sampling.main_without_training
eval_samples = sampling.eval_samples
add_sample_args = sampling.add_sample_args
sample = sampling.sample
