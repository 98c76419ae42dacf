"""crVAE MNIST training (VARIANT mnist_baseline | mnist_conv | mnist_lstm) and its test set.

Loss = BCE(x_rec, x) (mean per pixel) + ALPHA * KL(q(z|x) || N(0, I)) (summed, per example),
ALPHA = 1e-3 in the README. Every mini-batch is binarised afresh: x = 1[p >= U(0, 1)] for the
pixel intensities p in [0, 1] (dynamic MNIST). The lstm latent's LSTMs train at LR / T with
their gradients clamped to +-GRAD_CLIP.

The original evaluated on Larochelle's static binarised test set (binarized_mnist_test.amat,
not in the official MNIST files). `test_images` reads that file when NLL.STATIC_TEST names it
(.amat text or the crVAE repo's .t7); otherwise it binarises the official MNIST test digits once
with the seeded draw NLL.BINARIZE_SEED (a fixed stochastic binarisation, stated with the result).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from acvae import losses
from acvae.base import FamilyTrainer, Group
from acvae.encoders import W
from acvae.mnist import MNISTDecoder, MNISTEncoder
from acvae.nll import bernoulli_log_likelihood
from acvae.train_vae import sample_gaussian
from common import data
from common import logging as log
from common.data.mnist import load_mnist
from common.errors import DataError
from common.trainer import Phase


def binarize(x01: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """1[x >= U(0, 1)] elementwise (the original's (x - rand):ge(0))."""
    u = torch.rand(x01.shape, generator=gen, device=x01.device, dtype=x01.dtype)
    return (x01 - u >= 0).to(x01.dtype)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Images of the mnist data kind, in [-1, 1], back to intensities in [0, 1]."""
    return ((images + 1) * 0.5).clamp(0, 1)


def read_static_binarized(path: str | Path) -> torch.Tensor:
    """Larochelle's binarized_mnist_test (.amat: one line of 784 0/1 per image; or the crVAE
    repo's .t7 tensor) -> N x 1 x 28 x 28 float."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: static binarised MNIST test file not found (NLL.STATIC_TEST)")
    if path.suffix == ".t7":
        import torchfile
        array = np.asarray(torchfile.load(str(path)), dtype=np.float32)
    else:
        array = np.loadtxt(path, dtype=np.float32)
    if array.ndim < 2 or array[0].size != 784 or not np.isin(array, (0.0, 1.0)).all():
        raise DataError(f"{path}: expected rows of 784 values in {{0, 1}}, got {array.shape}")
    return torch.from_numpy(array.reshape(-1, 1, 28, 28).copy())


def test_images(cfg) -> tuple[torch.Tensor, str]:
    """(binary N x 1 x 28 x 28 test set, a description of how it was binarised)."""
    if cfg.NLL.STATIC_TEST:
        return read_static_binarized(cfg.NLL.STATIC_TEST), f"static file {cfg.NLL.STATIC_TEST}"
    images, _ = load_mnist(cfg.DATA.ROOT, "test")
    gen = torch.Generator().manual_seed(cfg.NLL.BINARIZE_SEED)
    x = binarize(images.float().div(255).unsqueeze(1), gen)
    return x, f"official MNIST test set binarised once with seed {cfg.NLL.BINARIZE_SEED}"


class MNISTTrainer(FamilyTrainer):
    channels = 1

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.latent = self.variant.split("_", 1)[1]
        t, args = cfg.TRAIN, (self.latent, self.C, self.z, self.T, self.eps, self.mom, self.bias)
        self.nets["encoder"] = MNISTEncoder(*args).to(device)
        self.nets["decoder"] = MNISTDecoder(*args).to(device)
        enc, dec = self.nets["encoder"], self.nets["decoder"]
        var_enc = list(enc.var.parameters()) if self.latent == "lstm" else []
        var_dec = dec.var_parameters()
        special = {id(p) for p in var_enc + var_dec}
        groups = [Group("encoder", [p for p in enc.parameters() if id(p) not in special], t.LR),
                  Group("decoder", [p for p in dec.parameters() if id(p) not in special], t.LR)]
        if self.latent == "lstm":
            groups += [Group("var_encoder", var_enc, t.LR / self.T, clip=t.GRAD_CLIP),
                       Group("var_decoder", var_dec, t.LR / self.T, clip=t.GRAD_CLIP)]
        self.make_optimizer("G", groups)

    def dataset(self):
        return data.build(self.cfg.DATA)

    def phases(self):
        return [Phase("vae", self.vae_step, ["G"])]

    def vae_step(self, batch):
        x = binarize(to_unit(batch["image"]))
        mu, logvar = self.nets["encoder"](x)
        probs = self.nets["decoder"](sample_gaussian(mu, logvar))
        rec, kl = losses.bce(probs, x), losses.gaussian_kl(mu, logvar)
        log.report("vae/bce", rec)
        log.report("vae/kl", kl)
        return rec + self.cfg.TRAIN.ALPHA * kl

    # ---- evaluation and pictures ------------------------------------------------------------
    def encode(self, x):
        return self.nets["encoder"](x)

    def log_likelihood(self, x, z, clamp: float = 1e-5):
        return bernoulli_log_likelihood(x, self.nets["decoder"](z), clamp)

    def noise_shape(self):
        return (W * W * self.z,) if self.latent == "baseline" else (self.z, W, W)

    def reconstruct(self, images, attrs):
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.RUN.SEED)
        x = binarize(to_unit(images), gen)
        mu, logvar = self.encode(x)
        return self.nets["decoder"](sample_gaussian(mu, logvar, gen)) * 2 - 1

    def sample_images(self, attrs, gen, noise=None):
        noise = self.randn(len(attrs), gen) if noise is None else noise
        return self.nets["decoder"](noise) * 2 - 1

