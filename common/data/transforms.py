"""PIL image -> normalised tensor: crop rule, resize, optional flip, values in [-1, 1]."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

CROPS = ("center", "resize", "none", "random")


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
    random: works on tensors, see `short_side_random_crop` (the loaders apply it after
            `to_tensor`).
    """
    w, h = img.size
    if crop == "none":
        if (w, h) != (size, size):
            raise ValueError(f"image is {w}x{h}, expected {size}x{size} (crop rule 'none')")
        return img
    if crop == "resize":
        return img if (w, h) == (size, size) else img.resize((size, size), Image.BICUBIC)
    if crop == "random":
        raise ValueError("crop rule 'random' applies to tensors: use short_side_random_crop")
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


def tf_legacy_resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of a (C, H, W) float tensor as TF 0.x `resize_images` did it.

    Source coordinate = output index * (in / out), without the half-pixel offset, and no
    antialiasing (RP-GAN's crop rule was defined with it).
    """
    def taps(n_in: int, n_out: int):
        pos = torch.arange(n_out, dtype=torch.float32) * np.float32(n_in / n_out)
        lo = pos.floor().long().clamp(max=n_in - 1)
        return lo, (lo + 1).clamp(max=n_in - 1), pos - lo.float()

    top, bottom, fy = taps(x.shape[1], height)
    left, right, fx = taps(x.shape[2], width)
    rows = torch.lerp(x.index_select(1, top), x.index_select(1, bottom), fy[None, :, None])
    return torch.lerp(rows.index_select(2, left), rows.index_select(2, right), fx[None, None, :])


def short_side_random_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """RP-GAN's `crop=True` rule on a (C, H, W) tensor: scale both sides by (size + 1) / short
    side (float32, truncated, as the original), TF 0.x bilinear resize, then a uniformly random
    size x size window drawn from the (per-item seeded) torch RNG."""
    h, w = x.shape[1:]
    scale = np.float32(size + 1) / np.float32(min(h, w))
    new_h, new_w = int(scale * np.float32(h)), int(scale * np.float32(w))
    if min(new_h, new_w) < size:
        raise ValueError(f"image of {w}x{h} cannot give a {size}x{size} crop")
    if (new_h, new_w) != (h, w):
        x = tf_legacy_resize(x, new_h, new_w)
    top = int(torch.randint(new_h - size + 1, ()))
    left = int(torch.randint(new_w - size + 1, ()))
    return x[:, top:top + size, left:left + size]
