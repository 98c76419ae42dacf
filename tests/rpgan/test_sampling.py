"""Seeded sample grids, population batch norm and interpolation (the original's tools)."""
import numpy as np
import pytest
import torch

from common.errors import UserError
from rpgan import sampling
from rpgan.models import Generator


def test_noise_pool_follows_numpy_draw_order():
    pool = sampling.noise_pool(3, 150, 7)
    raw = np.float32(np.random.RandomState(3).rand(150, 1, 1, 7) * 2.0 - 1.0)
    assert torch.equal(pool, torch.from_numpy(raw.reshape(150, 7)))
    assert torch.equal(sampling.noise_pool(3, 300, 7)[:150], pool)   # IDs do not depend on n
    assert pool.min() >= -1 and pool.max() < 1


def test_interpolation_paths_and_ids():
    pool = sampling.noise_pool(0, 150, 5)
    pairs = sampling.parse_pairs(["137,65", "1,150"])
    assert pairs == [(136, 64), (0, 149)]
    z = sampling.interpolation_latents(pool, pairs, 11)
    assert z.shape == (22, 5)
    assert torch.equal(z[0], pool[136]) and torch.equal(z[10], pool[64])   # first ID on the left
    assert torch.equal(z[11], pool[0]) and torch.equal(z[21], pool[149])
    assert torch.allclose(z[5], (pool[136] + pool[64]) / 2, atol=1e-6)     # linear
    s = sampling.interpolation_latents(pool, pairs[:1], 11, spherical=True)
    assert torch.equal(s[0], pool[136]) and torch.equal(s[10], pool[64])
    norms = s.norm(dim=1)
    assert norms.min() >= min(pool[136].norm(), pool[64].norm()) - 1e-4    # stays on the arc
    for bad in (["1,151"], ["0,3"], ["1-2"], []):
        with pytest.raises(UserError):
            sampling.parse_pairs(bad)


def test_interpolation_endpoints_equal_the_sampled_images():
    torch.manual_seed(0)
    g = Generator(6, 16, 16)
    sampling.population_statistics(g, n=256, seed=0)
    pool = sampling.noise_pool(4, 150, 6)
    grid = sampling.render(g, pool, population=True)                # sample.py --bn population
    pairs = sampling.parse_pairs(["12,140", "77,3"])
    z = sampling.interpolation_latents(pool, pairs, 11)
    rows = sampling.render(g, z, population=True, batch=len(z)).view(2, 11, 3, 16, 16)
    for row, (a, b) in zip(rows, pairs):
        assert torch.allclose(row[0], grid[a], atol=1e-6)
        assert torch.allclose(row[-1], grid[b], atol=1e-6)
    # batch statistics (the original sample.py): images depend on the batch they are in
    batch_grid = sampling.render(g, pool, population=False)
    assert not torch.allclose(batch_grid[:3], sampling.render(g, pool[:3]), atol=1e-4)
    g.clear_population_statistics()
    with pytest.raises(UserError, match="fixbn"):
        sampling.render(g, pool, population=True)
