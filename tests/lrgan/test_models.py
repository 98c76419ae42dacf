"""LR-GAN networks: shapes, parameter counts against the original, pose head, init, noise path."""
import math

import pytest
import torch

from common.ops import stnm
from lrgan.discriminator import Discriminator
from lrgan.init import initialise
from lrgan.models import Generator, trunk_channels
from lrgan.pose import PoseHead, pose_matrix, pose_to_theta


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def extra(g: Generator) -> int:
    return sum(count(getattr(g, name)) for name in ("encoderconv", "encoderfc", "nlnet"))


# (nsize, nc, ngf, ndf): G core, G T>2 modules, D -- spec §1.9, rebuilt from the original rules.
ORIGINAL_COUNTS = {
    "cifar10": ((32, 3, 64, 64), 4_601_410, 72_568, 663_296),
    "mnist_one": ((32, 1, 64, 64), 4_595_264, 72_568, 661_248),
    "mnist_two": ((64, 1, 64, 64), 4_790_144, 46_712, 2_763_520),
    "lfw": ((64, 3, 64, 64), 4_794_242, 46_712, 2_765_568),
    "cub": ((64, 3, 128, 128), 16_319_554, 72_824, 11_036_160),
}


def test_cifar10_parameter_counts_and_breakdown():
    g, d = Generator(32, 3, ngf=64), Discriminator(32, 3, 64)
    assert count(g) == 4_601_410 + 72_568
    assert count(d) == 663_296
    parts = {"lstmcell": 80_800, "Gbgc": 1_066_304, "Gbgi": 3_075, "Gfgc": 3_442_432,
             "Gfgi": 6_144, "Gfgm": 2_049, "Gtransform": 606}
    assert {name: count(getattr(g, name)) for name in parts} == parts


@pytest.mark.parametrize("dataset", ["mnist_one", "mnist_two", "lfw", "cub"])
def test_other_parameter_counts(dataset):
    (nsize, nc, ngf, ndf), core, more, d_count = ORIGINAL_COUNTS[dataset]
    g = Generator(nsize, nc, ngf=ngf)
    assert (count(g) - extra(g), extra(g)) == (core, more)
    assert count(Discriminator(nsize, nc, ndf)) == d_count


def test_state_dict_keys_follow_the_original():
    keys = set(Generator(64, 3, ngf=8, channel_floor=8).state_dict())
    for key in ("lstmcell.weight_ih", "Gbgc.convt1.bias", "Gbgc.convt16.weight", "Gbgi.0.bias",
                "Gfgc.bn16.weight", "Gfgi.0.weight",
                "Gfgm.0.bias", "Gtransform.weight", "encoderconv.bn32.weight",
                "encoderfc.0.weight", "nlnet.1.running_mean"):
        assert key in keys, key
    assert "Gfgc.convt1.bias" not in keys and "Gfgi.0.bias" not in keys   # bias-free fg
    d_keys = set(Discriminator(64, 3, 8).state_dict())
    assert {"main.conv64.weight", "main.bn32.weight", "main.conv4.weight"} <= d_keys
    assert "main.bn64.weight" not in d_keys                                 # no BN on layer 1


@pytest.mark.parametrize("nsize", [32, 64])
@pytest.mark.parametrize("steps", [1, 2, 3])
def test_shapes(nsize, steps):
    # T > 2 needs equal trunk outputs: a floor of 2*ngf gives that at both sizes.
    g = Generator(nsize, 3, nz=16, ngf=4, ntimestep=steps, channel_floor=8)
    d = Discriminator(nsize, 3, 4)
    z = torch.randn(steps, 5, 16)
    layers = g(z)
    assert layers.final.shape == (5, 3, nsize, nsize)
    assert len(layers.canvases) == steps and layers.canvases[-1] is layers.final
    assert len(layers.fgs) == len(layers.masks) == len(layers.thetas) == steps - 1
    for fg, mask, theta in zip(layers.fgs, layers.masks, layers.thetas):
        assert fg.shape == (5, 3, nsize, nsize) and mask.shape == (5, 1, nsize, nsize)
        assert theta.shape == (5, 2, 3)
        assert 0 <= mask.min() and mask.max() <= 1
    assert layers.final.abs().max() <= 1
    assert g.Gbgc(z[0][:, :, None, None]).shape[-1] == nsize // 2
    assert d(layers.final).shape == (5, 1)


def test_more_than_two_steps_needs_matching_channels():
    assert trunk_channels(4 * 64, 2 * 64, 64) == trunk_channels(8 * 64, 4 * 64, 64) == 64
    Generator(64, 1, ngf=64, ntimestep=3)                       # MNIST-TWO: fine
    with pytest.raises(ValueError, match="64 px with ngf 64"):
        Generator(32, 3, ngf=64, ntimestep=3)                   # the original crashes here


