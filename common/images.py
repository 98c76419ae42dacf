"""Images in [-1, 1] -> uint8, grids, PNG files (written atomically)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """(N, C, H, W) floats in `value_range` -> uint8 in [0, 255], clamped, on the CPU."""
    lo, hi = value_range
    x = (images.detach().float().cpu() - lo) / (hi - lo)
    return (x * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)


def grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2,
         pad_value: float = 1.0) -> torch.Tensor:
    """Tile (N, C, H, W) into one (C, H', W') image, `nrow` images per row (default: square)."""
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    out = images.new_full((c, ncol * (h + padding) + padding, nrow * (w + padding) + padding),
                          pad_value)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        out[:, top:top + h, left:left + w] = images[i]
    return out


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Save a (C, H, W) uint8 or [-1, 1] float image (C = 1 or 3) as PNG, atomically."""
    if image.dtype != torch.uint8:
        image = to_uint8(image.unsqueeze(0))[0]
    array = image.permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        array = array[:, :, 0]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; a failed write leaves nothing
    return path


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None,
              value_range: tuple[float, float] = (-1.0, 1.0)) -> Path:
    """De-normalise a batch, tile it and save it as one PNG."""
    lo, hi = value_range
    scaled = (images.detach().float().cpu() - lo) / (hi - lo) * 2 - 1
    if scaled.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {scaled.shape[1]}")
    return save_png(to_uint8(grid(scaled.clamp(-1, 1), nrow, pad_value=1.0).unsqueeze(0))[0], path)
