"""MNIST-ONE and MNIST-TWO: LR-GAN's layered digit datasets, re-created from the MNIST idx files.

The originals (an ImageFolder of PNGs) were never published with their generation script and
their links are dead, so this is a documented re-creation from the sample grids in the LR-GAN
repository: white MNIST digits, randomly scaled, rotated and squashed, at random positions on a
flat background of a random grey level (0 to 0.8, so that the white digit always
stands out). MNIST-ONE: one digit, 32 px, the digit's 28 px box at
75-100 % of the image (ink about 2/3 of its height). MNIST-TWO: two non-overlapping digits, 64 px,
boxes at 30-55 % of the image (ink about 1/4 to 1/2 of it).

Image i is a pure function of (OPTIONS.SEED, i): digit i of the split (plus one more, chosen by
that seed, for MNIST-TWO), and its placement drawn from a generator seeded by (SEED, i).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from common.data.mnist import load_mnist
from common.data.registry import DataSpec, min_max, option_error, register

INK = 20 / 28      # MNIST digits are drawn in a 20 px box centred in their 28 px frame
# LENGTH 0 means one image per digit of the split (60,000 for train).
COMMON = {"LENGTH": 0, "SEED": 0, "BACKGROUND": [0.0, 0.8], "ASPECT": [0.8, 1.25]}
ONE = {**COMMON, "DIGITS": 1, "SCALE": [0.75, 1.0], "ROTATION": 45.0}
TWO = {**COMMON, "DIGITS": 2, "SCALE": [0.3, 0.55], "ROTATION": 20.0}


def base_grid(size: int) -> torch.Tensor:
    """(size, size, 3) rows of (x, y, 1) at pixel centres: affine_grid's align_corners=False."""
    c = (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x, y, torch.ones_like(x)], -1)


def digit_theta(scale: float, aspect: float, angle: float, centre: np.ndarray) -> torch.Tensor:
    """affine_grid theta mapping canvas coordinates to the digit box's coordinates: a box of
    side `scale` (fraction of the canvas), squashed by `aspect`, rotated by `angle` (radians),
    centred at `centre` (x, y in [-1, 1])."""
    cos, sin = math.cos(angle), math.sin(angle)
    rotate = np.array([[cos, sin], [-sin, cos]])                      # rotation by -angle
    stretch = np.diag([1.0 / (scale * math.sqrt(aspect)), math.sqrt(aspect) / scale])
    m = stretch @ rotate
    return torch.tensor(np.concatenate([m, -(m @ centre)[:, None]], 1), dtype=torch.float32)


def place(rng: np.random.Generator, scales: list[float], tries: int = 100) -> list[np.ndarray]:
    """Centres (x, y in [-1, 1]) keeping each digit's ink inside the canvas and, when possible,
    the digits apart (rejection sampling; the last try is kept if none fits)."""
    inks = [INK * s for s in scales]          # half-extent of the ink in canvas units
    centres: list[np.ndarray] = []
    for ink in inks:
        for _ in range(tries):
            c = rng.uniform(-(1 - ink), 1 - ink, size=2)
            if all(np.max(np.abs(c - o)) >= ink + io for o, io in zip(centres, inks)):
                break
        centres.append(c)
    return centres


class LayeredDigits(Dataset):
    """Digits in [-1, 1], 1 channel (repeated to DATA.CHANNELS)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int, channels: int,
                 options: dict):
        self.images, self.labels = images, labels
        self.size, self.channels = size, channels
        self.base = base_grid(size)
        o = options
        self.length = o["LENGTH"] or len(images)
        self.seed, self.digits = o["SEED"], o["DIGITS"]
        self.scale, self.aspect = tuple(o["SCALE"]), tuple(o["ASPECT"])
        self.rotation, self.background = math.radians(o["ROTATION"]), tuple(o["BACKGROUND"])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        picks = [index % len(self.images)] + \
            [int(rng.integers(len(self.images))) for _ in range(self.digits - 1)]
        grey = rng.uniform(*self.background)
        scales = [float(rng.uniform(*self.scale)) for _ in picks]
        centres = place(rng, scales)
        canvas = torch.full((1, self.size, self.size), grey)
        for pick, s, c in zip(picks, scales, centres):
            aspect = math.exp(rng.uniform(math.log(self.aspect[0]), math.log(self.aspect[1])))
            angle = rng.uniform(-self.rotation, self.rotation)
            grid = (self.base @ digit_theta(s, aspect, angle, c).T)[None]
            digit = self.images[pick].float().div(255.0)[None, None]
            alpha = F.grid_sample(digit, grid, mode="bilinear", padding_mode="zeros",
                                  align_corners=False)[0].clamp(0, 1)
            canvas = canvas * (1 - alpha) + alpha          # a white digit pasted with its ink
        x = canvas.mul(2).sub(1).expand(self.channels, -1, -1).contiguous()
        return {"image": x, "label": self.labels[picks[0]],
                "digits": self.labels[torch.tensor(picks)]}


def check_digit_options(o: dict) -> None:
    min_max(o, "SCALE", low=0, high=1, low_open=True)
    min_max(o, "ASPECT", low=0, low_open=True)
    min_max(o, "BACKGROUND", low=0, high=1)
    if o["DIGITS"] < 1:
        raise option_error("DIGITS", ">= 1", o["DIGITS"])
    if o["LENGTH"] < 0:
        raise option_error("LENGTH", ">= 0 (0: one image per digit of the split)", o["LENGTH"])


def _build(spec: DataSpec) -> Dataset:
    images, labels = load_mnist(spec.root, spec.split, spec.download)
    return LayeredDigits(images, labels, spec.image_size, spec.channels, spec.options)


@register("mnist_one", ONE, check=check_digit_options)
def build_mnist_one(spec: DataSpec) -> Dataset:
    """LR-GAN's MNIST-ONE, re-created: one digit on a flat grey background (DATA.ROOT: MNIST)."""
    return _build(spec)


@register("mnist_two", TWO, check=check_digit_options)
def build_mnist_two(spec: DataSpec) -> Dataset:
    """LR-GAN's MNIST-TWO, re-created: two digits on a flat grey background (DATA.ROOT: MNIST)."""
    return _build(spec)
