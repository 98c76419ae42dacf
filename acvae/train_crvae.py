"""crvaegan (channel-recurrent conditional VAE-GAN) and acvaegan (its attentive version).

Three updates per iteration, in the original's order (docs/acvae.md, "What one iteration does"):
  recon  x -> q(z|x, y_t) -> u = var_dec(y_t, z) -> x_rec. The generator side (encoders,
         decoders, prior, attention) takes MSE + KL_w + kappa*Lz + beta*BCE(D(x_rec), 1)
         (+ rho*L_ds + rho_ent*H for the attention); the Q side (from_rgb, gan_feature, recon)
         takes Lz unscaled. Lz is the v-weighted MSE between recon(features(x_rec)) and u
         (a constant target). KL_w weighs the first 3 of 8 steps by ALPHA1, the rest by ALPHA2.
  sample z ~ p(z|y_t) after the prior's update (no gradient into the prior); the decoder side
         and the attention (through var_dec only) take kappa*Lz + beta*BCE(D(x_prior), 1), the
         Q side Lz again.
  D      the mixed batch (real, mismatched, x_prior, x_rec) with margin gating.
y_t = y for every step (crvaegan) or a_t * y with the learned attention (acvaegan); D and Q
always see the raw y.

What the original did when the margin gate closes (FIX.GATE_WHOLE_D: false, the default):
  acvaegan:            only the D head skips; gan_feature and from_rgb take their D step.
  crvaegan stage 1:    D head and gan_feature skip; from_rgb (a typo kept its flag on) takes an
                       adam_gan step with the stale gradient of the sample step's Lz.
  crvaegan stage 2:    D head skips; gan_feature and from_rgb take Adam steps with the stale
                       gradients of the sample step's Lz.
FIX.GATE_WHOLE_D: true skips every D-side update when gated.
"""
from __future__ import annotations

import torch

from acvae import losses
from acvae.base import FamilyTrainer, Group, shared_mean
from acvae.decoders import (LatentMapDecoder, LSTMPrior, MLPPrior, RecurrentDecoder,
                            StaticAttention, attention_entropy, doubly_stochastic_loss,
                            replicate_steps)
from acvae.discriminators import DiscHead, GANFeature, LatentRecon
from acvae.encoders import W, RecurrentEncoder
from acvae.train_vae import sample_gaussian
from common import logging as log
from common.trainer import Phase


