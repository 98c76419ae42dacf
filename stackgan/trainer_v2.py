"""StackGAN++ (StackGAN-v2) for the common loop: config with the original keys, the trainer.

One iteration, as in hanzhanggit/StackGAN-v2 (specs/stackgan.md section 4): one G forward with
fresh noise, then every branch discriminator D_i steps once on the same (detached) fakes with its
own Adam, then G steps once against all of them (plus KL and colour consistency). The common loop
keeps the moving average of G's parameters as the network `G_ema` (decay 0.999), which sampling
and evaluation use. The original also wrote that average back into the live generator at every
snapshot, which then trained on from the average; TRAIN.EMA_WRITE_BACK does the same (on by
default: it shaped the released models; False keeps the live G undisturbed).

The config keeps the original key names, so an original yml loads unchanged. The keys that steered
the original's own loop map onto the common loop as follows (see docs/stackgan_v2.md):
  TRAIN.MAX_EPOCH          -> the run length in epochs (RUN.MAX_ITERS > 0 overrides it)
  TRAIN.SNAPSHOT_INTERVAL  -> RUN.SNAPSHOT_EVERY, RUN.CKPT_EVERY and RUN.SAMPLE_EVERY when those
                              are -1 (their default here)
  TRAIN.BATCH_SIZE         -> per process (per GPU, as the original's per-GPU batch); the
                              global batch is BATCH_SIZE x the number of torchrun processes
  WORKERS                  -> RUN.WORKERS when that is -1
  GPU_ID, CUDA             -> accepted and ignored: the device is RUN.DEVICE / --device, several
                              GPUs are torchrun processes (CUDA_VISIBLE_DEVICES picks them)
  TRAIN.NET_G / NET_D      -> weights to start from (original .pth or a ganrepro checkpoint);
                              TRAIN.FLAG False evaluates NET_G
"""
from __future__ import annotations

import torch

from common import dist
from common.data import seeded_rngs
from common.data.text import BBOX_RULES
from common.data.text_files import EMBEDDING_FILES
from common.errors import ConfigError
from common.logging import report
from common.losses import FORMS
from common.trainer import Phase, Trainer
from stackgan import data_v2, losses_v2, v2
# the module API's sampling hooks live in eval_v2
from stackgan.eval_v2 import (add_sample_args, eval_samples, generate_images,  # noqa: F401
                              main_without_training, sample)
from stackgan.weights_v2 import load_start_weights

NAME = "stackgan2"

