"""The binary cross-entropy of a GAN discriminator, in the two numerical forms that matter.

LR-GAN, StackGAN v1 and StackGAN++ end their discriminators in a sigmoid and train with
`nn.BCELoss`; our discriminators return the logit z and the loss applies the sigmoid. The forms:

  sigmoid_bce  BCELoss(sigmoid(z), y), the originals' (the default of every model using it)
  logits       BCE-with-logits(z, y), the same function written stably (the documented fix)

They are not the same where D is confident (float32 and float64 alike, tests/common/test_losses.py):
- BCELoss's backward divides by max(p (1 - p), 1e-12), and the sigmoid's backward multiplies by
  p (1 - p). Below p ~ 1e-12 (z < -27.6) the clamp wins and dL/dz shrinks by p (1 - p) / 1e-12
  (z = -30: 0.094 of its logits value). That damps the generator's gradient (label 1) on
  fakes D rejects with confidence, and D's on reals it calls fake.
- BCELoss clamps each log at -100: the loss stops growing below z = -100 (label 1).
- In float32 the sigmoid rounds to exactly 1 above z ~ 16.6: with label 0 the loss is then 100
  and the gradient exactly 0 (D on fakes or wrong pairs it takes for real).
Elsewhere the two agree to rounding, forward and backward.

Mixed precision: BCELoss is not autocast-safe (CUDA autocast refuses it in float16/bfloat16
regions). Both forms are computed here with autocast off on float32 copies of reduced-precision
logits, so a bf16/fp16 run differs from fp32 only by the logit D computed (float64 stays float64).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from common import precision

FORMS = ("sigmoid_bce", "logits")


def bce(logits: torch.Tensor, target: float, form: str = "sigmoid_bce") -> torch.Tensor:
    """Mean binary cross-entropy of sigmoid(logits) against the constant label `target`."""
    if form not in FORMS:
        raise ValueError(f"loss form {form!r} unknown; expected one of {FORMS}")
    x = precision.upcast(logits)
    label = torch.full_like(x, target)
    with precision.float32_region(x.device.type):
        if form == "sigmoid_bce":
            return F.binary_cross_entropy(torch.sigmoid(x), label)
        return F.binary_cross_entropy_with_logits(x, label)
