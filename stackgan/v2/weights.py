"""StackGAN++ TRAIN.NET_G / TRAIN.NET_D: generator and discriminator weights from files.

Accepted: the original's files (`netG_<iteration>.pth` and `<prefix><i>.pth`, plain state dicts
whose keys carry DataParallel's `module.` prefix; the released models are of this kind) and
ganrepro checkpoints (`.pt` files written by the common loop, or a run directory). A ganrepro
checkpoint gives its EMA generator (the average the original saved as netG).
"""
from __future__ import annotations

from pathlib import Path

import torch

from common import checkpoint
from common.errors import CheckpointError, first_line
from common.logging import log


def _read(path: Path) -> tuple[dict, dict | None]:
    """(tensors, ganrepro checkpoint or None) of a weight file or run directory."""
    if path.is_dir() or path.suffix == ".pt":
        state = checkpoint.load(checkpoint.resolve(path))
        return state["nets"], state
    tensors = checkpoint.read(path, "weights file (state dict)")
    if isinstance(tensors, dict) and tensors.get("format") == checkpoint.FORMAT:
        return tensors["nets"], tensors
    if not isinstance(tensors, dict) or not all(torch.is_tensor(v) for v in tensors.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (an original netG/netD "
                              "file) or a ganrepro checkpoint")
    return checkpoint.strip_data_parallel(tensors), None


def _load_into(module: torch.nn.Module, tensors: dict, source: str, what: str) -> None:
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = first_line(err)
        raise CheckpointError(f"{source}: {what} weights do not fit the networks built from the "
                              f"config (TREE.BRANCH_NUM, GAN.*): {first}") from None


def generator_weights(path: str | Path) -> tuple[dict, int]:
    """(G state dict, iteration) from NET_G. The iteration of an original file is parsed from
    its name as the original did: the text between the last '_' and the last '.'."""
    path = Path(path).expanduser()
    nets, state = _read(path)
    if state is not None:
        key = "G_ema" if "G_ema" in nets else "G"
        if key not in nets:
            raise CheckpointError(f"{path}: checkpoint has no generator G")
        return nets[key], int(state["counters"].get("iteration", 0))
    name = path.name
    digits = name[name.rfind("_") + 1:name.rfind(".")]
    return nets, int(digits) if digits.isdigit() else 0


def load_generator(trainer, path: str | Path) -> int:
    """Load NET_G into G and its EMA twin; return the iteration the file belongs to."""
    tensors, iteration = generator_weights(path)
    for name in ("G", "G_ema"):
        _load_into(trainer.nets[name], tensors, str(path), "generator")
    return iteration


def load_discriminators(trainer, prefix: str | Path) -> None:
    """NET_D: a ganrepro checkpoint (its D0, D1, ...) or the original prefix of <prefix><i>.pth."""
    path = Path(prefix).expanduser()
    if path.is_dir() or path.suffix == ".pt":
        nets, _ = _read(path)
        for i in range(trainer.branches):
            if f"D{i}" not in nets:
                raise CheckpointError(f"{path}: checkpoint has no discriminator D{i}")
            _load_into(trainer.nets[f"D{i}"], nets[f"D{i}"], str(path), f"D{i}")
        return
    for i in range(trainer.branches):
        file = Path(f"{prefix}{i}.pth").expanduser()
        nets, _ = _read(file)
        _load_into(trainer.nets[f"D{i}"], nets, str(file), f"D{i}")


def load_start_weights(trainer) -> None:
    """A fresh run starts from TRAIN.NET_G / TRAIN.NET_D when they are set (the counter starts
    at 0: to continue a ganrepro run exactly, use --resume instead)."""
    cfg = trainer.cfg.TRAIN
    if cfg.NET_G:
        iteration = load_generator(trainer, cfg.NET_G)
        log(f"generator weights from {cfg.NET_G} (iteration {iteration})")
    if cfg.NET_D:
        load_discriminators(trainer, cfg.NET_D)
        log(f"discriminator weights from {cfg.NET_D}")
