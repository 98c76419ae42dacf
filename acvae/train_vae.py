"""cvae (conditional VAE) and cvaegan (conditional VAE-GAN, "CVAE-GAN") on CelebA.

cvae, one update per iteration: encoder MSE + alpha*KL, decoder MSE, prior alpha*KL, where
KL = KL(q(z|x,y) || p(z|y)). The original stepped the prior with an undefined optimiser state
(fresh Adam state every call: a sign-like step of ~1e-3 at the default lr 0.001, whatever
TRAIN.LR); that is the default, FIX.CVAE_PRIOR_ADAM: true gives the prior a real Adam at LR.

cvaegan, three updates per iteration (docs/acvae.md, "What one iteration does"):
  vae  encoder (+ from_rgb_encoder) with MSE + alpha*KL only (never the GAN gradient), prior with
       alpha*KL;
  dec  decoder and to_rgb with MSE(x_rec) + beta*BCE(D(x_rec), 1) + beta*BCE(D(x_prior), 1), the
       prior sample drawn after the prior's update and without gradient into the prior;
  D    from_rgb and D on the mixed batch (real, mismatched, x_rec, x_prior) with margin gating
       and adam_gan's warm-up.
"""
from __future__ import annotations

import torch

from acvae import losses
from acvae.base import FamilyTrainer, Group, shared_mean
from acvae.decoders import FCDecoder, MLPPrior
from acvae.discriminators import FlatDiscriminator
from acvae.encoders import W, FCEncoder
from acvae.modules import frozen_bn_stats
from common import logging as log
from common.trainer import Phase


def sample_gaussian(mu, logvar, gen=None, noise=None):
    """mu + exp(logvar / 2) * eps, eps ~ N(0, I) (the Sampler module)."""
    if noise is None:
        noise = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * noise


class CVAETrainer(FamilyTrainer):
    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        C, z, A, t = self.C, self.z, self.A, cfg.TRAIN
        n = W * W * z
        self.nets["encoder"] = FCEncoder(C, z, A, self.eps, self.mom, self.bias,
                                         image_input=True).to(device)
        self.nets["decoder"] = FCDecoder(C, z, A, self.eps, self.mom, self.bias, rgb=True).to(device)
        self.nets["prior"] = MLPPrior(z, A, small_init=True, shape=(n,)).to(device)
        prior = (Group("prior", self.nets["prior"], t.LR) if cfg.FIX.CVAE_PRIOR_ADAM else
                 Group("prior", self.nets["prior"], 1e-3, fresh_state=True, decay=False))
        self.make_optimizer("G", [Group("encoder", self.nets["encoder"], t.LR),
                                  Group("decoder", self.nets["decoder"], t.LR), prior])

    def phases(self):
        return [Phase("vae", self.vae_step, ["G"])]

    def vae_step(self, batch):
        x, y = batch["image"], batch["attributes"]
        mu, logvar = self.nets["encoder"](x, y)
        recon = self.nets["decoder"](sample_gaussian(mu, logvar), y)
        mu_p, logvar_p = self.nets["prior"](y)
        kl = losses.gaussian_kl(mu, logvar, mu_p, logvar_p)
        pix = losses.mse(recon, x)
        log.report("vae/mse", pix)
        log.report("vae/kl", kl)
        return pix + self.cfg.TRAIN.ALPHA * kl

    def noise_shape(self):
        return (W * W * self.z,)

    def reconstruct(self, images, attrs):
        mu, logvar = self.nets["encoder"](images, attrs)
        return self.nets["decoder"](sample_gaussian(mu, logvar), attrs)

    def sample_images(self, attrs, gen, noise=None):
        mu_p, logvar_p = self.nets["prior"](attrs)
        noise = self.randn(len(attrs), gen) if noise is None else noise
        return self.nets["decoder"](sample_gaussian(mu_p, logvar_p, noise=noise), attrs)


