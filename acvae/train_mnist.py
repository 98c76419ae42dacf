"""crVAE MNIST training (VARIANT mnist_baseline | mnist_conv | mnist_lstm) and its test set.

Loss = BCE(x_rec, x) (mean per pixel) + ALPHA * KL(q(z|x) || N(0, I)) (summed, per example),
ALPHA = 1e-3 in the README. Every mini-batch is binarised afresh: x = 1[p >= U(0, 1)] for the
pixel intensities p in [0, 1] (dynamic MNIST). The lstm latent's LSTMs train at LR / T with
their gradients clamped to +-GRAD_CLIP.

The original evaluated on Larochelle's static binarised test set (binarized_mnist_test.amat,
not in the official MNIST files). `test_images` reads that file when NLL.STATIC_TEST names it
(.amat text or the crVAE repo's .t7); otherwise it binarises the official MNIST test digits once
with the seeded draw NLL.BINARIZE_SEED (a fixed stochastic binarisation, stated with the result).

Model selection (NLL.SELECT_ON), as main_mnist.lua: after every epoch the EPOCH_SAMPLES-sample
NLL of the test set (decoder probabilities clamped to 1e-10 there, 1e-5 in the final
evaluation), the best epoch kept by the loop as checkpoints/best.pt. That selects on the test
set; `heldout` holds NLL.HELDOUT training digits out of training (a seeded split, binarised once)
and selects on them instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from acvae import losses
from acvae.base import FamilyTrainer, Group
from acvae.encoders import W
from acvae.mnist import MNISTDecoder, MNISTEncoder
from acvae.nll import bernoulli_log_likelihood, evaluate
from acvae.train_vae import sample_gaussian
from common import data
from common import logging as log
from common.data.mnist import load_mnist
from common.errors import ConfigError, DataError
from common.trainer import EpochScore, Phase

EPOCH_CLAMP = 1e-10   # the per-epoch evaluation's clamp (val() in train_test_*_mnist.lua)


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


def heldout_split(cfg) -> tuple[list[int], torch.Tensor]:
    """(indices of the training digits still trained on, the NLL.HELDOUT held-out digits
    binarised once), both from the seeded draw NLL.BINARIZE_SEED."""
    images, _ = load_mnist(cfg.DATA.ROOT, cfg.DATA.SPLIT)   # what dataset() trains on
    n = cfg.NLL.HELDOUT
    if n >= len(images):
        raise ConfigError(f"NLL.HELDOUT {n} must be below the {len(images)} training digits",
                          "NLL.HELDOUT")
    gen = torch.Generator().manual_seed(cfg.NLL.BINARIZE_SEED)
    order = torch.randperm(len(images), generator=gen)
    held = binarize(images[order[:n]].float().div(255).unsqueeze(1), gen)
    return sorted(order[n:].tolist()), held


def selection_images(cfg) -> tuple[torch.Tensor, str]:
    """The digits the per-epoch NLL is computed on, and their description."""
    if cfg.NLL.SELECT_ON == "heldout":
        images = heldout_split(cfg)[1]
        how = (f"{len(images)} training digits held out (seed {cfg.NLL.BINARIZE_SEED}), "
               "binarised once")
    else:
        images, how = test_images(cfg)
    if not cfg.NLL.FULL_TEST:
        images = images[:len(images) // cfg.NLL.BATCH_SIZE * cfg.NLL.BATCH_SIZE]
    return images, how


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
        self._selection_set: torch.Tensor | None = None

    def dataset(self):
        if self.cfg.NLL.SELECT_ON != "none":
            self.selection_set()  # read and check before training, not after the first epoch
        dataset = data.build(self.cfg.DATA)
        if self.cfg.NLL.SELECT_ON != "heldout":
            return dataset
        subset = torch.utils.data.Subset(dataset, heldout_split(self.cfg)[0])
        subset.uses_rng = getattr(dataset, "uses_rng", True)
        return subset

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
    def selection_set(self) -> torch.Tensor:
        """The digits of the per-epoch NLL (NLL.SELECT_ON), read once, on the device."""
        if self._selection_set is None:
            nll = self.cfg.NLL
            images, how = selection_images(self.cfg)
            if len(images) == 0:
                raise DataError(f"NLL.BATCH_SIZE: {nll.BATCH_SIZE} is more than the images "
                                f"to select on ({how}); only whole batches are used")
            self._selection_set = images.to(self.device)
            log.log(f"model selection: {nll.EPOCH_SAMPLES}-sample NLL after every epoch on "
                    f"{len(images)} images ({how})")
        return self._selection_set

    def epoch_score(self) -> EpochScore | None:
        """The per-epoch NLL that selects checkpoints/best.pt (NLL.SELECT_ON), in eval mode."""
        nll = self.cfg.NLL
        if nll.SELECT_ON == "none":
            return None
        k = nll.EPOCH_SAMPLES
        with self.evaluating():
            result = evaluate(self.encode, lambda x, z: self.log_likelihood(x, z, EPOCH_CLAMP),
                              self.selection_set(), k, nll.BATCH_SIZE, min(nll.CHUNK, k),
                              seed=self.progress.iteration, device=self.device)
        return EpochScore(f"nll/{nll.SELECT_ON}_k{k}", result["nll"], lower_is_better=True)

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

