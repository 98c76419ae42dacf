"""Layered scenes: textured backgrounds with shapes pasted on top, generated on the fly.

Needs no download, renders at any size, and image i is always the same picture for a given
seed (it is drawn from a generator seeded by (seed, i)). It is the quick start's default data:
a foreground/background decomposition is easy to see on it.

Rendering costs about 0.3 ms per 32 px image in numpy, a fifth of a small CPU training step:
with OPTIONS.CACHE_MB the scenes are kept after their first rendering (in each loading process)
when all of them fit in that many MB, so later epochs only copy them. Each loading process
keeps its own copy: with RUN.WORKERS = N the cache can take N + 1 times that memory. Changing
CACHE_MB does not stop a resume (it changes speed, never pixels).
"""
from __future__ import annotations

import colorsys

import numpy as np
import torch
from torch.utils.data import Dataset

from common.data.registry import DataSpec, min_max, one_of, option_error, register

SHAPES = ("circle", "square", "triangle", "ellipse", "diamond")
BACKGROUNDS = ("texture", "flat")


def _shape_distance(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) of a unit-size shape at local coordinates (u, v)."""
    if shape == "circle":
        return np.sqrt(u * u + v * v) - 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.85
    if shape == "diamond":
        return (np.abs(u) + np.abs(v)) / np.sqrt(2) - 0.8
    if shape == "ellipse":
        return np.sqrt(u * u + (v / 0.55) ** 2) - 1.0
    if shape == "triangle":  # equilateral, pointing up, centred on its centroid
        return np.maximum(np.abs(u) * 0.866 + (v + 0.25) * 0.5, -(v + 0.25)) - 0.5
    raise ValueError(shape)


def _colour(rng: np.random.Generator, saturation: tuple, value: tuple) -> np.ndarray:
    h = rng.uniform(0, 1)
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(*saturation), rng.uniform(*value)),
                    dtype=np.float32)


def _background(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, kind: str) -> np.ndarray:
    c1 = _colour(rng, (0.1, 0.5), (0.25, 0.85))
    if kind == "flat":
        return np.broadcast_to(c1, y.shape + (3,)).copy()
    c2 = _colour(rng, (0.1, 0.5), (0.25, 0.85))
    pattern = rng.integers(4)
    angle = rng.uniform(0, np.pi)
    along = np.cos(angle) * x + np.sin(angle) * y
    if pattern == 0:    # gradient
        t = (along + 1.5) / 3.0
    elif pattern == 1:  # stripes
        t = 0.5 + 0.5 * np.sin(along * rng.uniform(6, 14) + rng.uniform(0, 2 * np.pi))
    elif pattern == 2:  # checkerboard
        f = rng.uniform(2, 5)
        t = ((np.floor((x + 1) * f) + np.floor((y + 1) * f)) % 2) * 0.8 + 0.1
    else:               # smooth blobs: a few random plane waves
        t = sum(np.sin(rng.uniform(2, 6) * (np.cos(a) * x + np.sin(a) * y) + rng.uniform(0, 6))
                for a in rng.uniform(0, 2 * np.pi, 3))
        t = (t + 3) / 6
    t = np.clip(t, 0, 1)[..., None]
    noise = rng.normal(0, 0.02, y.shape + (1,))
    return np.clip(c1 * (1 - t) + c2 * t + noise, 0, 1).astype(np.float32)


def render(rng: np.random.Generator, size: int, objects: tuple[int, int], scale: tuple,
           shapes: tuple[str, ...], background: str) -> tuple[np.ndarray, int]:
    """One (size, size, 3) scene in [0, 1] and its number of objects."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    y, x = np.meshgrid(coords, coords, indexing="ij")
    img = _background(rng, y, x, background)
    count = int(rng.integers(objects[0], objects[1] + 1))
    for _ in range(count):
        shape = shapes[rng.integers(len(shapes))]
        radius = rng.uniform(*scale)                       # in units of half the image side
        cy, cx = rng.uniform(-0.6, 0.6, size=2)
        a = rng.uniform(0, 2 * np.pi)
        dx, dy = (x - cx) / radius, (y - cy) / radius
        u, v = np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy
        pixels_per_unit = radius * size / 2
        alpha = np.clip(0.5 - _shape_distance(shape, u, v) * pixels_per_unit, 0, 1)[..., None]
        shade = 0.85 + 0.15 * np.clip(-(u + v) / 2, -1, 1)[..., None]  # light from top-left
        colour = _colour(rng, (0.6, 1.0), (0.65, 1.0)) * shade
        img = img * (1 - alpha) + np.clip(colour, 0, 1) * alpha
    return img.astype(np.float32), count


class LayeredScenes(Dataset):
    uses_rng = False  # each scene has its own generator, seeded by (SEED, index)

    def __init__(self, length: int, size: int, channels: int, seed: int, objects, scale, shapes,
                 background: str, cache_mb: float = 0.0):
        self.length, self.size, self.channels, self.seed = length, size, channels, seed
        self.objects, self.scale = tuple(objects), tuple(scale)
        self.shapes, self.background = tuple(shapes), background
        fits = length * channels * size * size * 4 <= cache_mb * 2 ** 20
        self.cache: dict[int, dict] | None = {} if fits else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self.cache is None:
            return self.render(index)
        if index not in self.cache:
            self.cache[index] = self.render(index)
        item = self.cache[index]
        return {"image": item["image"].clone(), "label": item["label"].clone()}

    def render(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, index])
        img, count = render(rng, self.size, self.objects, self.scale, self.shapes, self.background)
        x = torch.from_numpy(img).permute(2, 0, 1) * 2 - 1
        if self.channels == 1:
            x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
        return {"image": x.contiguous(), "label": torch.tensor(count, dtype=torch.long)}


def check_scene_options(o: dict) -> None:
    if not o["SHAPES"] or any(s not in SHAPES for s in o["SHAPES"]):
        raise option_error("SHAPES", f"a non-empty list of {', '.join(SHAPES)}", o["SHAPES"])
    one_of(o, "BACKGROUND", BACKGROUNDS)
    min_max(o, "OBJECTS", low=0)
    min_max(o, "SCALE", low=0, low_open=True)
    if o["LENGTH"] < 1:
        raise option_error("LENGTH", "positive", o["LENGTH"])
    if o["CACHE_MB"] < 0:
        raise option_error("CACHE_MB", ">= 0 (0: render at every load)", o["CACHE_MB"])


@register("layered_scenes", {"LENGTH": 20000, "SEED": 0, "OBJECTS": [1, 1],
                             "SCALE": [0.3, 0.55], "SHAPES": list(SHAPES),
                             "BACKGROUND": "texture", "CACHE_MB": 0.0}, needs_root=False,
          check=check_scene_options)
def build_layered_scenes(spec: DataSpec) -> Dataset:
    """Procedural shapes on textured backgrounds (no files needed; deterministic by SEED)."""
    o = spec.options
    return LayeredScenes(o["LENGTH"], spec.image_size, spec.channels, o["SEED"], o["OBJECTS"],
                         o["SCALE"], o["SHAPES"], o["BACKGROUND"], o["CACHE_MB"])
