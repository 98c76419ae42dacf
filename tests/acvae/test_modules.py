"""The Torch7-faithful layers against hand-computed values."""
import math

import torch
from torch import nn

from acvae import modules as M
from acvae.decoders import StaticAttention, attention_entropy, doubly_stochastic_loss


def test_crelu_doubles_channels():
    x = torch.tensor([[[[1.0]], [[-2.0]]]])
    assert M.CReLU()(x).flatten().tolist() == [1.0, 0.0, 0.0, 2.0]


def test_mask_dropout_does_not_rescale_and_halves_in_eval():
    torch.manual_seed(0)
    drop = M.MaskDropout(0.5)
    x = torch.full((4, 1000), 3.0)
    y = drop.train()(x)
    assert set(y.unique().tolist()) == {0.0, 3.0}        # kept values are not doubled
    assert 0.4 < (y > 0).float().mean() < 0.6
    assert torch.equal(drop.eval()(x), torch.full_like(x, 1.5))


def test_spatial_dropout_drops_channels_and_stays_on_in_eval():
    torch.manual_seed(0)
    drop = M.SpatialMaskDropout(0.5).eval()
    y = drop(torch.ones(8, 64, 3, 3))
    per_channel = y.view(8, 64, 9)
    assert torch.equal(per_channel.min(-1).values, per_channel.max(-1).values)  # whole channels
    assert set(y.unique().tolist()) == {0.0, 1.0}                               # no rescale
    assert 0 < y.mean() < 1                                                      # still dropping


def test_per_element_bias_shape_and_init():
    torch.manual_seed(0)
    b = M.PerElementBias(64, 4, 4)
    assert b.bias.shape == (64, 4, 4)
    assert b.bias.abs().max() <= 0.01 * math.sqrt(3) + 1e-7
    assert b.bias.abs().max() > 0.015
    assert torch.equal(b(torch.zeros(2, 64, 4, 4))[1], b.bias.detach())


def test_l2_normalize():
    y = M.L2Normalize()(torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(y, torch.tensor([[0.6, 0.8]]), atol=1e-6)


def test_batch_discrimination_matches_hand_computation_with_self_pair():
    bd = M.BatchDiscrimination(2, kernels=1, kernel_dim=2)
    with torch.no_grad():
        bd.T.weight.copy_(torch.eye(2))                  # M = f
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    out = bd(f)
    # L1 distances: d(0,1)=1, d(0,2)=3, d(1,2)=4; the mean over j includes j = i (exp(0) = 1).
    e = math.exp
    expected = [(1 + e(-1) + e(-3)) / 3, (e(-1) + 1 + e(-4)) / 3, (e(-3) + e(-4) + 1) / 3]
    assert torch.allclose(out[:, :2], f)
    assert torch.allclose(out[:, 2], torch.tensor(expected), atol=1e-6)
    assert torch.count_nonzero(bd.T.bias) == 0


def test_batch_discrimination_depends_on_batch_and_gets_gradients():
    torch.manual_seed(0)
    bd = M.BatchDiscrimination(8, 100, 5)
    f = torch.randn(4, 8)
    alone = bd(f[:2])[:, 8:]
    together = bd(f)[:2, 8:]
    assert not torch.allclose(alone, together)
    bd(f).sum().backward()
    assert bd.T.weight.grad is not None and bd.T.weight.grad.abs().sum() > 0


def test_lstm_forget_bias_is_one_on_the_input_side():
    net = M.lstm(5, 7, 2)
    for k in range(2):
        ih, hh = getattr(net, f"bias_ih_l{k}"), getattr(net, f"bias_hh_l{k}")
        assert torch.equal(ih[7:14], torch.ones(7))
        assert not torch.equal(hh[7:14], torch.ones(7))
        assert ih[:7].abs().max() <= 1 / math.sqrt(7)


def test_conv_init_uses_fan_out_and_zero_bias():
    net = M.conv_init(nn.Sequential(nn.Conv2d(100, 2, 3), nn.ConvTranspose2d(2, 50, 4)))
    conv, deconv = net
    assert conv.weight.abs().max() <= math.sqrt(1 / (9 * 2))
    assert conv.weight.abs().max() > math.sqrt(1 / (9 * 100))   # wider than PyTorch's fan-in
    assert deconv.weight.abs().max() <= math.sqrt(1 / (16 * 50))
    assert torch.count_nonzero(conv.bias) == 0 and torch.count_nonzero(deconv.bias) == 0


def test_torch_default_batchnorm_weight_is_uniform():
    torch.manual_seed(0)
    bn = M.torch_default_init(nn.BatchNorm2d(512))
    assert 0 <= bn.weight.min() and bn.weight.max() <= 1 and bn.weight.std() > 0.2
    assert M.bn_init(nn.Sequential(bn))[0].weight.eq(1).all()


def test_frozen_bn_stats_keeps_running_statistics():
    bn = nn.BatchNorm2d(3, momentum=0.9)
    x = torch.randn(4, 3, 2, 2) + 5
    with M.frozen_bn_stats(bn):
        y = bn(x)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and bn.momentum == 0.9
    assert torch.allclose(y, bn(x), atol=1e-6)           # same batch-statistics output
    assert bn.running_mean.mean() > 4


def test_attention_softmax_runs_over_time_steps():
    att = StaticAttention(8, 40)
    with torch.no_grad():
        att.weight.copy_(torch.arange(320.0).view(8, 40) / 100)
    a = att()
    assert torch.allclose(a.sum(0), torch.ones(40))      # each attribute's column sums to 1
    assert torch.allclose(a.sum(), torch.tensor(40.0))
    col = torch.arange(0.0, 320.0, 40.0) / 100           # attribute 0 over the 8 steps
    assert torch.allclose(a[:, 0], torch.softmax(col, 0))
    y = torch.randn(3, 40)
    assert torch.allclose(StaticAttention.attend(a, y)[1, 5], a[5] * y[1])


def test_attention_regularisers_by_hand():
    a = torch.tensor([[0.5, 0.25], [0.5, 0.75]], requires_grad=True)   # T = 2, A = 2
    ds = doubly_stochastic_loss(a)                     # rows sum to 0.75, 1.25; A/T = 1
    assert torch.isclose(ds, torch.tensor((0.25 ** 2 + 0.25 ** 2) / 2))
    ent = attention_entropy(a)
    h = -(0.5 * math.log(0.5) * 2 + 0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / 2
    assert torch.isclose(ent, torch.tensor(h))
    ent.backward()
    assert torch.allclose(a.grad, -(torch.log(a.detach()) + 1) / 2)
    # the clamp at 1e-7 does not block the gradient (Torch's EntropyRegularization)
    b = torch.tensor([[0.0, 1.0]], requires_grad=True)
    attention_entropy(b).backward()
    assert torch.isfinite(b.grad).all() and b.grad[0, 0] > 0