DEFAULTS = {
    "CONFIG_NAME": "",            # name of the experiment (informational)
    "DATASET_NAME": "birds",      # unconditional data: images in <DATA_DIR>/<DATASET_NAME>_train
    "EMBEDDING_TYPE": "cnn-rnn",  # which caption-embedding file of a text dataset to read
    "DATA_DIR": "",               # dataset root; 'birds' in it turns on the CUB bbox crop
    "GPU_ID": "0",                # accepted and ignored (see the module docstring)
    "CUDA": True,                 # accepted and ignored
    "WORKERS": 6,                 # data loader workers (copied to RUN.WORKERS when that is -1)
    "TREE": {
        "BRANCH_NUM": 3,          # branches and discriminators: 64, 128, 256 (4, 5: 512, 1024)
        "BASE_SIZE": 64,          # first-branch resolution (the networks are built for 64)
    },
    "TEST": {
        "B_EXAMPLE": True,        # evaluation writes grids (True) or single images (False)
        "SAMPLE_NUM": 30000,      # images for unconditional evaluation
        "ALL_BRANCHES": False,    # also write the 64/128 images (the original wrote only 256)
    },
    "TRAIN": {
        "BATCH_SIZE": 64,         # per process (= per GPU)
        "VIS_COUNT": 64,          # images per sample grid
        "MAX_EPOCH": 600,
        "SNAPSHOT_INTERVAL": 2000,  # iterations between snapshots (0 = only at the end)
        "DISCRIMINATOR_LR": 2e-4,
        "GENERATOR_LR": 2e-4,
        "FLAG": True,             # False = evaluate TRAIN.NET_G instead of training
        "NET_G": "",              # generator weights: start from / evaluate
        "NET_D": "",              # discriminator weights: prefix of <prefix>0.pth ... or a .pt
        "COEFF": {
            "KL": 2.0,            # weight of the element-wise-mean KL term
            "UNCOND_LOSS": 0.0,   # lambda_u of the unconditional D head (birds: 1.0)
            "COLOR_LOSS": 0.0,    # alpha of colour consistency (unconditional ymls: 50.0)
        },
        "EMA_DECAY": 0.999,       # moving average of G's parameters (hard-coded originally)
        "EMA_WRITE_BACK": True,   # True: the original's copy of the average into the live G at
                                  # every snapshot | False: the live G never takes the average
        "LOSS": "sigmoid_bce",    # sigmoid_bce: sigmoid + BCELoss (original; its backward damps
                                  # the gradient for logits < -27.6) | logits: BCE with logits
    },
    "GAN": {
        "EMBEDDING_DIM": 128,     # C, the condition size
        "DF_DIM": 64,
        "GF_DIM": 64,
        "Z_DIM": 100,
        "NETWORK_TYPE": "default",  # unused in the original, which has one network type:
                                    # any other value is refused rather than ignored
        "R_NUM": 2,               # residual blocks of the 128 and 256 branches
        "B_CONDITION": False,     # text-conditional (True) or unconditional (False)
    },
    "TEXT": {"DIMENSION": 1024},  # size of the caption embeddings
    "DATASET": {                  # ganrepro additions: where a text dataset's files are
        "BBOX_CROP": "auto",      # auto ('birds' in DATA_DIR, the original rule) | always | never
        "CUB_DIR": "",            # CUB_200_2011 folder (default <DATA_DIR>/CUB_200_2011)
        "IMAGE_DIR": "",          # pictures <key>.jpg (default <CUB_DIR>/images for birds,
                                  # else <DATA_DIR>/images)
        "MISSING_IMAGES": "error",  # error | skip: images listed in filenames.pickle but absent
        "CACHE_MB": 2048,         # decode the training pictures once if they fit in this many MB
                                  # (same pixels; 0 = read every load from disk, the original)
    },
    "RUN": {
        "WORKERS": -1,            # -1 = WORKERS
        "SAMPLE_EVERY": -1,       # -1 = TRAIN.SNAPSHOT_INTERVAL
        "CKPT_EVERY": -1,         # -1 = TRAIN.SNAPSHOT_INTERVAL
        "SNAPSHOT_EVERY": -1,     # -1 = TRAIN.SNAPSHOT_INTERVAL
        "LOG_EVERY": 100,         # the original logged every 100 iterations
    },
}

CHOICES = {"TREE.BRANCH_NUM": (1, 2, 3, 4, 5), "EMBEDDING_TYPE": tuple(EMBEDDING_FILES),
           "DATASET.BBOX_CROP": tuple(BBOX_RULES), "DATASET.MISSING_IMAGES": ("error", "skip"),
           "TRAIN.LOSS": FORMS, "GAN.NETWORK_TYPE": ("default",)}


def check_config(cfg) -> None:
    """Rules across keys, then fill the RUN entries that follow the original keys."""
    if cfg.TREE.BASE_SIZE != 64:
        raise ConfigError(f"TREE.BASE_SIZE is {cfg.TREE.BASE_SIZE}; the StackGAN++ networks "
                          "start at 64x64 (the original ignores other values in the models)",
                          "TREE.BASE_SIZE")
    step = 2 ** (cfg.TREE.BRANCH_NUM - 1)
    if cfg.GAN.GF_DIM < step or cfg.GAN.GF_DIM % step:
        raise ConfigError(f"GAN.GF_DIM {cfg.GAN.GF_DIM} must be a multiple of {step} for "
                          f"{cfg.TREE.BRANCH_NUM} branches (each branch halves the width)",
                          "GAN.GF_DIM")
    for key in ("GF_DIM", "DF_DIM", "Z_DIM", "EMBEDDING_DIM"):
        if cfg.GAN[key] < 1:
            raise ConfigError(f"GAN.{key} must be positive, got {cfg.GAN[key]}", f"GAN.{key}")
    if cfg.GAN.R_NUM < 0:
        raise ConfigError(f"GAN.R_NUM must be >= 0, got {cfg.GAN.R_NUM}", "GAN.R_NUM")
    for key in ("KL", "UNCOND_LOSS", "COLOR_LOSS"):
        if cfg.TRAIN.COEFF[key] < 0:
            raise ConfigError(f"TRAIN.COEFF.{key} must be >= 0, got {cfg.TRAIN.COEFF[key]}",
                              f"TRAIN.COEFF.{key}")
    if cfg.TRAIN.BATCH_SIZE < 2:
        raise ConfigError("TRAIN.BATCH_SIZE must be at least 2 (batch norm needs a batch)",
                          "TRAIN.BATCH_SIZE")
    if cfg.TRAIN.SNAPSHOT_INTERVAL < 0:
        raise ConfigError("TRAIN.SNAPSHOT_INTERVAL must be >= 0", "TRAIN.SNAPSHOT_INTERVAL")
    if cfg.TRAIN.EMA_WRITE_BACK and cfg.TRAIN.SNAPSHOT_INTERVAL == 0:
        raise ConfigError("TRAIN.EMA_WRITE_BACK (on by default, as the original) writes the "
                          "average back at every snapshot, and TRAIN.SNAPSHOT_INTERVAL is 0; set "
                          "an interval > 0 or TRAIN.EMA_WRITE_BACK False", "TRAIN.EMA_WRITE_BACK")
    if cfg.TRAIN.EMA_WRITE_BACK and cfg.RUN.CUDA_GRAPHS:
        raise ConfigError("TRAIN.EMA_WRITE_BACK (on by default, as the original) is decided on the "
                          "host at each snapshot, which a CUDA graph cannot replay; set "
                          "TRAIN.EMA_WRITE_BACK False to use RUN.CUDA_GRAPHS",
                          "TRAIN.EMA_WRITE_BACK")
    if not 0.0 <= cfg.TRAIN.EMA_DECAY < 1.0:
        raise ConfigError(f"TRAIN.EMA_DECAY must be in [0, 1), got {cfg.TRAIN.EMA_DECAY}",
                          "TRAIN.EMA_DECAY")
    apply_original_keys(cfg)