def test_pose_head_init_and_clamps():
    head = PoseHead(8, maxobjscale=1.2, rot=0.1, translation=1.0)
    pose = head(torch.randn(4, 8))
    assert torch.equal(pose_matrix(pose), torch.tensor([[1.2, 0, 0], [0, 1.2, 0]]).expand(4, 2, 3))
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.5, 0.5, -3.0, -0.5, 9.0, 0.3]))
    # scales in [s0, 2 s0], off-diagonals in [-rot, rot] independently, shifts in [-1, 1]
    assert torch.allclose(head(torch.zeros(1, 8))[0],
                          torch.tensor([1.2, 0.1, -1.0, -0.1, 2.4, 0.3]))
    # zero gradient outside the interval, gradient at the bound itself (where the init sits)
    head2 = PoseHead(8, 1.2, 0.1)
    x = torch.tensor([[0.0] * 8])
    y = head2(x)
    y.sum().backward()
    assert torch.equal(head2.bias.grad, torch.ones(6))          # all entries at or inside bounds
    head.zero_grad()
    head(torch.zeros(1, 8)).sum().backward()
    assert torch.equal(head.bias.grad, torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))


def test_pose_to_theta_matches_the_lrgan_grid():
    """The LR-GAN grid (channels (y, x), base (y, x, 1), inclusive linspace) equals
    affine_grid(theta, align_corners=True) with its last axis flipped (spec §2.5)."""
    torch.manual_seed(0)
    pose = torch.tensor([[1.3, 0.05, 0.2, -0.08, 1.9, -0.4], [2.0, -0.1, -0.7, 0.1, 1.5, 0.9]])
    h, w = 6, 9
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    base = torch.stack(torch.meshgrid(ys, xs, indexing="ij") + (torch.ones(h, w),), -1)
    lrgan_grid = torch.einsum("ijl,bkl->bijk", base, pose_matrix(pose))
    grid = torch.nn.functional.affine_grid(pose_to_theta(pose), [2, 1, h, w], align_corners=True)
    assert torch.allclose(grid.flip(-1), lrgan_grid, atol=1e-6)


def test_translation_moves_the_object_opposite_to_its_sign():
    """T maps canvas -> source: x_t > 0 moves the object's centre to -x_t/x_s (rows, trap T4)."""
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 12:20, 12:20] = 1                                  # a centred square
    pose = torch.tensor([[1.0, 0, 0.5, 0, 1.0, 0]])              # x_t = 0.5: vertical shift
    out = stnm(torch.zeros(1, 1, 32, 32), torch.ones(1, 1, 32, 32), mask, pose_to_theta(pose))
    rows = out[0, 0].sum(1).nonzero().flatten()
    cols = out[0, 0].sum(0).nonzero().flatten()
    assert rows.float().mean() < 12 and 12 <= cols.float().mean() <= 19   # moved up, not sideways


def test_legacy_init_reproduces_the_2017_defaults():
    torch.manual_seed(0)
    g = initialise(Generator(32, 3, nz=16, ngf=8, channel_floor=8), "legacy")
    bn = g.Gbgc.bn1.weight
    assert 0 <= bn.min() and bn.max() <= 1 and bn.std() > 0.1    # U(0, 1), not ones
    convt = g.Gfgc.convt4                                        # ConvT 64 -> 32, k4
    bound = 1 / math.sqrt(convt.in_channels * 16)                # fan-in from in_channels
    assert convt.weight.abs().max() <= bound and convt.weight.abs().max() > 0.9 * bound
    assert torch.equal(g.Gtransform.weight, torch.zeros(6, 16))  # pose head untouched
    assert torch.equal(g.Gtransform.bias, torch.tensor([1.2, 0, 0, 0, 1.2, 0]))
    modern = initialise(Generator(32, 3, nz=16, ngf=8, channel_floor=8), "modern")
    assert torch.equal(modern.Gbgc.bn1.weight, torch.ones(32))


def test_background_noise_path():
    torch.manual_seed(0)
    raw = Generator(32, 3, nz=8, ngf=4, channel_floor=4, bg_noise="raw")
    paper = Generator(32, 3, nz=8, ngf=4, channel_floor=4, bg_noise="lstm")
    paper.load_state_dict(raw.state_dict())
    z = torch.randn(2, 6, 8)
    z_other = z.clone()
    z_other[1] += 1                                              # change only the fg noise
    for g in (raw, paper):
        assert torch.equal(g(z).canvases[0], g(z_other).canvases[0])
    assert not torch.allclose(raw(z).canvases[0], paper(z).canvases[0])
    expected = raw.Gbgi(raw.Gbgc(z[0][:, :, None, None]))
    assert torch.allclose(raw(z).canvases[0], expected)


def test_mask_grad_mode_reaches_the_pose():
    torch.manual_seed(0)
    grads = {}
    z = torch.randn(2, 4, 8)
    for mode in ("original", "full"):
        torch.manual_seed(1)
        g = Generator(32, 3, nz=8, ngf=4, channel_floor=4, mask_grad=mode)
        with torch.no_grad():
            g.Gtransform.bias.copy_(torch.tensor([1.5, 0.05, 0.1, -0.05, 1.6, -0.2]))
        g(z).final.square().sum().backward()
        grads[mode] = g.Gtransform.bias.grad.clone()
        out = g(z).final
    assert torch.isfinite(grads["full"]).all() and torch.isfinite(grads["original"]).all()
    assert not torch.allclose(grads["full"], grads["original"])
    assert out.shape == (4, 3, 32, 32)
