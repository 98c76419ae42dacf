"""Pictures that are not plain image grids: the learned attention matrix as a labelled heat map."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from common.data.celeba import ATTRIBUTES

# A perceptually ordered colour ramp (dark blue -> teal -> yellow), interpolated linearly.
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
                 dtype=np.float32)


def colormap(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] -> uint8 RGB."""
    pos = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    return ((1 - frac) * _RAMP[lo] + frac * _RAMP[lo + 1]).astype(np.uint8)


def attention_picture(a: torch.Tensor, names=ATTRIBUTES, cell: int = 16) -> torch.Tensor:
    """(1, 3, H, W) image in [-1, 1] of a (T x A): one row per time step, one column per
    attribute (names written vertically on top); colours run from min(a) to max(a)."""
    a = a.detach().float().cpu().numpy()
    T, A = a.shape
    names = list(names)[:A] + [str(j) for j in range(len(names), A)]
    font = ImageFont.load_default()
    label_h = max(6 * len(n) for n in names) + 8
    left, top = 28, label_h + 16
    img = Image.new("RGB", (left + A * cell + 4, top + T * cell + 4), "white")
    draw = ImageDraw.Draw(img)
    lo, hi = float(a.min()), float(a.max())
    draw.text((2, 2), f"attention a[t, attribute]: dark {lo:.3f} .. bright {hi:.3f}",
              fill="black", font=font)
    heat = colormap((a - lo) / max(hi - lo, 1e-12))
    block = np.kron(heat, np.ones((cell, cell, 1), dtype=np.uint8))
    img.paste(Image.fromarray(block), (left, top))
    for t in range(T):
        draw.text((2, top + t * cell + 3), f"t{t}", fill="black", font=font)
    for j, name in enumerate(names):
        label = Image.new("RGB", (label_h, cell), "white")
        ImageDraw.Draw(label).text((2, 2), name, fill="black", font=font)
        img.paste(label.rotate(90, expand=True), (left + j * cell, 14))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
    return x.permute(2, 0, 1).unsqueeze(0)