def apply_original_keys(cfg) -> None:
    """RUN entries left at -1 take their value from the original keys (see module docstring)."""
    for key in ("SAMPLE_EVERY", "CKPT_EVERY", "SNAPSHOT_EVERY"):
        if cfg.RUN[key] == -1:
            cfg.RUN[key] = cfg.TRAIN.SNAPSHOT_INTERVAL
    if cfg.RUN.WORKERS == -1:
        cfg.RUN.WORKERS = cfg.WORKERS
    for key in ("SAMPLE_EVERY", "CKPT_EVERY", "SNAPSHOT_EVERY", "WORKERS"):
        if cfg.RUN[key] < 0:
            raise ConfigError(f"RUN.{key} must be >= 0 (or -1 for the original key's value), "
                              f"got {cfg.RUN[key]}", f"RUN.{key}")


class StackGAN2Trainer(Trainer):
    name = NAME
    generator = "G"

    def __init__(self, cfg, device, with_discriminators: bool = True):
        super().__init__(cfg, device)
        self.conditional = bool(cfg.GAN.B_CONDITION)
        self.branches = cfg.TREE.BRANCH_NUM
        self.sizes = data_v2.branch_sizes(cfg.TREE.BASE_SIZE, self.branches)
        self.batch_size = cfg.TRAIN.BATCH_SIZE * dist.world_size()
        self.epochs = cfg.TRAIN.MAX_EPOCH
        self.nets["G"] = v2.build_generator(cfg.GAN, self.branches, cfg.TEXT.DIMENSION).to(device)
        self.add_ema("G", cfg.TRAIN.EMA_DECAY)
        betas = (0.5, 0.999)
        self.optimizers["G"] = torch.optim.Adam(self.nets["G"].parameters(),
                                                cfg.TRAIN.GENERATOR_LR, betas=betas)
        if with_discriminators:  # evaluation builds none (the three hold 96M weights)
            for i, d in enumerate(v2.build_discriminators(cfg.GAN, self.branches)):
                self.nets[f"D{i}"] = d.to(device)
                self.optimizers[f"D{i}"] = torch.optim.Adam(d.parameters(),
                                                            cfg.TRAIN.DISCRIMINATOR_LR, betas=betas)
        self._train_set = None
        self._fixed = None          # (noise, embeddings) of the sample grids
        self._step = {}             # the G forward shared by the D and G phases

    @property
    def cuda_graphs_safe(self) -> bool:
        """The same kernels every iteration, unless the EMA write-back (a Python decision on
        the iteration) is on."""
        return not self.cfg.TRAIN.EMA_WRITE_BACK

    def synthetic_batch(self, batch_size: int) -> dict:
        """Random tensors shaped like a training batch (for benchmarks without data)."""
        def images():
            return [torch.rand(batch_size, 3, s, s, device=self.device) * 2 - 1 for s in self.sizes]
        batch = {"images": images(), "wrong_images": images()}
        if self.conditional:
            batch["embedding"] = torch.randn(batch_size, self.cfg.TEXT.DIMENSION, device=self.device)
        return batch

    # ---- data -------------------------------------------------------------------------------
    def dataset(self):
        if self._train_set is None:
            self._train_set = data_v2.training_set(self.cfg, self.sizes)
        return self._train_set

    def start_fresh(self) -> None:
        load_start_weights(self)

    # ---- one iteration ----------------------------------------------------------------------
    def phases(self):
        d_names = [f"D{i}" for i in range(self.branches)]
        return [Phase("D", self.d_step, d_names), Phase("G", self.g_step, ["G"])]

    def d_step(self, batch: dict) -> dict:
        self._maybe_write_back()
        real = batch["images"]
        z = torch.randn(real[0].shape[0], self.cfg.GAN.Z_DIM, device=self.device)
        fakes, mu, logvar = self.nets["G"](z, batch["embedding"] if self.conditional else None)
        self._step = {"fakes": fakes, "mu": mu, "logvar": logvar}
        losses = {}
        lambda_u, form = self.cfg.TRAIN.COEFF.UNCOND_LOSS, self.cfg.TRAIN.LOSS
        for i in range(self.branches):
            d = self.nets[f"D{i}"]
            if self.conditional:
                parts = losses_v2.d_loss_conditional(d, real[i], batch["wrong_images"][i],
                                                     fakes[i].detach(), mu.detach(), lambda_u,
                                                     form)
            else:
                parts = losses_v2.d_loss_unconditional(d, real[i], fakes[i].detach(), form)
            for name, value in parts.items():
                if name != "total":
                    report(f"D{i}/{name}", value)
            losses[f"D{i}"] = parts["total"]
        return losses

    def g_step(self, batch: dict) -> dict:
        fakes, mu, logvar = self._step["fakes"], self._step["mu"], self._step["logvar"]
        coeff = self.cfg.TRAIN.COEFF
        total = 0.0
        for i in range(self.branches):
            adv = losses_v2.g_adversarial(self.nets[f"D{i}"], fakes[i], mu, coeff.UNCOND_LOSS,
                                          self.cfg.TRAIN.LOSS)
            report(f"G/adv{i}", adv)
            total = total + adv
        if coeff.COLOR_LOSS > 0:
            for name, value in losses_v2.color_consistency(fakes, coeff.COLOR_LOSS).items():
                report(f"G/{name}", value)
                total = total + value
        if self.conditional:
            kl = losses_v2.kl_loss(mu, logvar)
            report("G/kl", kl)
            total = total + coeff.KL * kl
        self._step = {}
        return {"G": total}

    @torch.no_grad()
    def _maybe_write_back(self) -> None:
        """The original's write-back: after the iteration that ends a snapshot interval (after its
        EMA update) the average's parameters are copied into the live G, which trains on from
        them; BN buffers and G's Adam moments stay as they were (load_params in the original).
        Done at the start of the next iteration, so the checkpoint of the snapshot still holds
        the live G of before, and a resume from it writes back the same way."""
        interval, it = self.cfg.TRAIN.SNAPSHOT_INTERVAL, self.progress.iteration
        if self.cfg.TRAIN.EMA_WRITE_BACK and it > 0 and it % interval == 0:
            for live, avg in zip(self.nets["G"].parameters(), self.nets["G_ema"].parameters()):
                live.copy_(avg)

    # ---- pictures ---------------------------------------------------------------------------
    def fixed_inputs(self, n: int):
        """Fixed noise and (conditional) the captions of the first n training items."""
        if self._fixed is None or self._fixed[0].shape[0] != n:
            g = torch.Generator().manual_seed(self.cfg.RUN.SEED)
            z = torch.randn(n, self.cfg.GAN.Z_DIM, generator=g)
            emb = None
            if self.conditional:
                data = self.dataset()
                with seeded_rngs(self.cfg.RUN.SEED):  # a fixed caption per picture
                    emb = torch.stack([data.pick_embedding(i % len(data))
                                       for i in range(n)]).float()
            self._fixed = (z, emb)
        z, emb = self._fixed
        return z.to(self.device), (emb.to(self.device) if emb is not None else None)

    def snapshot_images(self) -> dict:
        """One grid per branch from the EMA generator (the original's count_*_fake_samples<i>)."""
        z, emb = self.fixed_inputs(self.cfg.TRAIN.VIS_COUNT)
        net = self.sampling_net(True)
        was_training = net.training
        net.eval()
        images, _, _ = net(z, emb)
        net.train(was_training)
        return {f"fake{size}": (img, 8) for size, img in zip(self.sizes, images)}

    def generate(self, n: int, seed: int = 0, ema: bool = True) -> torch.Tensor:
        """n images of the last branch; conditional models use evaluation-split captions."""
        return generate_images(self, n, seed, ema)[-1]


def build(cfg, device) -> StackGAN2Trainer:
    return StackGAN2Trainer(cfg, device)
