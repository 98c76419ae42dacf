"""The model registry: names -> the modules that build their trainers and configs.

A model module defines:
  DEFAULTS            nested dict of config defaults (the RUN section is added by common.config)
  build(cfg, device)  -> common.trainer.Trainer
and optionally:
  CHOICES             {dotted key: allowed values}
  check_config(cfg)   raises ConfigError(key=...) for rules spanning several keys
  main_without_training(cfg, ctx) -> bool   does the run's work instead of training (e.g.
                      StackGAN's TRAIN.FLAG: False sampling) and returns True, else False
  add_sample_args(parser), sample(trainer, args) -> {name: (images, nrow)}   for sample.py
  eval_samples(trainer, n, seed, batch_size) -> iterator of dicts   for common.metrics: batches
                      of generated images ("image", in [-1, 1]) with the conditions used, drawn
                      from the evaluation split for conditional models
"""
from __future__ import annotations

import importlib
from types import ModuleType

from common import config as config_lib
from common.errors import ConfigError

MODELS = {
    "lrgan": "lrgan.trainer",
    "stackgan": "stackgan.trainer",
    "stackgan2": "stackgan.trainer_v2",
    "acvae": "acvae.trainer",
    "rpgan": "rpgan.trainer",
}


def module(name: str) -> ModuleType:
    """The module of a registered model (a dotted module path is accepted too, for tests)."""
    path = MODELS.get(name, name)
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as err:
        if name not in MODELS and err.name and path.startswith(err.name):
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") \
                from None
        raise


def _check(mod: ModuleType):
    def check(cfg):
        if "DATA" in cfg and isinstance(cfg.DATA, dict) and "KIND" in cfg.DATA:
            from common import data
            data.check(cfg.DATA)
        if hasattr(mod, "check_config"):
            mod.check_config(cfg)
    return check


def load_config(mod: ModuleType, path, overrides=(), source: str | None = None):
    """A model's resolved config from a YAML file (or a stored dict, or None) and overrides."""
    return config_lib.load(path, config_lib.with_run_defaults(mod.DEFAULTS), overrides,
                           getattr(mod, "CHOICES", None), _check(mod), source)