class CRVAEGANTrainer(FamilyTrainer):
    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        C, z, A, T, t = self.C, self.z, self.A, self.T, cfg.TRAIN
        eps, mom, bias = self.eps, self.mom, self.bias
        self.attentive = self.variant == "acvaegan"
        rgb = self.rgb_blocks(encoder_final_relu=False)
        nets = {"enc_rgb": rgb["enc_rgb"], "encoder": RecurrentEncoder(C, z, A, T, eps, mom, bias),
                "var_decoder": RecurrentDecoder(C, z, A, T),
                "decoder": LatentMapDecoder(C, z, eps, mom, bias), "to_rgb": rgb["to_rgb"],
                "prior": LSTMPrior(z, A, T) if self.attentive else
                MLPPrior(z, A, small_init=False, shape=(z, W, W)),
                "from_rgb": rgb["from_rgb"], "features": GANFeature(C, z, A, T, bias),
                "recon": LatentRecon(C, z, eps, mom, bias), "disc": DiscHead(C, z)}
        if self.attentive:
            nets["attention"] = StaticAttention(T, A)
        for name, net in nets.items():
            self.nets[name] = net.to(device)
        self.build_optimizers()
        self.kl_weight = losses.kl_channel_weights(z, T, t.ALPHA1, t.ALPHA2, device)
        self.latrec_weight = losses.latrec_channel_weights(z, T, device)
        self.stale: dict = {}
        if not cfg.FIX.GATE_WHOLE_D and not self.attentive:
            stale_nets = ("from_rgb",) if self.stage == 1 else ("from_rgb", "features")
            for p in (p for n in stale_nets for p in self.nets[n].parameters()):
                p.register_post_accumulate_grad_hook(self._remember_grad)
        self._recon = self._sample = None

    def _remember_grad(self, p: torch.Tensor) -> None:
        self.stale[p] = p.grad.detach().clone()

    def build_optimizers(self) -> None:
        """Learning rates and beta1 of the original's optimState tables (docs/acvae.md,
        "Learning rates and beta1 per module")."""
        t, T, n, m = self.cfg.TRAIN, self.T, self.nets, self.lr_mult()
        lr, b1, clip, ac = t.LR, t.BETA1, t.GRAD_CLIP, self.attentive
        enc = n["encoder"]
        generator = [Group("enc_rgb", n["enc_rgb"], lr),
                     Group("encoder", [enc.trunk, enc.attr, enc.mean], m * lr),
                     Group("var_encoder", enc.var, m * lr / T, clip=clip),
                     Group("var_decoder", n["var_decoder"], m * lr / T, clip=clip),
                     Group("decoder", n["decoder"], m * lr),
                     Group("to_rgb", n["to_rgb"], lr),
                     Group("prior", n["prior"], m * lr / T if ac else m * lr, clip=clip if ac else 0.0)]
        if ac:
            generator.append(Group("attention", n["attention"], m * lr))
        self.make_optimizer("G", generator)
        self.make_optimizer("Q", [Group("from_rgb", n["from_rgb"], lr / 2, b1),
                                  Group("features", n["features"], m * lr / 2, b1 if ac else 0.9),
                                  Group("recon", n["recon"], m * lr / 2 if ac else m * lr,
                                        b1 if ac else 0.9)])
        self.make_optimizer("D", [Group("disc", n["disc"], m * lr / 2 if ac else m * lr,
                                        b1 if ac else 0.9)])

    def phases(self):
        return [Phase("recon", self.recon_step, ["G", "Q"]),
                Phase("sample", self.sample_step, ["G", "Q"]),
                Phase("D", self.d_step, ["D", "Q"])]

    # ---- pieces ---------------------------------------------------------------------------------
    def steps(self, y: torch.Tensor) -> torch.Tensor:
        """y_t per time step: a_t * y (acvaegan) or y (crvaegan), B x T x A."""
        if self.attentive:
            return StaticAttention.attend(self.nets["attention"](), y)
        return replicate_steps(y, self.T)

    def prior(self, y: torch.Tensor, y_steps: torch.Tensor):
        return self.nets["prior"](y_steps if self.attentive else y)

    def decode(self, z, y_steps, full=False):
        u = self.nets["var_decoder"](z, y_steps)
        return u, self.rgb_out(self.nets["decoder"](u), full)

    def feature(self, x, y):
        return self.nets["features"](self.nets["from_rgb"](x), y)

    def latent_recon(self, feature, u):
        return losses.weighted_mse(self.nets["recon"](feature), u.detach(), self.latrec_weight)

    # ---- phases ---------------------------------------------------------------------------------
    def recon_step(self, batch):
        x, y, t = batch["image"], batch["attributes"], self.cfg.TRAIN
        y_steps = self.steps(y)
        mu, logvar = self.nets["encoder"](self.rgb_in(x), y_steps)
        u, recon = self.decode(sample_gaussian(mu, logvar), y_steps)
        mu_p, logvar_p = self.prior(y, y_steps)
        kl = losses.gaussian_kl(mu, logvar, mu_p, logvar_p, self.kl_weight)
        pix = losses.mse(recon, x)
        feature = self.feature(recon, y)
        latrec = self.latent_recon(feature, u)
        gan = losses.bce(self.nets["disc"](feature), torch.ones(len(x), device=x.device))
        gen = pix + kl + t.KAPPA * latrec + t.BETA * gan
        if self.attentive:
            a = self.nets["attention"]()
            ds, ent = doubly_stochastic_loss(a), attention_entropy(a)
            gen = gen + t.RHO * ds + t.RHO_ENT * ent
            log.report("attention/doubly_stochastic", ds)
            log.report("attention/entropy", ent)
        self._recon = recon.detach()
        for name, value in (("mse", pix), ("kl_weighted", kl), ("latrec", latrec), ("gan", gan)):
            log.report(f"recon/{name}", value)
        return {"G": gen, "Q": latrec}

    def sample_step(self, batch):
        x, y, t = batch["image"], batch["attributes"], self.cfg.TRAIN
        y_steps = self.steps(y)
        with torch.no_grad():
            mu_p, logvar_p = self.prior(y, y_steps)
        u, sample = self.decode(sample_gaussian(mu_p, logvar_p), y_steps)
        feature = self.feature(sample, y)
        latrec = self.latent_recon(feature, u)
        gan = losses.bce(self.nets["disc"](feature), torch.ones(len(x), device=x.device))
        self._sample = sample.detach()
        log.report("sample/latrec", latrec)
        log.report("sample/gan", gan)
        return {"G": t.KAPPA * latrec + t.BETA * gan, "Q": latrec}

    def d_step(self, batch):
        x, y, t = batch["image"], batch["attributes"], self.cfg.TRAIN
        images, labels = losses.discriminator_batch(x, self._recon, self._sample, t.FAKE_LABEL)
        p = self.nets["disc"](self.feature(images, y))
        loss = losses.bce(p, labels)
        erate = shared_mean(losses.error_rate(p, labels))
        gated = bool(erate < t.MARGIN)
        log.report("D/error_rate", erate)
        log.report("D/updated", float(not gated))
        log.report("D/bce", loss)
        D, Q = self.optimizers["D"], self.optimizers["Q"]
        adam_gan_q = not self.attentive and self.stage == 1   # crvaegan stage 1: all adam_gan
        D.set_mode("disc", "gan_skip" if gated else "gan")
        if not gated:
            if adam_gan_q:
                Q.set_mode("features", "gan")
                Q.set_mode("from_rgb", "gan")
            return {"D": loss, "Q": loss}
        if self.cfg.FIX.GATE_WHOLE_D:
            if adam_gan_q:
                Q.set_mode("features", "gan_skip")
                Q.set_mode("from_rgb", "gan_skip")
            return {}
        if self.attentive:
            return {"Q": loss}
        if adam_gan_q:
            Q.set_mode("features", "gan_skip")
            Q.set_mode("from_rgb", "gan")
        return {"Q": self.stale_surrogate(("from_rgb",) if self.stage == 1 else
                                          ("from_rgb", "features"))}

    def stale_surrogate(self, names) -> torch.Tensor:
        """A loss whose gradient is the last gradient the networks `names` received (the
        sample step's Lz): the original stepped them with it when the gate was closed."""
        terms = [(p * self.stale[p]).sum() for n in names for p in self.nets[n].parameters()
                 if p in self.stale]
        return torch.stack(terms).sum()

    # ---- sampling -------------------------------------------------------------------------------
    def noise_shape(self):
        return (self.z, W, W)

    def reconstruct(self, images, attrs):
        y_steps = self.steps(attrs)
        mu, logvar = self.nets["encoder"](self.rgb_in(images, full=True), y_steps)
        return self.decode(sample_gaussian(mu, logvar), y_steps, full=True)[1]

    def sample_images(self, attrs, gen, noise=None):
        y_steps = self.steps(attrs)
        mu_p, logvar_p = self.prior(attrs, y_steps)
        noise = self.randn(len(attrs), gen) if noise is None else noise
        return self.decode(sample_gaussian(mu_p, logvar_p, noise=noise), y_steps, full=True)[1]

    def extra_pictures(self):
        if not self.attentive:
            return {}
        from acvae.pictures import attention_picture
        return {"attention": (attention_picture(self.nets["attention"]().detach()), 1)}
