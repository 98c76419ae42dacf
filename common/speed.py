"""The RUN section's speed switches, applied to a trainer's networks and optimizers.

None of them changes the maths of a step: fused optimizers compute the same update in one
kernel, channels_last only changes memory layout, and torch.compile fuses kernels (bitwise
results may differ in the last bits). bf16 autocast (RUN.PRECISION) and TF32 do change numerics
and stay off by default.
"""
from __future__ import annotations

import torch

from common import logging as log


def configure_optimizers(trainer, fused: bool, capturable: bool) -> None:
    """Set the `fused` / `capturable` flags of every optimizer that has them (Adam, AdamW, SGD...).

    Runs after a checkpoint is restored (loading a state dict brings back the saved flags) and
    moves Adam's step counters to where those flags want them.
    """
    for name, opt in trainer.optimizers.items():
        for group in opt.param_groups:
            if "fused" in group:
                group["fused"] = bool(fused)
                if fused:
                    group["foreach"] = False
            elif fused:
                log.warn(f"optimizer {name!r} ({type(opt).__name__}) has no fused implementation")
            if "capturable" in group:
                group["capturable"] = bool(capturable)
            elif capturable:
                raise ValueError(f"optimizer {name!r} ({type(opt).__name__}) cannot be captured "
                                 "in a CUDA graph (no 'capturable' option); set RUN.CUDA_GRAPHS "
                                 "false")
            on_device = group.get("fused") or group.get("capturable")
            for p in group["params"]:
                state = opt.state.get(p, {})
                step = state.get("step")
                if isinstance(step, torch.Tensor):
                    state["step"] = (step.to(p.device, torch.float32) if on_device
                                     else step.to("cpu", torch.float32))


def configure_networks(trainer, channels_last: bool, compile_net: bool, compile_mode: str) -> None:
    """channels_last memory format and torch.compile (in place: identities stay the same)."""
    for name, net in trainer.nets.items():
        if channels_last:
            net.to(memory_format=torch.channels_last)
        if compile_net and not name.endswith("_ema"):  # EMA twins only sample
            net.compile(mode=compile_mode or None)
