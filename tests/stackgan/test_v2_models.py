"""StackGAN++ networks: shapes of every branch and discriminator, parameter counts, init."""
import pytest
import torch
from easydict import EasyDict

from common import checkpoint
from stackgan.v2 import networks as v2


def gan_cfg(conditional=True, gf=64, df=64, z=100, c=128, r=2):
    return EasyDict(GF_DIM=gf, DF_DIM=df, Z_DIM=z, EMBEDDING_DIM=c, R_NUM=r,
                    B_CONDITION=conditional)


def count(module):
    return sum(p.numel() for p in module.parameters())


# the original networks' counts (docs/stackgan_v2.md, "Measured"; birds config: GF = DF = 64,
# C = 128, R = 2, T = 1024)
@pytest.mark.parametrize("conditional, g, d64, d128, d256", [
    (True, 21_239_696, 5_723_906, 18_834_178, 71_269_122),
    (False, 16_472_208, 2_765_569, 15_875_841, 68_310_785),
])
def test_parameter_counts_match_the_spec(conditional, g, d64, d128, d256):
    with torch.device("meta"):  # counting needs no memory and no initialisation
        G = v2.TreeGenerator(3, 64, 100, 128, 1024, 2, conditional)
        Ds = [v2.BranchDiscriminator(level, 64, 128, conditional) for level in range(3)]
    assert count(G) == g
    if conditional:
        assert count(G.ca_net) == 524_800
    assert [count(d) for d in Ds] == [d64, d128, d256]


@pytest.mark.parametrize("branches", [1, 2, 3])
@pytest.mark.parametrize("conditional", [True, False])
def test_every_branch_and_discriminator_shape(branches, conditional):
    torch.manual_seed(0)
    cfg = gan_cfg(conditional, gf=8, df=2, z=6, c=5, r=1)
    G = v2.build_generator(cfg, branches, text_dim=12)
    Ds = v2.build_discriminators(cfg, branches)
    assert len(Ds) == branches
    z = torch.randn(2, 6)
    emb = torch.randn(2, 12) if conditional else None
    images, mu, logvar = G(z, emb)
    assert [tuple(im.shape) for im in images] == [(2, 3, 64 * 2 ** i, 64 * 2 ** i)
                                                   for i in range(branches)]
    assert all(im.abs().max() <= 1 for im in images)
    if conditional:
        assert mu.shape == logvar.shape == (2, 5)
        assert (mu < 0).any() or (logvar < 0).any()  # GLU, not ReLU: values may be negative
    else:
        assert mu is None and logvar is None
    for d, im in zip(Ds, images):
        out = d(im, mu) if conditional else d(im)
        assert len(out) == (2 if conditional else 1)
        assert all(o.shape == (2,) for o in out)
        assert d.encode(im).shape == (2, 2 * 8, 4, 4)


def test_deeper_branches_build_and_name_the_fifth_branch():
    cfg = gan_cfg(True, gf=16, df=1, z=4, c=4, r=2)
    G = v2.build_generator(cfg, 5, text_dim=8)
    names = dict(G.named_children())
    assert {"h_net4", "img_net4", "h_net5", "img_net5"} <= set(names)
    assert len(G.h_net4.residual) == 1 and len(G.h_net5.residual) == 1  # as the original
    d512, d1024 = v2.build_discriminators(cfg, 5)[3:]
    assert d512.encode(torch.randn(2, 3, 512, 512)).shape == (2, 8, 4, 4)
    assert hasattr(d1024, "img_code_s256_4")


def test_orthogonal_init_and_batchnorm_init():
    torch.manual_seed(0)
    G = v2.build_generator(gan_cfg(True, gf=16, c=32), 1, text_dim=256)
    w = G.ca_net.fc.weight  # (128, 256): orthonormal rows
    assert torch.allclose(w @ w.T, torch.eye(128), atol=1e-4)
    assert torch.all(G.ca_net.fc.bias == 0)
    conv = G.h_net1.upsample1[1].weight.flatten(1)  # (1024, 1024*9): orthonormal rows
    assert torch.allclose(conv @ conv.T, torch.eye(conv.shape[0]), atol=1e-3)
    bn = G.h_net1.upsample1[2]
    assert torch.all(bn.bias == 0) and abs(bn.weight.mean().item() - 1) < 0.01
    assert 0.01 < bn.weight.std().item() < 0.03


def test_state_dict_names_follow_the_original_layout():
    G = v2.TreeGenerator(3, 8, 4, 4, 8, 2, True)
    keys = set(G.state_dict())
    for key in ("ca_net.fc.weight", "h_net1.fc.0.weight", "h_net1.upsample4.1.weight",
                "h_net2.jointConv.0.weight", "h_net3.residual.1.block.3.weight",
                "h_net3.upsample.2.running_mean", "img_net3.img.0.weight"):
        assert key in keys
    D = v2.BranchDiscriminator(2, 2, 4, True)
    dkeys = set(D.state_dict())
    for key in ("img_code_s16.9.weight", "img_code_s64.0.weight", "img_code_s64_2.1.bias",
                "jointConv.0.weight", "logits.0.bias", "uncond_logits.0.weight"):
        assert key in dkeys
    stripped = checkpoint.strip_data_parallel({"module." + k: v for k, v in G.state_dict().items()})
    G.load_state_dict(stripped)
