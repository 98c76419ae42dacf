"""StackGAN v1 (ICCV 2017, PyTorch COCO code): Stage-I and Stage-II training through the loop.

One iteration (docs/stackgan.md, "Faithful choices and switches"): G makes the fakes once; D
steps on real, wrong and fake pairs; G steps on the same fakes (+ KL). Per-epoch schedules: both
learning rates halve every TRAIN.LR_DECAY_EPOCH, numbered snapshots every
TRAIN.SNAPSHOT_INTERVAL epochs. The config is stackgan/v1/config.py; sampling without training
(TRAIN.FLAG: False) is stackgan/v1/model.py.
"""
from __future__ import annotations

import torch

from common import dist
from common.errors import ConfigError
from common.logging import log, report
from common.trainer import Phase, Trainer
from stackgan import text_data
from stackgan.losses import kl_loss
from stackgan.v1 import losses, sampling, weights
from stackgan.v1.config import NAME
from stackgan.v1.networks import networks_from_config


class StackGANv1Trainer(Trainer):
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
        return text_data.training_pairs(
            cfg, "train", [cfg.IMSIZE], resize="square",
            wrong="shift" if cfg.TRAIN.WRONG == "dataset" else "none",
            num_embedding=cfg.TRAIN.NUM_EMBEDDING)

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
        kl = kl_loss(mu, logvar)
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


def build(cfg, device) -> StackGANv1Trainer:
    return StackGANv1Trainer(cfg, device)