class CVAEGANTrainer(FamilyTrainer):
    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        C, z, A, t, m = self.C, self.z, self.A, cfg.TRAIN, self.lr_mult()
        eps, mom, bias = self.eps, self.mom, self.bias
        n = W * W * z
        rgb = self.rgb_blocks(encoder_final_relu=True)
        nets = {"enc_rgb": rgb["enc_rgb"], "encoder": FCEncoder(C, z, A, eps, mom, bias),
                "decoder": FCDecoder(C, z, A, eps, mom, bias), "to_rgb": rgb["to_rgb"],
                "prior": MLPPrior(z, A, small_init=True, shape=(n,)), "from_rgb": rgb["from_rgb"],
                "disc": FlatDiscriminator(C, z, A, C, bias)}
        for name, net in nets.items():
            self.nets[name] = net.to(device)
        b1 = t.BETA1
        self.make_optimizer("E", [Group("enc_rgb", self.nets["enc_rgb"], t.LR),
                                  Group("encoder", self.nets["encoder"], m * t.LR),
                                  Group("prior", self.nets["prior"], m * t.LR)])
        self.make_optimizer("G", [Group("decoder", self.nets["decoder"], m * t.LR),
                                  Group("to_rgb", self.nets["to_rgb"], t.LR)])
        self.make_optimizer("D", [Group("from_rgb", self.nets["from_rgb"], t.LR / 2, b1),
                                  Group("disc", self.nets["disc"], m * t.LR / 2, b1)])
        self._z = self._recon = self._sample = None

    def phases(self):
        return [Phase("vae", self.vae_step, ["E"]), Phase("dec", self.dec_step, ["G"]),
                Phase("D", self.d_step, ["D"])]

    def d_prob(self, x, y):
        return self.nets["disc"](self.nets["from_rgb"](x), y)

    def vae_step(self, batch):
        x, y = batch["image"], batch["attributes"]
        mu, logvar = self.nets["encoder"](self.rgb_in(x), y)
        z = sample_gaussian(mu, logvar)
        recon = self.rgb_out(self.nets["decoder"](z, y))
        mu_p, logvar_p = self.nets["prior"](y)
        kl = losses.gaussian_kl(mu, logvar, mu_p, logvar_p)
        pix = losses.mse(recon, x)
        self._z, self._recon = z.detach(), recon.detach()
        log.report("vae/mse", pix)
        log.report("vae/kl", kl)
        return {"E": pix + self.cfg.TRAIN.ALPHA * kl}     # gradients for E's modules only

    def dec_step(self, batch):
        """The decoder's gradient comes from the reconstruction of the `vae` step (re-run with
        the same z and unchanged weights; BN statistics are not counted twice) and from a prior
        sample drawn after the prior's update."""
        x, y, beta = batch["image"], batch["attributes"], self.cfg.TRAIN.BETA
        with frozen_bn_stats(self.nets["decoder"], self.nets["to_rgb"]):
            recon = self.rgb_out(self.nets["decoder"](self._z, y))
        ones = torch.ones(len(x), device=x.device)
        with torch.no_grad():
            mu_p, logvar_p = self.nets["prior"](y)
        sample = self.rgb_out(self.nets["decoder"](sample_gaussian(mu_p, logvar_p), y))
        gan = losses.bce(self.d_prob(recon, y), ones) + losses.bce(self.d_prob(sample, y), ones)
        self._sample = sample.detach()
        log.report("dec/gan", gan)
        return {"G": losses.mse(recon, x) + beta * gan}

    def d_step(self, batch):
        x, y, t = batch["image"], batch["attributes"], self.cfg.TRAIN
        images, labels = losses.discriminator_batch(x, self._recon, self._sample, t.FAKE_LABEL)
        p = self.d_prob(images, y)
        loss = losses.bce(p, labels)
        erate = shared_mean(losses.error_rate(p, labels))
        gated = bool(erate < t.MARGIN)
        log.report("D/error_rate", erate)
        log.report("D/updated", float(not gated))
        for group in ("from_rgb", "disc"):
            self.optimizers["D"].set_mode(group, "gan_skip" if gated else "gan")
        return {} if gated else {"D": loss}

    def noise_shape(self):
        return (W * W * self.z,)

    def reconstruct(self, images, attrs):
        mu, logvar = self.nets["encoder"](self.rgb_in(images, full=True), attrs)
        return self.rgb_out(self.nets["decoder"](sample_gaussian(mu, logvar), attrs), full=True)

    def sample_images(self, attrs, gen, noise=None):
        mu_p, logvar_p = self.nets["prior"](attrs)
        noise = self.randn(len(attrs), gen) if noise is None else noise
        h = self.nets["decoder"](sample_gaussian(mu_p, logvar_p, noise=noise), attrs)
        return self.rgb_out(h, full=True)
