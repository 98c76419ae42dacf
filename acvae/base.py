"""What every acVAE-family trainer shares: sizes from the config, the per-module optimisers,
the step learning-rate schedule, the fade-in schedule, the fixed visualisation batch and the
pictures of each sample tick."""
from __future__ import annotations

import abc
from contextlib import contextmanager

import torch
from torch import nn

from acvae import growing
from acvae.decoders import to_rgb
from acvae.discriminators import from_rgb
from acvae.encoders import from_rgb_encoder
from acvae.growing import Fade, check_stage1, fade_alpha, load_stage1
from acvae.optim import TorchAdam
from common import data, dist
from common import logging as log
from common.errors import ConfigError, DataError
from common.trainer import Trainer


def shared_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a statistic over all processes (the D gate must close on every rank alike,
    or their gradient all-reduces would not match)."""
    if dist.world_size() > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= dist.world_size()
    return value


class FixedBatch(nn.Module):
    """The validation images and attributes shown at every tick (and the attributes `generate`
    conditions on). Kept as buffers so a checkpoint carries them: sampling needs no data."""

    def __init__(self, n: int, channels: int, size: int, attr_dim: int):
        super().__init__()
        self.register_buffer("images", torch.zeros(n, channels, size, size, dtype=torch.float16))
        self.register_buffer("attributes", torch.zeros(n, max(attr_dim, 1)))
        self.register_buffer("filled", torch.zeros((), dtype=torch.bool))

    def fill(self, images: torch.Tensor, attributes: torch.Tensor | None) -> None:
        n = min(len(images), len(self.images))
        self.images[:n] = images[:n].to(self.images)
        if attributes is not None:
            self.attributes[:n] = attributes[:n].to(self.attributes)
        self.filled.fill_(True)


class Group:
    """One module's optimiser settings (a parameter group of a TorchAdam); `modules` is a
    module, or a list of modules and parameters."""

    def __init__(self, name: str, modules, lr: float, beta1: float = 0.9, clip: float = 0.0,
                 **extra):
        self.name, self.lr, self.beta1, self.clip, self.extra = name, lr, beta1, clip, extra
        self.modules = modules if isinstance(modules, (list, tuple)) else [modules]

    def as_dict(self) -> dict:
        params = [p for m in self.modules
                  for p in ([m] if isinstance(m, nn.Parameter) else m.parameters())]
        return {"params": params, "name": self.name, "lr": self.lr, "beta1": self.beta1,
                "clip": self.clip, **self.extra}


class FamilyTrainer(Trainer):
    """Base of the CelebA and MNIST trainers (registry name "acvae")."""

    name = "acvae"
    channels = 3

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        m, t = cfg.MODEL, cfg.TRAIN
        self.variant, self.stage = m.VARIANT, m.STAGE
        self.batch_size, self.epochs = t.BATCH_SIZE, t.EPOCHS
        self.C, self.z, self.T, self.A = m.BASE_CHANNELS, m.LATENT_CHANNELS, m.TIME_STEPS, m.ATTR_DIM
        self.eps, self.mom, self.bias = m.BN_EPS, m.BN_MOMENTUM, m.CONV_BIAS
        self.size = cfg.DATA.IMAGE_SIZE
        self.nets["vis"] = FixedBatch(cfg.VIS.N, self.channels, self.size, self.A).to(device)
        self._shown_originals = False

    # ---- optimisers and schedules -----------------------------------------------------------
    def make_optimizer(self, name: str, groups: list[Group]) -> TorchAdam:
        opt = TorchAdam([g.as_dict() for g in groups])
        self.optimizers[name] = opt
        return opt

    def lr_mult(self, pretrained: bool = True) -> float:
        """Stage 2 trains the modules taken from stage 1 at LR_MULT * their stage-1 rate."""
        return self.cfg.TRAIN.LR_MULT if self.stage == 2 and pretrained else 1.0

    def set_epoch(self, epoch: int) -> None:
        t = self.cfg.TRAIN
        for opt in self.optimizers.values():
            opt.set_epoch(epoch, t.LR_STEP, t.LR_DECAY)
        alpha = fade_alpha(epoch, self.epochs, t.MAX_ALPHA)
        for net in self.nets.values():
            if isinstance(net, Fade):
                net.alpha = alpha
        if self.stage == 2:
            log.report("fade/alpha", alpha)

    # ---- a new run --------------------------------------------------------------------------
    def start_fresh(self) -> None:
        if self.stage == 2:
            self.grow_from_stage1()
        self.fill_vis_batch()

    def grow_from_stage1(self) -> None:
        from common import checkpoint
        path = self.cfg.MODEL.STAGE1_CKPT
        if not path:
            raise ConfigError("MODEL.STAGE1_CKPT must name the stage-1 checkpoint (or run "
                              "directory) that stage 2 grows from", "MODEL.STAGE1_CKPT")
        source = checkpoint.resolve(path)
        state = checkpoint.load(source)
        check_stage1(state, self.cfg, str(source))
        loaded = load_stage1(self.nets, state, skip=("vis",))
        log.log(f"stage 2: took {', '.join(loaded)} from {source}; new blocks at the encoder "
                "input, the generator output and the D input fade in")

    def fill_vis_batch(self) -> None:
        """The first tick's pictures use VIS.N images of VIS.SPLIT (the original's fixed
        validation batch); when that split has no images here, the training split's."""
        spec = dict(self.cfg.DATA, SPLIT=self.cfg.VIS.SPLIT)
        try:
            dataset = data.build(spec)
        except DataError as err:
            log.log(f"visualisation batch: {err}; using the training split instead")
            dataset = data.build(self.cfg.DATA)
        n = min(len(dataset), self.cfg.VIS.N)
        g = torch.Generator().manual_seed(self.cfg.RUN.SEED)
        index = torch.randperm(len(dataset), generator=g)[:n].tolist()
        with data.seeded_rngs(self.cfg.RUN.SEED):
            items = [dataset[i] for i in index]
        images = torch.stack([it["image"] for it in items])
        attrs = torch.stack([it["attributes"] for it in items]) if "attributes" in items[0] else None
        self.nets["vis"].fill(images.to(self.device), None if attrs is None else attrs.to(self.device))

    # ---- pictures ---------------------------------------------------------------------------
    def vis_batch(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        vis = self.nets["vis"]
        n = len(vis.images) if n is None else n
        reps = -(-n // len(vis.images))
        images = vis.images.float().repeat(reps, 1, 1, 1)[:n]
        return images, vis.attributes.repeat(reps, 1)[:n]

    @contextmanager
    def evaluating(self):
        """Networks in evaluation mode (BN running statistics) inside, as they were after."""
        modes = {k: net.training for k, net in self.nets.items()}
        for net in self.nets.values():
            net.eval()
        try:
            yield
        finally:
            for k, net in self.nets.items():
                net.train(modes[k])

    def snapshot_images(self) -> dict:
        pictures = {}
        images, attrs = self.vis_batch()
        with self.evaluating():
            if not self._shown_originals:
                pictures["val_originals"] = (images, 8)
                self._shown_originals = True
            recon = self.reconstruct(images, attrs)
            if recon is not None:
                pictures["recon"] = (recon, 8)
            gen = torch.Generator(device=self.device).manual_seed(self.cfg.RUN.SEED)
            pictures["samples"] = (self.sample_images(attrs, gen), 8)
            pictures.update(self.extra_pictures())
        return pictures

    def extra_pictures(self) -> dict:
        return {}

    def rgb_blocks(self, encoder_final_relu: bool) -> dict[str, nn.Module]:
        """The encoder's input, the decoder's output and D's input blocks; in stage 2 each is a
        fading pair with the new 128 px block (whose encoder conv ends in a ReLU or not)."""
        C, eps, mom, bias = self.C, self.eps, self.mom, self.bias
        enc_rgb, out_rgb, in_rgb = from_rgb_encoder(C, eps, mom, bias), to_rgb(C, bias), from_rgb(C, bias)
        if self.stage == 2:
            enc_rgb = growing.EncoderInputFade(
                enc_rgb, growing.encoder_conv(C, eps, mom, final_relu=encoder_final_relu, bias=bias))
            out_rgb = growing.ToRGBFade(out_rgb, growing.decoder_conv(C, eps, mom, bias))
            in_rgb = growing.FromRGBFade(in_rgb, growing.disc_conv(C, bias))
        return {"enc_rgb": enc_rgb, "to_rgb": out_rgb, "from_rgb": in_rgb}

    def rgb_in(self, x, full=False):
        """The encoder's input block; while stage 2 grows, a fading pair (full: the new path)."""
        net = self.nets["enc_rgb"]
        return net(x, full=full) if isinstance(net, Fade) else net(x)

    def rgb_out(self, h, full=False):
        """The decoder's output block; while stage 2 grows, a fading pair."""
        net = self.nets["to_rgb"]
        return net(h, full=full) if isinstance(net, Fade) else net(h)

    def synthetic_batch(self, batch_size: int) -> dict:
        """Random images and +-1 attributes shaped like a training batch (benchmarks)."""
        batch = super().synthetic_batch(batch_size)
        if self.A > 0:
            batch["attributes"] = (torch.rand(batch_size, self.A, device=self.device) < 0.5) * 2.0 - 1
        return batch

    def generate(self, n: int, seed: int = 0, ema: bool = True) -> torch.Tensor:
        """n samples conditioned on the stored validation attributes (cycled)."""
        _, attrs = self.vis_batch(n)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        with torch.no_grad(), self.evaluating():
            return self.sample_images(attrs, gen)

    # ---- what each family provides ------------------------------------------------------------
    def reconstruct(self, images: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor | None:
        """Reconstructions (a sample of q(z|x, y), as the original), or None (GAN)."""
        return None

    @abc.abstractmethod
    def sample_images(self, attrs: torch.Tensor, gen: torch.Generator | None,
                      noise: torch.Tensor | None = None) -> torch.Tensor:
        """Images for attributes `attrs` (B x A); the noise is drawn from `gen` unless given."""

    @abc.abstractmethod
    def noise_shape(self) -> tuple[int, ...]:
        """Shape of one sample's standard-normal noise (the prior's epsilon or cgan's z)."""

    def randn(self, n: int, gen: torch.Generator | None) -> torch.Tensor:
        return torch.randn(n, *self.noise_shape(), generator=gen, device=self.device)
