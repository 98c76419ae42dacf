"""StackGAN++ as the registry (common/models.py) sees it: model `stackgan_v2`.

This module ties the pieces together and is the only one that imports the trainer, the sampling
and the evaluation code at once: the trainer draws its pictures through stackgan/v2/sampling.py,
whose functions take the trainer as an argument and never import it back. TRAIN.FLAG False
builds the trainer here (no discriminators), loads TRAIN.NET_G and hands it to
stackgan/v2/evaluation.py.
"""
from __future__ import annotations

from common import dist
from common.errors import ConfigError
from common.models import ModelSpec
from stackgan.v2 import evaluation, sampling
from stackgan.v2.config import CHOICES, DEFAULTS, NAME, check_config  # noqa: F401
from stackgan.v2.trainer import StackGANv2Trainer
from stackgan.v2.weights import load_generator

eval_samples = sampling.eval_samples
add_sample_args = sampling.add_sample_args
sample = sampling.sample


def build(cfg, device) -> StackGANv2Trainer:
    return StackGANv2Trainer(cfg, device)


def main_without_training(cfg, ctx) -> bool:
    """TRAIN.FLAG False: write the evaluation images of TRAIN.NET_G as the original did."""
    if cfg.TRAIN.FLAG:
        return False
    if not cfg.TRAIN.NET_G:
        raise ConfigError("TRAIN.FLAG is False (evaluation) but TRAIN.NET_G names no generator",
                          "TRAIN.NET_G")
    trainer = StackGANv2Trainer(cfg, ctx.device, with_discriminators=False)
    iteration = load_generator(trainer, cfg.TRAIN.NET_G)
    if not dist.is_main():
        return True
    evaluation.write(trainer, evaluation.output_root(cfg, ctx, iteration))
    return True


SPEC = ModelSpec(NAME, DEFAULTS, build, CHOICES, check_config, main_without_training,
                 add_sample_args, sample, eval_samples)
