"""StackGAN v1 as the registry (common/models.py) sees it: model `stackgan_v1`.

This module ties the pieces together and is the only one that imports both the trainer and the
sampling code: the trainer draws its metric images through stackgan/v1/sampling.py, whose
functions take the trainer as an argument and never import it back. TRAIN.FLAG: False builds the
trainer here (without D), loads NET_G and hands it to the sampling code.
"""
from __future__ import annotations

from pathlib import Path

from common import dist
from common.errors import ConfigError
from common.models import ModelSpec
from stackgan.v1 import sampling, weights
from stackgan.v1.config import CHOICES, DEFAULTS, NAME, check_config  # noqa: F401
from stackgan.v1.trainer import StackGANv1Trainer

eval_samples = sampling.eval_samples
add_sample_args = sampling.add_sample_args
sample = sampling.sample


def build(cfg, device) -> StackGANv1Trainer:
    return StackGANv1Trainer(cfg, device)


def main_without_training(cfg, ctx) -> bool:
    """TRAIN.FLAG: False: one PNG per caption (x NUM_COPY) from NET_G, plus grids."""
    if cfg.TRAIN.FLAG:
        return False
    if not dist.is_main():      # one writer under torchrun
        return True
    if not cfg.NET_G:
        raise ConfigError("TRAIN.FLAG is False (sampling) but NET_G is empty; set NET_G to a "
                          "run directory, a checkpoint or an original netG_epoch_*.pth", "NET_G")
    trainer = StackGANv1Trainer(cfg, ctx.device, with_discriminator=False)
    weights.load_into(trainer.nets["G"], weights.load_state(cfg.NET_G, "G", "NET_G"),
                      cfg.NET_G, "NET_G")
    sampling.write_samples(trainer, Path(ctx.run_dir))
    return True


SPEC = ModelSpec(NAME, DEFAULTS, build, CHOICES, check_config, main_without_training,
                 add_sample_args, sample, eval_samples)
