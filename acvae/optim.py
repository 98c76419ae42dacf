"""Torch7 `optim.adam` and the authors' `optim.adam_gan`, one Adam state per parameter group.

The original kept one Adam state per module (encoder, decoder, prior, ...), each with its own
learning rate and beta1. Here a module is a named parameter group of a `TorchAdam`; the Adam
state lives per parameter, so modules never share moments, while the D-side modules share their
state between the latent-reconstruction steps and the discriminator step as in the original.

Per-group options:
  lr, beta1           the module's learning rate and beta1 (beta2 0.999, eps 1e-8 always)
  base_lr, decay      lr = base_lr * LR_DECAY ** (epoch // LR_STEP) when `decay` (set_epoch)
  clip                clamp every gradient element to +-clip before the step (0: off)
  fresh_state         forget the moments before every step (the cvae prior bug: a nil state)
  repeat              apply the update this many times with the same gradient (the cgan bug)
  gan_calls           adam_gan's call counter (numUpdates), checkpointed with the optimizer
Per-step mode (`set_mode`, reset to "adam" after each step):
  "adam"      optim.adam: update the parameters that have gradients
  "gan"       optim.adam_gan: count the call; lr/50 for calls 0-9, lr/5 for calls 10-29
  "gan_skip"  optim.adam_gan with optimize = false (margin gating): count the call, no update
"""
from __future__ import annotations

import math

import torch

BETA2, EPS = 0.999, 1e-8
MODES = ("adam", "gan", "gan_skip")


def gan_factor(calls: int) -> float:
    """adam_gan's warm-up: the learning rate is divided by 50, then by 5, then used as is."""
    return 50.0 if calls < 10 else 5.0 if calls < 30 else 1.0


class TorchAdam(torch.optim.Optimizer):
    """x -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), as Torch7's optim.adam."""

    def __init__(self, groups: list[dict]):
        defaults = {"lr": 1e-3, "beta1": 0.9, "clip": 0.0, "fresh_state": False, "repeat": 1,
                    "decay": True, "gan_calls": 0, "mode": "adam", "name": ""}
        for g in groups:
            g.setdefault("base_lr", g.get("lr", defaults["lr"]))
        super().__init__(groups, defaults)

    def group(self, name: str) -> dict:
        for g in self.param_groups:
            if g["name"] == name:
                return g
        raise KeyError(f"optimizer has no parameter group {name!r}")

    def set_mode(self, name: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.group(name)["mode"] = mode

    def set_epoch(self, epoch: int, step: int, decay: float) -> None:
        """Step schedule: every `step` epochs every decaying group's lr is multiplied by decay."""
        for g in self.param_groups:
            g["lr"] = g["base_lr"] * (decay ** (epoch // step) if g["decay"] and step > 0 else 1.0)

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            mode, g["mode"] = g["mode"], "adam"
            factor = 1.0
            if mode != "adam":
                calls = g["gan_calls"]
                g["gan_calls"] = calls + 1
                if mode == "gan_skip":
                    continue
                factor = gan_factor(calls)
            params = [p for p in g["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if g["clip"] > 0:
                torch._foreach_clamp_min_(grads, -g["clip"])
                torch._foreach_clamp_max_(grads, g["clip"])
            for _ in range(g["repeat"]):
                self._update(params, grads, g, g["lr"] / factor)
        return None

    def _update(self, params: list, grads: list, g: dict, lr: float) -> None:
        beta1 = g["beta1"]
        exp_avg, exp_sq, sizes = [], [], []
        for p in params:
            state = self.state[p]
            if g["fresh_state"] or not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            exp_avg.append(state["exp_avg"])
            exp_sq.append(state["exp_avg_sq"])
            sizes.append(-lr * math.sqrt(1 - BETA2 ** t) / (1 - beta1 ** t))
        torch._foreach_mul_(exp_avg, beta1)
        torch._foreach_add_(exp_avg, grads, alpha=1 - beta1)
        torch._foreach_mul_(exp_sq, BETA2)
        torch._foreach_addcmul_(exp_sq, grads, grads, value=1 - BETA2)
        denom = torch._foreach_sqrt(exp_sq)
        torch._foreach_add_(denom, EPS)
        torch._foreach_addcdiv_(params, exp_avg, denom, sizes)
