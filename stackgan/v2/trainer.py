"""StackGAN++ (StackGAN-v2) for the common loop: the trainer.

One iteration, as in hanzhanggit/StackGAN-v2 (docs/stackgan_v2.md, "What one iteration does"):
one G forward with fresh noise, then every branch discriminator D_i steps once on the same
(detached) fakes with its own Adam, then G steps once against all of them (plus KL and colour
consistency). The common loop keeps the moving average of G's parameters as the network `G_ema`
(decay TRAIN.EMA_DECAY), which sampling and evaluation use. The original also wrote that average
back into the live generator at every snapshot, which then trained on from the average;
TRAIN.EMA_WRITE_BACK does the same (on by default: it shaped the released models; False keeps
the live G undisturbed). The loop does the copy (common.trainer.write_back_ema); this trainer
only says when (`ema_write_back_due`). The config is stackgan/v2/config.py; TRAIN.FLAG False
is stackgan/v2/model.py.
"""
from __future__ import annotations

import torch

from common import dist
from common.data import seeded_rngs
from common.logging import report
from common.trainer import Phase, Trainer
from stackgan.losses import kl_loss
from stackgan.v2 import data, losses, networks
from stackgan.v2.config import NAME
from stackgan.v2.sampling import generate_images
from stackgan.v2.weights import load_start_weights


class StackGANv2Trainer(Trainer):
    name = NAME
    generator = "G"

    def __init__(self, cfg, device, with_discriminators: bool = True):
        super().__init__(cfg, device)
        self.conditional = bool(cfg.GAN.B_CONDITION)
        self.branches = cfg.TREE.BRANCH_NUM
        self.sizes = data.branch_sizes(cfg.TREE.BASE_SIZE, self.branches)
        self.batch_size = cfg.TRAIN.BATCH_SIZE * dist.world_size()
        self.epochs = cfg.TRAIN.MAX_EPOCH
        self.nets["G"] = networks.build_generator(cfg.GAN, self.branches,
                                                  cfg.TEXT.DIMENSION).to(device)
        self.add_ema("G", cfg.TRAIN.EMA_DECAY)
        betas = (0.5, 0.999)
        self.optimizers["G"] = torch.optim.Adam(self.nets["G"].parameters(),
                                                cfg.TRAIN.GENERATOR_LR, betas=betas)
        if with_discriminators:  # evaluation builds none (the three hold 96M weights)
            for i, d in enumerate(networks.build_discriminators(cfg.GAN, self.branches)):
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
            self._train_set = data.training_set(self.cfg, self.sizes)
        return self._train_set

    def start_fresh(self) -> None:
        load_start_weights(self)

    # ---- one iteration ----------------------------------------------------------------------
    def phases(self):
        d_names = [f"D{i}" for i in range(self.branches)]
        return [Phase("D", self.d_step, d_names), Phase("G", self.g_step, ["G"])]

    def d_step(self, batch: dict) -> dict:
        real = batch["images"]
        z = torch.randn(real[0].shape[0], self.cfg.GAN.Z_DIM, device=self.device)
        fakes, mu, logvar = self.nets["G"](z, batch["embedding"] if self.conditional else None)
        self._step = {"fakes": fakes, "mu": mu, "logvar": logvar}
        totals = {}
        lambda_u, form = self.cfg.TRAIN.COEFF.UNCOND_LOSS, self.cfg.TRAIN.LOSS
        for i in range(self.branches):
            d = self.nets[f"D{i}"]
            if self.conditional:
                parts = losses.d_loss_conditional(d, real[i], batch["wrong_images"][i],
                                                  fakes[i].detach(), mu.detach(), lambda_u, form)
            else:
                parts = losses.d_loss_unconditional(d, real[i], fakes[i].detach(), form)
            for name, value in parts.items():
                if name != "total":
                    report(f"D{i}/{name}", value)
            totals[f"D{i}"] = parts["total"]
        return totals

    def g_step(self, batch: dict) -> dict:
        fakes, mu, logvar = self._step["fakes"], self._step["mu"], self._step["logvar"]
        coeff = self.cfg.TRAIN.COEFF
        total = 0.0
        for i in range(self.branches):
            adv = losses.g_adversarial(self.nets[f"D{i}"], fakes[i], mu, coeff.UNCOND_LOSS,
                                       self.cfg.TRAIN.LOSS)
            report(f"G/adv{i}", adv)
            total = total + adv
        if coeff.COLOR_LOSS > 0:
            for name, value in losses.color_consistency(fakes, coeff.COLOR_LOSS).items():
                report(f"G/{name}", value)
                total = total + value
        if self.conditional:
            kl = kl_loss(mu, logvar)
            report("G/kl", kl)
            total = total + coeff.KL * kl
        self._step = {}
        return {"G": total}

    def ema_write_back_due(self) -> bool:
        """The original's write-back: after the iteration that ends a snapshot interval (after its
        EMA update) the average's parameters are copied into the live G, which trains on from
        them; BN buffers and G's Adam moments stay as they were (load_params in the original).
        The loop does it before the next iteration's phases, so the checkpoint of the snapshot
        still holds the live G of before, and a resume from it writes back the same way."""
        interval, it = self.cfg.TRAIN.SNAPSHOT_INTERVAL, self.progress.iteration
        return bool(self.cfg.TRAIN.EMA_WRITE_BACK and it > 0 and it % interval == 0)

    # ---- pictures ---------------------------------------------------------------------------
    def fixed_inputs(self, n: int):
        """Fixed noise and (conditional) the captions of the first n training items."""
        if self._fixed is None or self._fixed[0].shape[0] != n:
            g = torch.Generator().manual_seed(self.cfg.RUN.SEED)
            z = torch.randn(n, self.cfg.GAN.Z_DIM, generator=g)
            emb = None
            if self.conditional:
                dataset = self.dataset()
                with seeded_rngs(self.cfg.RUN.SEED):  # a fixed caption per picture
                    emb = torch.stack([dataset.pick_embedding(i % len(dataset))
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
