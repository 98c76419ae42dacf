"""Pictures of the layers: the paper's decomposition, correctly de-normalised (all in [-1, 1]).

One row per sample: the background, then for every foreground step its appearance and mask in
the canonical frame, the same two warped onto the canvas by the step's pose, and the canvas
after the step (the last one is the final image). Masks are shown black (0) to white (1); the
warped appearance is shown on mid-grey where it does not reach.
"""
from __future__ import annotations

import torch

from common.ops import stnm
from lrgan.models import Layers


def as_image(x: torch.Tensor, channels: int) -> torch.Tensor:
    """A mask in [0, 1] (1 channel) -> an image in [-1, 1] with `channels` channels."""
    return (x * 2 - 1).expand(-1, channels, -1, -1)


def warped(layers: Layers, impl: str = "auto") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ST(f_t) on grey, ST(m_t)) per foreground step, through the same STNM op as training."""
    out = []
    for fg, mask, theta in zip(layers.fgs, layers.masks, layers.thetas):
        grey = torch.zeros_like(fg)
        appearance = stnm(grey, fg, torch.ones_like(mask), theta, impl=impl)
        # Pasting a white 1-channel image with the mask onto black gives exactly ST(m).
        mask_warped = stnm(torch.zeros_like(mask), torch.ones_like(mask), mask, theta, impl=impl)
        out.append((appearance, mask_warped))
    return out


def column_names(steps: int) -> list[str]:
    names = ["background"]
    for t in range(1, steps):
        names += [f"fg{t}", f"mask{t}", f"fg{t}_warped", f"mask{t}_warped", f"canvas{t}"]
    return names


def layer_images(layers: Layers, impl: str = "auto") -> dict[str, torch.Tensor]:
    """{column name: (B, C, H, W) in [-1, 1]} in `column_names` order."""
    channels = layers.final.shape[1]
    pictures = {"background": layers.canvases[0]}
    for t, (fg, mask, (fg_w, mask_w), canvas) in enumerate(
            zip(layers.fgs, layers.masks, warped(layers, impl), layers.canvases[1:]), start=1):
        pictures[f"fg{t}"] = fg
        pictures[f"mask{t}"] = as_image(mask, channels)
        pictures[f"fg{t}_warped"] = fg_w
        pictures[f"mask{t}_warped"] = as_image(mask_w, channels)
        pictures[f"canvas{t}"] = canvas
    return pictures


def decomposition(layers: Layers, rows: int, impl: str = "auto") -> tuple[torch.Tensor, int]:
    """(images, images per row) of the decomposition grid of the first `rows` samples."""
    columns = list(layer_images(layers, impl).values())
    rows = min(rows, columns[0].shape[0])
    tiles = torch.stack([c[:rows].float() for c in columns], 1)   # (rows, columns, C, H, W)
    return tiles.flatten(0, 1), len(columns)
