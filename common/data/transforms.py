"""PIL image -> normalised tensor: crop rule, resize, optional flip, values in [-1, 1]."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

CROPS = ("center", "resize", "none")


def to_tensor(img: Image.Image) -> torch.Tensor:
    """uint8 PIL image -> float (C, H, W) in [-1, 1]."""
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def fit(img: Image.Image, size: int, crop: str = "center") -> Image.Image:
    """Bring an image to size x size.

    center: scale the shorter side to `size` (antialiased), then cut the centre square.
    resize: scale both sides to `size`, ignoring the aspect ratio.
    none:   the image must already be size x size.
    """
    w, h = img.size
    if crop == "none":
        if (w, h) != (size, size):
            raise ValueError(f"image is {w}x{h}, expected {size}x{size} (crop rule 'none')")
        return img
    if crop == "resize":
        return img if (w, h) == (size, size) else img.resize((size, size), Image.BICUBIC)
    if crop != "center":
        raise ValueError(f"unknown crop rule {crop!r}; expected one of {CROPS}")
    scale = size / min(w, h)
    if scale != 1.0:
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def maybe_flip(x: torch.Tensor, enabled: bool) -> torch.Tensor:
    """Horizontal flip with probability 1/2, drawn from the (per-item seeded) torch RNG."""
    if enabled and torch.rand(()) < 0.5:
        return x.flip(-1)
    return x
