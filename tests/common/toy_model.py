"""A tiny DCGAN used to test the common layer (loop, checkpoints, CLI, torchrun).

It is a real, trainable model - just small: 8x8 layered scenes, two phases (D then G), Adam,
an EMA generator, and a switch that poisons the D loss at a chosen iteration to test the
NaN guard. Run it like any model: python tests/common/toy_train.py --cfg ...
"""
import torch
from torch import nn
import torch.nn.functional as F

from common import data
from common.models import ModelSpec
from common.trainer import Phase, Trainer

NAME = "tests.common.toy_model"
DEFAULTS = {
    "DATA": data.defaults("layered_scenes", image_size=8, options={"LENGTH": 256}),
    "TOY": {"NZ": 8, "WIDTH": 8, "BATCH_SIZE": 16, "EPOCHS": 2, "LR": 2e-4,
            "NAN_AT": -1, "EMA": 0.9, "LOSS_DICT": False},
    "RUN": {"WORKERS": 0, "LOG_EVERY": 5, "SAMPLE_EVERY": 0, "CKPT_EVERY": 0},
}


def check_config(cfg):
    from common.errors import ConfigError
    if cfg.TOY.BATCH_SIZE < 1:
        raise ConfigError("TOY.BATCH_SIZE must be positive", "TOY.BATCH_SIZE")


class ToyG(nn.Module):
    def __init__(self, nz, width, channels):
        super().__init__()
        self.net = nn.Sequential(nn.ConvTranspose2d(nz, width * 2, 4, 1, 0), nn.BatchNorm2d(width * 2),
                                 nn.ReLU(), nn.ConvTranspose2d(width * 2, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.net(z[:, :, None, None])


class ToyD(nn.Module):
    def __init__(self, width, channels):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(width, 1, 4, 1, 0))

    def forward(self, x):
        return self.net(x).flatten()


class ToyTrainer(Trainer):
    name = NAME
    cuda_graphs_safe = True  # same kernels every iteration (NAN_AT is a test-only exception)

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        t = cfg.TOY
        self.batch_size, self.epochs, self.nz = t.BATCH_SIZE, t.EPOCHS, t.NZ
        ch = cfg.DATA.CHANNELS
        self.nets["G"] = ToyG(t.NZ, t.WIDTH, ch).to(device)
        self.nets["D"] = ToyD(t.WIDTH, ch).to(device)
        self.add_ema("G", t.EMA)
        for name in ("G", "D"):
            self.optimizers[name] = torch.optim.Adam(self.nets[name].parameters(), t.LR, betas=(0.5, 0.999))

    def phases(self):
        return [Phase("D", self.d_step, ["D"]), Phase("G", self.g_step, ["G"])]

    def d_step(self, batch):
        real = batch["image"]
        fake = self.nets["G"](torch.randn(real.shape[0], self.nz, device=self.device)).detach()
        d_real, d_fake = self.nets["D"](real), self.nets["D"](fake)
        loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        if self.progress.iteration == self.cfg.TOY.NAN_AT:
            loss = loss * float("nan")
        return {"D": loss} if self.cfg.TOY.LOSS_DICT else loss

    def g_step(self, batch):
        fake = self.nets["G"](torch.randn(batch["image"].shape[0], self.nz, device=self.device))
        d_fake = self.nets["D"](fake)
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))

    def generate(self, n, seed=0, ema=True):
        g = torch.Generator(device=self.device).manual_seed(seed)
        z = torch.randn(n, self.nz, generator=g, device=self.device)
        return self.sampling_net(ema)(z)


def build(cfg, device):
    return ToyTrainer(cfg, device)


SPEC = ModelSpec(NAME, DEFAULTS, build, check_config=check_config)
