"""One builder over named dataset kinds.

`build(cfg.DATA)` returns a torch Dataset whose items are dicts with at least "image" (float
C x H x W in [-1, 1]) and "label". Kinds register themselves with `@register` (see registry.py);
the modules imported below are the built-in ones.
"""
from common.data.registry import KINDS, DataSpec, register, spec_from_config
from common.data import folders, mnist, cifar, scenes, celeba  # noqa: F401  (registers the kinds)
from common.data import text  # noqa: F401  (StackGAN text-image pairs: kind stackgan_text)
from common.data import mnist_layers, cub_crops  # noqa: F401  (LR-GAN's MNIST-ONE/TWO, CUB crops)
from common.data.loader import EpochLoader, seeded_rngs, to_device


def defaults(kind: str = "layered_scenes", image_size: int = 64, channels: int = 3,
             root: str = "", split: str = "train", options: dict | None = None) -> dict:
    """A DATA config section (OPTIONS are checked per kind when the config is loaded)."""
    from common.config import FreeDict
    return {"KIND": kind, "ROOT": root, "SPLIT": split, "IMAGE_SIZE": image_size,
            "CHANNELS": channels, "DOWNLOAD": False, "OPTIONS": FreeDict(options or {}, follows="KIND")}


def build(data_cfg: dict, source: str = "config"):
    """The dataset a DATA section describes."""
    spec = spec_from_config(data_cfg, source)
    return KINDS[spec.kind].build(spec)


def check(data_cfg: dict) -> None:
    """Config-time check of a DATA section (kind and OPTIONS), without touching any file.

    Errors carry the key; the config loader prefixes the file or command line that set it."""
    spec_from_config(data_cfg, source=None)


__all__ = ["KINDS", "DataSpec", "register", "build", "check", "defaults", "EpochLoader",
           "seeded_rngs", "to_device"]
