"""Generator and discriminators: shapes, parameter counts against the original, init, batch norm."""
import math

import numpy as np
import pytest
import torch

from rpgan.models import (Generator, NoScaleBatchNorm, full_image_discriminator,
                          projected_discriminators)
from rpgan.projection import draw_filters
from rpgan.sampling import population_statistics, render


def count(module):
    return sum(p.numel() for p in module.parameters())


# Parameter counts of the original's TF variables (spec §1.2-1.4): G c1..cL, D c{k}_{j}.
@pytest.mark.parametrize("size,z_dim,width,expected", [(64, 100, 1024, 12_656_515),
                                                       (128, 200, 2048, 51_128_195)])
def test_generator_size_and_shapes(size, z_dim, width, expected):
    with torch.device("meta"):
        g = Generator(z_dim, width, size)
    assert count(g) == expected
    assert [m.out_channels for m in g.deconvs][-1] == 3
    tiny = Generator(z_dim, 16, size)   # shapes at tiny width (a meta forward is slow)
    image = tiny(torch.rand(2, z_dim) * 2 - 1)
    assert image.shape == (2, 3, size, size) and image.abs().max() < 1


@pytest.mark.parametrize("k,size,width,per_d", [(12, 64, 128, 11_018_113),
                                                (48, 64, 128, 11_018_113),
                                                (12, 128, 64, 11_148_225)])
def test_projected_discriminator_sizes(k, size, width, per_d):
    with torch.device("meta"):   # counted without allocating 2.1 GB for K = 48
        bank = projected_discriminators(k, size, width, draw_filters(k, 0))
    assert count(bank) == k * per_d          # face48: 528,869,424
    assert bank.filters.shape == (k, 3, 8, 8)
    assert [l.cout for l in bank.layers][-2:] == [1024, 1]
    # shapes at the same K and image size, tiny width: [B, 3, H, W] -> [B, K]; the
    # projection halves the resolution: 64 -> 32 (faces), 128 -> 64 (dogs)
    x = torch.zeros(2, 3, size, size)
    small = projected_discriminators(k, size, 1, draw_filters(k, 0))
    assert small(x).shape == (2, k)
    assert small._project(x, 0, k).shape == (2, k, size // 2, size // 2)


def test_full_image_baseline_size():
    d = full_image_discriminator(64, 64)
    assert d(torch.zeros(2, 3, 64, 64)).shape == (2, 1)
    assert count(d) == 11_150_273
    assert len(d.layers) == len(projected_discriminators(1, 64, 64, draw_filters(1, 0)).layers) + 1


def test_lecun_uniform_init():
    torch.manual_seed(0)
    g = Generator(16, 32, 16)
    bank = projected_discriminators(3, 16, 8, draw_filters(3, 0))
    checks = [(g.fc.weight, 16)] + [(d.weight, 16 * d.in_channels) for d in g.deconvs]
    checks += [(w, l.kernel ** 2 * l.cin) for w, l in zip(bank.weights, bank.layers)]
    for weight, fan_in in checks:
        bound = math.sqrt(3.0 / fan_in)
        assert weight.abs().max() <= bound
        assert weight.abs().max() > 0.8 * bound
    assert all(float(b.detach().abs().max()) == 0 for b in bank.biases)
    assert float(g.deconvs[-1].bias.detach().abs().max()) == 0
    # each discriminator has its own draw
    assert not torch.equal(bank.weights[1][0], bank.weights[1][1])


def test_batch_norm_has_no_scale_eps_1e3_and_batch_statistics():
    norm = NoScaleBatchNorm(4)
    assert [n for n, _ in norm.named_parameters()] == ["bias"]
    with torch.no_grad():
        norm.bias.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
    x = torch.randn(6, 4, 3, 3) * 0.05 + 2
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    expect = (x - mean) / torch.sqrt(var + 1e-3) + norm.bias.view(1, -1, 1, 1)
    for mode in (norm.train, norm.eval):  # batch statistics in both modes, as the original
        mode()
        assert torch.allclose(norm(x), expect, atol=1e-5)


def test_population_statistics_match_a_hand_computation():
    torch.manual_seed(0)
    g = Generator(8, 16, 16).double()
    population_statistics(g, n=64, seed=5)
    z = (torch.rand(64, 8, generator=torch.Generator().manual_seed(5)) * 2 - 1).double()
    # the original's fixbn by hand, in numpy: per layer, mean and biased variance over
    # (N, H, W) of the pre-norm activation; each layer normalised with those statistics
    fc = g.fc.weight.detach().numpy()
    h = (z.numpy() @ fc.T).reshape(64, 16, 4, 4)
    stats = []
    for i, norm in enumerate(g.norms):
        m, v = h.mean(axis=(0, 2, 3)), h.var(axis=(0, 2, 3))
        stats.append((m, v))
        h = (h - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-3)
        h = np.maximum(h + norm.bias.detach().numpy()[None, :, None, None], 0)
        if i < len(g.deconvs) - 1:
            h = g.deconvs[i](torch.from_numpy(h)).detach().numpy()
    for norm, (m, v) in zip(g.norms, stats):
        assert np.allclose(norm.population_mean.numpy(), m, atol=1e-10)
        assert np.allclose(norm.population_var.numpy(), v, atol=1e-10)
        assert int(norm.population_count) == 64
    # with population statistics an image depends on its own latent only
    a = render(g, z[:10], population=True)
    b = render(g, z[:3].double(), population=True)
    assert torch.allclose(a[:3], b, atol=1e-10)
    c = render(g, z[:3].double(), population=False)
    assert not torch.allclose(b, c, atol=1e-4)
