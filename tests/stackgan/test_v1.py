"""StackGAN v1 networks: shapes, parameter counts of the original networks, CA behaviour, key
names."""
import pytest
import torch

from stackgan.v1.networks import (CANet, DLogits, Stage1D, Stage1G, Stage2D, Stage2G,
                                   init_weights)


def count(module, trainable_only=False):
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# the original networks' counts (docs/stackgan.md, "Measured"): (GF_DIM, DF_DIM, R_NUM) -> CA,
# Stage-I G, Stage-I D, Stage-II G (trainable), Stage-II D; COCO configs and the config.py
# defaults (the birds widths)
SPEC_COUNTS = {
    (192, 96, 2): (262_400, 20_020_832, 12_407_425, 37_130_480, 159_889_538),
    (128, 64, 4): (262_400, 10_301_248, 5_715_713, 26_290_080, 71_269_122),
}


@pytest.mark.parametrize("widths", sorted(SPEC_COUNTS))
def test_parameter_counts_match_the_spec(widths):
    g, ndf, r = widths
    ca, g1, d1, g2, d2 = SPEC_COUNTS[widths]
    stage1 = Stage1G(100, 128, 1024, g)
    stage2 = Stage2G(Stage1G(100, 128, 1024, g), g, 128, 1024, r)
    assert count(stage1.ca_net) == ca and count(stage2.ca_net) == ca
    assert count(stage1) == g1 and count(Stage1D(ndf, 128)) == d1
    assert count(stage2, trainable_only=True) == g2
    assert count(stage2) == g2 + g1                        # the frozen Stage-I G is inside
    assert count(Stage2D(ndf, 128)) == d2


def test_tf_switch_parameter_counts():
    """Birds widths with the TF D head: the 3x3 join conv (640 -> 512) becomes 1x1 and D gets
    its own Linear 1024 -> 128 (+ bias): 5,715,713 - 2,949,120 + 327,680 + 131,200."""
    assert count(Stage1D(64, 128, text_dim=1024)) == 3_225_473
    assert count(Stage2D(64, 128, text_dim=1024)) == 71_269_122 - 2_949_120 + 327_680 + 131_200
    assert count(CANet(1024, 128, "lrelu_logsigma")) == 262_400


def test_shapes_of_every_network():
    torch.manual_seed(0)
    text, z = torch.randn(3, 32), torch.randn(3, 10)
    g1 = Stage1G(10, 6, 32, gf_dim=4)
    none, img64, mu, logvar = g1(text, z)
    assert none is None and img64.shape == (3, 3, 64, 64) and mu.shape == logvar.shape == (3, 6)
    assert img64.abs().max() <= 1
    d1 = Stage1D(4, 6)
    code = d1(img64)
    assert code.shape == (3, 32, 4, 4) and d1.get_uncond_logits is None
    assert d1.get_cond_logits(code, mu).shape == (3,)
    g2 = Stage2G(g1, gf_dim=8, condition_dim=6, text_dim=32, r_num=2)
    low, img256, mu2, _ = g2(text, z)
    assert low.shape == (3, 3, 64, 64) and img256.shape == (3, 3, 256, 256)
    d2 = Stage2D(2, 6, text_dim=32)
    code2 = d2(img256)
    assert code2.shape == (3, 16, 4, 4)
    assert d2.get_cond_logits(code2, text).shape == d2.get_uncond_logits(code2).shape == (3,)


def test_ca_variants():
    torch.manual_seed(0)
    text = torch.randn(256, 16)
    pt = CANet(16, 8, "relu_logvar")
    c, mu, logvar = pt(text)
    assert (mu >= 0).all() and (logvar >= 0).all()          # the ReLU quirk: sigma >= 1
    c2, _, _ = pt(text)
    assert not torch.equal(c, c2)                            # fresh noise at every call
    tf = CANet(16, 8, "lrelu_logsigma")
    with torch.no_grad():
        tf.fc.weight.zero_()
        tf.fc.bias.copy_(torch.cat([torch.zeros(8), torch.full((8,), -1.0)]))
    c, mu, logvar = tf(text)
    assert torch.allclose(logvar, torch.full_like(logvar, -0.4))   # 2 * LeakyReLU(-1)
    eps = c / torch.exp(torch.tensor(-0.2))
    assert eps.abs().max() <= 2.0 and eps.std() > 0.7        # truncated at 2 sigma


def test_stage2_freezes_stage1_and_its_bn_mode():
    g1 = Stage1G(10, 6, 32, gf_dim=4)
    g2 = Stage2G(g1, gf_dim=8, condition_dim=6, text_dim=32, r_num=1, stage1_bn_train=True)
    assert not any(p.requires_grad for p in g2.STAGE1_G.parameters())
    g2.train()
    assert g2.STAGE1_G.training                      # original: batch stats inside Stage-II
    before = g2.STAGE1_G.fc[1].running_mean.clone()
    g2(torch.randn(4, 32), torch.randn(4, 10))
    assert not torch.equal(before, g2.STAGE1_G.fc[1].running_mean)
    g2.stage1_bn_train = False
    g2.train()
    assert g2.training and not g2.STAGE1_G.training  # the fix: frozen BN


def test_original_key_names_load():
    """The names of the released StackGAN-Pytorch state dicts (spot checks)."""
    g2 = Stage2G(Stage1G(10, 6, 32, 4), 8, 6, 32, 2)
    keys = set(g2.state_dict())
    for key in ("STAGE1_G.ca_net.fc.weight", "STAGE1_G.fc.0.weight", "STAGE1_G.fc.1.running_var",
                "STAGE1_G.upsample4.1.weight", "STAGE1_G.img.0.weight", "ca_net.fc.bias",
                "encoder.5.weight", "hr_joint.1.weight", "residual.1.block.4.bias",
                "upsample4.2.weight", "img.0.weight"):
        assert key in keys, key
    d2 = set(Stage2D(2, 6).state_dict())
    for key in ("encode_img.0.weight", "encode_img.21.running_mean",
                "get_cond_logits.outlogits.0.weight", "get_cond_logits.outlogits.3.bias",
                "get_uncond_logits.outlogits.0.bias"):
        assert key in d2, key


def test_init_weights():
    torch.manual_seed(0)
    net = Stage1D(64, 128)
    net.apply(init_weights)
    conv = net.encode_img[2].weight
    assert abs(conv.std().item() - 0.02) < 0.002
    bn = net.encode_img[3]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and bn.bias.abs().max() == 0
    head = DLogits(4, 6)
    head.apply(init_weights)
    assert head.outlogits[3].bias is not None       # final conv bias: PyTorch default init
