"""Noise, sample grids, population statistics and interpolation, as the original's tools.

The original's sample.py draws numpy RandomState(seed).rand(150, 1, 1, zlen) * 2 - 1 and tiles
the 150 images 10 x 15 in reading order; scripts/rpgan_interp.py refers to those images by 1-based IDs
(row * 15 + col + 1). The same numpy draw is used here, so IDs (and, for the released
generators, the pictures) match.
"""
from __future__ import annotations

import numpy as np
import torch

from common.errors import UserError

GRID_ROWS, GRID_COLS = 10, 15
POOL = GRID_ROWS * GRID_COLS   # the latent pool of sample.py and rpgan_interp.py
SAMPLE_BATCH = 150             # batch-statistics group size of sample.py
FIXBN_BATCH = 2048             # batch size of the original's fixbn.py
INTERP_STEPS = 11


def noise_pool(seed: int, n: int, z_dim: int) -> torch.Tensor:
    """[n, z_dim] float32 latents in [-1, 1), numpy's draw order (the first 150 are the IDs of
    a sample grid with this seed, whatever n is). Seeds past numpy's 32 bits (the metrics
    layer's per-batch seeds) are folded into them."""
    draw = np.random.RandomState(seed % 2**32).rand(n, z_dim) * 2.0 - 1.0
    return torch.from_numpy(draw.astype(np.float32))


@torch.no_grad()
def render(generator, z: torch.Tensor, population: bool = False,
           batch: int = SAMPLE_BATCH) -> torch.Tensor:
    """Images of latents z (on the generator's device). With batch statistics (the original's
    sample.py) they are taken over groups of `batch` latents; with population statistics each
    image depends on its own latent only."""
    param = next(generator.parameters())
    if population and not generator.has_population_statistics():
        raise UserError("this checkpoint has no population batch-norm statistics; compute them "
                        "once with: python scripts/rpgan_fixbn.py CKPT")
    generator.use_population_statistics(population)
    try:
        parts = z.to(param.device, param.dtype).split(batch)
        return torch.cat([generator(part) for part in parts])
    finally:
        generator.use_population_statistics(False)


@torch.no_grad()
def population_statistics(generator, n: int = FIXBN_BATCH, seed: int = 0) -> None:
    """The original's fixbn, seeded: record each batch-norm layer's mean and biased variance
    over one batch of n latents z ~ U(-1, 1)."""
    param = next(generator.parameters())
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(n, generator.z_dim, generator=g) * 2 - 1
    generator.record_population_statistics(z.to(param.device, param.dtype))


def parse_pairs(items: list[str], pool: int = POOL) -> list[tuple[int, int]]:
    """'a,b' strings -> 0-based index pairs; IDs are 1-based, as in the original."""
    pairs = []
    for item in items:
        parts = item.split(",")
        try:
            a, b = (int(p) for p in parts)
        except ValueError:
            raise UserError(f"pair {item!r} is not of the form ID,ID (two integers)") from None
        for i in (a, b):
            if not 1 <= i <= pool:
                raise UserError(f"pair {item!r}: image ID {i} is outside 1..{pool} (IDs number "
                                f"the {GRID_ROWS} x {GRID_COLS} sample grid in reading order)")
        pairs.append((a - 1, b - 1))
    if not pairs:
        raise UserError("give at least one pair of image IDs, e.g. 137,65")
    return pairs


def lerp(za: torch.Tensor, zb: torch.Tensor, steps: int) -> torch.Tensor:
    """[steps, z] from za to zb on a straight line (the original's interp.py)."""
    t = torch.from_numpy(np.linspace(0.0, 1.0, steps).astype(np.float32))[:, None]
    return za[None] * (1 - t) + zb[None] * t


def slerp(za: torch.Tensor, zb: torch.Tensor, steps: int) -> torch.Tensor:
    """[steps, z] from za to zb along the great circle (not in the original; an option)."""
    a, b = za.double(), zb.double()
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:   # (anti)parallel: fall back to the straight line
        return lerp(za, zb, steps)
    t = torch.from_numpy(np.linspace(0.0, 1.0, steps))[:, None]
    out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    out[0], out[-1] = a, b   # exact endpoints
    return out.float()


def interpolation_latents(pool: torch.Tensor, pairs: list[tuple[int, int]],
                          steps: int = INTERP_STEPS, spherical: bool = False) -> torch.Tensor:
    """[len(pairs) * steps, z]: one row per pair, first ID on the left."""
    path = slerp if spherical else lerp
    return torch.cat([path(pool[a], pool[b], steps) for a, b in pairs])
