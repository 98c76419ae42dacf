"""StackGAN v1 weights from outside the run: STAGE1_G, NET_G and NET_D.

Each may name an original StackGAN-Pytorch `.pth` file (a plain state dict, e.g. the released
`netG_epoch_90.pth`), a ganrepro checkpoint (`.pt`) or a ganrepro run directory (its newest
checkpoint). Everything is read with `torch.load(..., weights_only=True)`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from common import checkpoint
from common.errors import CheckpointError, first_line
from stackgan.v1.config import NAME


def load_state(path: str | Path, net: str, what: str) -> dict[str, torch.Tensor]:
    """The state dict of network `net` ("G" or "D") stored at `path`."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = checkpoint.resolve(path)
    obj = checkpoint.read(path, f"{what} weights file")
    if isinstance(obj, dict) and obj.get("format") == checkpoint.FORMAT and "nets" in obj:
        if obj.get("model") != NAME:    # checkpoint.read maps the old name "stackgan" to it
            raise CheckpointError(f"{path}: {what} is a {obj.get('model')!r} checkpoint, not a "
                                  "StackGAN v1 one")
        if net not in obj["nets"]:
            raise CheckpointError(f"{path}: {what}: the checkpoint holds no network {net!r}")
        obj = obj["nets"][net]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: {what} is neither a state dict nor a ganrepro checkpoint")
    return checkpoint.strip_data_parallel(obj)


def stage1_part(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Stage-I generator's weights; from a Stage-II file, its STAGE1_G.* entries."""
    prefix = "STAGE1_G."
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_into(module: nn.Module, state: dict, path: str | Path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = first_line(err)
        raise CheckpointError(f"{path}: {what} does not fit the network built from the config "
                              f"(check STAGE, GAN.GF_DIM, GAN.DF_DIM, GAN.R_NUM, GAN.CA_TYPE, "
                              f"GAN.D_TEXT): {first}") from None
