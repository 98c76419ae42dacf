"""cgan: the conditional GAN baseline of wacv19 (docs/acvae.md, "What one iteration does").

Per iteration, D first:
  D loss = BCE(D(y, x), 1) + 0.5 BCE(D(y, x_prev), 0) + 0.5 BCE(D(y, G(y, n)), 0)
where x_prev is the *previous* mini-batch's real images paired with the current attributes (the
"wrong" pairs); each of the three goes through D as its own batch (batch discrimination sees
them apart). G loss = BCE(D(y, G(y, n')), 1) with fresh noise. No margin gating. The first
mini-batch of every epoch only fills x_prev. The original applied D's Adam step twice with the
same gradient; FIX.CGAN_SINGLE_D_STEP: true applies it once.
"""
from __future__ import annotations

import torch

from acvae import losses
from acvae.base import FamilyTrainer, Group
from acvae.decoders import FCDecoder
from acvae.discriminators import FlatDiscriminator
from acvae.encoders import W
from common import logging as log
from common.trainer import Phase


class CGANTrainer(FamilyTrainer):
    generator = "G"

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        C, z, A, t = self.C, self.z, self.A, cfg.TRAIN
        self.nets["G"] = FCDecoder(C, z, A, self.eps, self.mom, self.bias, rgb=True).to(device)
        self.nets["D"] = FlatDiscriminator(C, z, A, 3, self.bias).to(device)
        self.make_optimizer("G", [Group("G", self.nets["G"], t.LR, 0.9)])
        repeat = 1 if cfg.FIX.CGAN_SINGLE_D_STEP else 2
        self.make_optimizer("D", [Group("D", self.nets["D"], t.LR / 2, t.BETA1, repeat=repeat)])
        self.prev_real: torch.Tensor | None = None
        self._skip = False

    def phases(self):
        return [Phase("D", self.d_step, ["D"]), Phase("G", self.g_step, ["G"])]

    def noise_shape(self):
        return (W * W * self.z,)

    def fake(self, y, noise=None):
        noise = self.randn(len(y), None) if noise is None else noise
        return self.nets["G"](noise, y)

    def d_step(self, batch):
        x, y = batch["image"], batch["attributes"]
        p = self.progress
        first = p.iters_per_epoch > 0 and p.iteration % p.iters_per_epoch == 0
        prev, self.prev_real = self.prev_real, x.detach().clone()
        self._skip = first or prev is None
        if self._skip:
            return None
        ones, zeros = torch.ones(len(x), device=x.device), torch.zeros(len(x), device=x.device)
        D = self.nets["D"]
        p_real, p_wrong = D(x, y), D(prev, y)
        with torch.no_grad():
            fake = self.fake(y)
        p_fake = D(fake, y)
        loss = (losses.bce(p_real, ones) + 0.5 * losses.bce(p_wrong, zeros)
                + 0.5 * losses.bce(p_fake, zeros))
        wrong = ((p_real >= 0.5).float() != 1).sum() + (p_wrong >= 0.5).sum() + (p_fake >= 0.5).sum()
        log.report("D/error_rate", wrong.float() / (3 * len(x)))
        return loss

    def g_step(self, batch):
        if self._skip:
            return None
        y = batch["attributes"]
        p = self.nets["D"](self.fake(y), y)
        return {"G": losses.bce(p, torch.ones(len(y), device=y.device))}   # no D gradients

    def extra_state(self):
        return {"prev_real": self.prev_real.cpu() if self.prev_real is not None else None}

    def load_extra_state(self, state):
        prev = state.get("prev_real")
        self.prev_real = prev.to(self.device) if prev is not None else None

    def sample_images(self, attrs, gen, noise=None):
        noise = self.randn(len(attrs), gen) if noise is None else noise
        return self.nets["G"](noise, attrs)
