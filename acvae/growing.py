"""Stage 2 (128 px): progressive growing of a trained 64 px model (docs/acvae.md,
"Stage 2 (128 px)").

Three fade-in wrappers replace the stage-1 blocks at the encoder input, the generator output and
the discriminator input. Each mixes two branches, (1 - alpha) * old + alpha * new:
- encoder input:  avgpool2 -> copy of from_rgb_encoder | from_rgb_encoder at 128 -> encoder_conv
                  -> avgpool2;
- generator output (after nearest x2 upsampling of the 2C x 64 x 64 decoder output):
                  copy of to_rgb | decoder_conv -> to_rgb;
- D input:        avgpool2 -> copy of from_rgb | from_rgb at 128 -> disc_conv -> avgpool2.
The copies are independent and both branches train. alpha = min(epoch / (EPOCHS / 2), MAX_ALPHA)
for the 0-based epoch, set once per epoch. Pictures and samples always take the new branch.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from acvae.modules import bn, bn_init, conv, conv_init, lrelu
from common.errors import CheckpointError


def fade_alpha(epoch: int, epochs: int, max_alpha: float = 1.0) -> float:
    """0 at the first epoch, growing by 1/(epochs/2) per epoch, capped at max_alpha."""
    return min(epoch / (epochs / 2.0), max_alpha)


def encoder_conv(C: int, eps: float, mom: float, final_relu: bool, bias: bool = True):
    """conv3x3 C -> C/2, BN, ReLU, conv3x3 C/2 -> C, BN (+ ReLU in cvaegan)."""
    layers = [conv(C, C // 2, 3, 1, 1, bias), bn(C // 2, eps, mom), nn.ReLU(),
              conv(C // 2, C, 3, 1, 1, bias), bn(C, eps, mom)]
    return bn_init(conv_init(nn.Sequential(*layers, *([nn.ReLU()] if final_relu else []))))


def decoder_conv(C: int, eps: float, mom: float, bias: bool = True):
    """conv3x3 2C -> C, BN, LReLU, conv3x3 C -> 2C, BN, LReLU."""
    return bn_init(conv_init(nn.Sequential(
        conv(2 * C, C, 3, 1, 1, bias), bn(C, eps, mom), lrelu(),
        conv(C, 2 * C, 3, 1, 1, bias), bn(2 * C, eps, mom), lrelu())))


def disc_conv(C: int, bias: bool = True):
    """conv3x3 C -> C/2, ReLU, conv3x3 C/2 -> C, ReLU (no BatchNorm)."""
    return conv_init(nn.Sequential(conv(C, C // 2, 3, 1, 1, bias), nn.ReLU(),
                                   conv(C // 2, C, 3, 1, 1, bias), nn.ReLU()))


class Fade(nn.Module):
    """Base of the wrappers: `alpha` is set by the trainer; `full=True` takes the new branch."""

    def __init__(self, stage1: nn.Module, new: nn.Module):
        super().__init__()
        self.old = copy.deepcopy(stage1)   # branch 1: its own copy of the stage-1 block
        self.stage1 = stage1               # branch 2 reuses the stage-1 block itself
        self.new = new
        self.alpha = 0.0

    def load_stage1(self, state: dict) -> None:
        """Both copies start from the stage-1 block's weights."""
        self.old.load_state_dict(state)
        self.stage1.load_state_dict(state)

    def mix(self, old: torch.Tensor | None, new: torch.Tensor, full: bool) -> torch.Tensor:
        if full or old is None:
            return new
        return (1.0 - self.alpha) * old + self.alpha * new


class EncoderInputFade(Fade):
    def forward(self, x: torch.Tensor, full: bool = False) -> torch.Tensor:
        new = F.avg_pool2d(self.new(self.stage1(x)), 2)
        old = None if full else self.old(F.avg_pool2d(x, 2))
        return self.mix(old, new, full)


class ToRGBFade(Fade):
    def forward(self, h: torch.Tensor, full: bool = False) -> torch.Tensor:
        up = F.interpolate(h, scale_factor=2, mode="nearest")
        new = self.stage1(self.new(up))
        old = None if full else self.old(up)
        return self.mix(old, new, full)


class FromRGBFade(Fade):
    def forward(self, x: torch.Tensor, full: bool = False) -> torch.Tensor:
        new = F.avg_pool2d(self.new(self.stage1(x)), 2)
        old = None if full else self.old(F.avg_pool2d(x, 2))
        return self.mix(old, new, full)


# Stage-1 networks that a stage-2 model takes over; the wrapped ones get both copies.
WRAPPED = ("enc_rgb", "to_rgb", "from_rgb")
MUST_MATCH = ("VARIANT", "BASE_CHANNELS", "LATENT_CHANNELS", "TIME_STEPS", "ATTR_DIM", "CONV_BIAS")


def check_stage1(state: dict, cfg, source: str) -> None:
    """Refuse a checkpoint that is not a stage-1 model of the same variant and sizes."""
    if state.get("model") != "acvae":
        raise CheckpointError(f"{source}: is a {state.get('model')!r} checkpoint, not an acvae "
                              "stage-1 model (MODEL.STAGE1_CKPT)")
    old = state.get("config", {}).get("MODEL", {})
    if old.get("STAGE") != 1:
        raise CheckpointError(f"{source}: is a stage-{old.get('STAGE')} model; stage 2 grows "
                              "from a stage-1 (64 px) checkpoint (MODEL.STAGE1_CKPT)")
    wrong = [f"{k} {old.get(k)!r} (this config: {cfg.MODEL[k]!r})" for k in MUST_MATCH
             if old.get(k) != cfg.MODEL[k]]
    if wrong:
        raise CheckpointError(f"{source}: stage-1 model does not match this stage-2 config: "
                              f"{'; '.join(wrong)}")


def load_stage1(nets: dict[str, nn.Module], state: dict, skip: tuple[str, ...] = ()) -> list[str]:
    """Copy the stage-1 weights into a freshly built stage-2 model; return the names loaded."""
    loaded = []
    for name, weights in state["nets"].items():
        if name in skip:
            continue
        if name not in nets:
            raise CheckpointError(f"stage-1 network {name!r} has no place in the stage-2 model")
        net = nets[name]
        try:
            if isinstance(net, Fade):
                net.load_stage1(weights)
            else:
                net.load_state_dict(weights)
        except RuntimeError as err:
            raise CheckpointError(f"stage-1 weights of {name!r} do not fit the stage-2 model "
                                  f"({str(err).splitlines()[0]})") from None
        loaded.append(name)
    return loaded
