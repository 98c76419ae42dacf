"""The model registry: names -> the modules that declare a model to the common layer.

Each model module exports `SPEC = ModelSpec(...)`: its name, config defaults and build function,
and the optional hooks below (a misspelt hook is a TypeError when the module is imported, and a
reader sees every model's capabilities in one place). What a trainer can do beyond the required
methods is declared on its class (see common.trainer.Trainer).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

from common import config as config_lib
from common.errors import ConfigError

@dataclass(frozen=True)
class ModelSpec:
    """What a model declares to the common layer."""

    name: str           # the registry name; checkpoints store it (Trainer.name is the same)
    defaults: dict      # nested config defaults (the RUN section is added by common.config)
    build: Callable     # (cfg, device) -> common.trainer.Trainer
    choices: dict = field(default_factory=dict)   # {dotted key: allowed values}
    check_config: Callable | None = None   # (cfg): raises ConfigError(key=...) for rules that
                                           # span several keys
    main_without_training: Callable | None = None  # (cfg, ctx) -> bool: does the run's work
                        # instead of training (e.g. StackGAN's TRAIN.FLAG: False) when True
    add_sample_args: Callable | None = None  # (parser): the model's options of sample.py ...
    sample: Callable | None = None           # (trainer, args) -> {name: (images, nrow)}
    eval_samples: Callable | None = None     # (trainer, n, seed, batch_size) -> iterator
                        # of dicts: generated images ("image", in [-1, 1]) with the conditions
                        # used, drawn from the evaluation split (conditional models)
    eval_reference: Callable | None = None   # (trainer, split) -> dataset of the real images
                                             # that go with eval_samples

    def __post_init__(self):
        if (self.add_sample_args is None) != (self.sample is None):
            raise TypeError(f"model {self.name!r}: add_sample_args and sample come together")


MODELS = {
    "lrgan": "lrgan.trainer",
    "stackgan_v1": "stackgan.v1.model",
    "stackgan_v2": "stackgan.v2.model",
    "acvae": "acvae.trainer",
    "rpgan": "rpgan.trainer",
}

# Names a model had before, as checkpoints written then store them: {old: current}. The one
# place an old identity is mapped; checkpoint.read applies it to every checkpoint it reads.
ALIASES = {
    "stackgan": "stackgan_v1",     # StackGAN v1 before stackgan/ was split into v1/ and v2/
    "stackgan2": "stackgan_v2",    # StackGAN++, likewise
}


def canonical(name: str) -> str:
    """The current registry name of a model name, old names included (ALIASES)."""
    return ALIASES.get(name, name)


def module(name: str) -> ModuleType:
    """The module of a registered model (an old name of ALIASES, or a dotted module path for
    tests, is accepted too)."""
    name = canonical(name)
    path = MODELS.get(name, name)
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as err:
        if name not in MODELS and err.name and path.startswith(err.name):
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") \
                from None
        raise


def spec(model: str | ModuleType) -> ModelSpec:
    """The ModelSpec of a registered model (by name) or of a model module."""
    mod = module(model) if isinstance(model, str) else model
    try:
        declared = mod.SPEC
    except AttributeError:
        raise TypeError(f"{mod.__name__} declares no SPEC (a common.models.ModelSpec)") from None
    if not isinstance(declared, ModelSpec):
        raise TypeError(f"{mod.__name__}.SPEC is a {type(declared).__name__}, not a ModelSpec")
    return declared


def _check(model: ModelSpec):
    def check(cfg):
        if "DATA" in cfg and isinstance(cfg.DATA, dict) and "KIND" in cfg.DATA:
            from common import data
            data.check(cfg.DATA)
        if model.check_config is not None:
            model.check_config(cfg)
    return check


def load_config(model: str | ModuleType, path, overrides=(), source: str | None = None):
    """A model's resolved config from a YAML file (or a stored dict, or None) and overrides."""
    declared = spec(model)
    return config_lib.load(path, config_lib.with_run_defaults(declared.defaults), overrides,
                           declared.choices, _check(declared), source)
