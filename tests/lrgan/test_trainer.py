"""One D step and one G step at tiny width; sampling and the decomposition pictures."""
import pytest
import torch

from common import models
from lrgan import decompose
from lrgan.trainer import build

CORE = ("lstmcell", "Gbgc", "Gbgi", "Gfgc", "Gfgi", "Gfgm", "Gtransform")
TOP = ("encoderconv", "encoderfc", "nlnet")


def tiny_trainer(size=32, steps=2, **extra):
    overrides = [f"DATA.IMAGE_SIZE={size}", f"MODEL.NTIMESTEP={steps}", "MODEL.NGF=4",
                 "MODEL.NDF=4", "MODEL.CHANNEL_FLOOR=8", "MODEL.NZ=8", "TRAIN.BATCH_SIZE=6",
                 "DATA.OPTIONS.LENGTH=16"] + [f"{k}={v}" for k, v in extra.items()]
    cfg = models.load_config(models.module("lrgan"), None, overrides)
    torch.manual_seed(0)
    return build(cfg, torch.device("cpu"))


def grads(module):
    return [p.grad for p in module.parameters()]


@pytest.mark.parametrize("steps", [2, 3])
def test_one_d_step_then_one_g_step(steps):
    tr = tiny_trainer(64 if steps == 3 else 32, steps)
    G, D = tr.nets["G"], tr.nets["D"]
    forwards = []
    G.register_forward_hook(lambda *args: forwards.append(1))
    batch = {"image": torch.stack([tr.dataset()[i]["image"] for i in range(6)])}
    d_phase, g_phase = tr.phases()
    assert (d_phase.optimizers, g_phase.optimizers) == (["D"], ["G"])

    loss_d = d_phase.fn(batch)
    loss_d.backward()
    assert torch.isfinite(loss_d) and loss_d > 0
    assert all(g is not None and torch.isfinite(g).all() for g in grads(D))
    assert all(g is None for g in grads(G))                       # fakes were detached
    tr.optimizers["D"].step()

    D.zero_grad(set_to_none=True)
    loss_g = g_phase.fn(batch)
    loss_g.backward()
    assert torch.isfinite(loss_g) and loss_g > 0
    assert len(forwards) == 1                                     # G step reuses the D step's fakes
    for name in CORE:
        gs = grads(getattr(G, name))
        assert all(g is not None and torch.isfinite(g).all() for g in gs), name
        assert any(g.abs().sum() > 0 for g in gs), name
    top = [g for name in TOP for g in grads(getattr(G, name))]
    if steps == 2:
        assert all(g is None for g in top)                        # built but unused at T = 2
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in top)
    tr.optimizers["G"].step()


def test_sampling_is_seeded_and_leaves_batchnorm_alone():
    tr = tiny_trainer()
    G = tr.nets["G"].eval()
    buffers = [b.clone() for b in G.buffers()]
    a, b = tr.generate(10, seed=3), tr.generate(10, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, tr.generate(10, seed=4))
    assert all(torch.equal(x, y) for x, y in zip(buffers, G.buffers()))
    assert not G.training                                          # mode restored
    chunked = tr.generate_layers(10, seed=3)                       # batch 6: chunks of 6 and 4
    assert chunked.final.shape == (10, 3, 32, 32) and len(chunked.masks[0]) == 10


@pytest.mark.parametrize("steps, columns", [(2, 6), (3, 11)])
def test_decomposition_grid(steps, columns):
    tr = tiny_trainer(64 if steps == 3 else 32, steps, **{"TRAIN.DECOMPOSE_ROWS": 4})
    pictures = tr.snapshot_images()
    assert pictures["fakes"][0].shape[0] == 64
    images, nrow = pictures["decomposition"]
    assert nrow == columns == len(decompose.column_names(steps))
    assert images.shape[0] == 4 * columns and images.min() >= -1 and images.max() <= 1
    layers = tr.generate_layers(4, 0)
    named = decompose.layer_images(layers)
    assert list(named) == decompose.column_names(steps)
    assert torch.equal(named[f"canvas{steps - 1}"], layers.final)
    # masks in [0, 1] are shown as 2m - 1 (black 0, white 1), not clipped as the original did
    _, mask_w = decompose.warped(layers)[-1]
    assert mask_w.min() >= 0 and mask_w.max() <= 1
    assert torch.allclose((named[f"mask{steps - 1}_warped"][:, :1] + 1) / 2, mask_w)
    # where the warped mask is 1 the canvas shows the warped appearance, where 0 the old canvas
    out = named[f"canvas{steps - 1}"]
    previous = layers.canvases[-2]
    outside = (mask_w == 0).expand_as(out)
    assert outside.any()                                          # the frame is 1/1.2 of the canvas
    assert torch.equal(out[outside], previous[outside])


def pin_logits(net, value=-30.0):
    """D's output set to `value` with its gradient path kept: where the two loss forms part."""
    net.register_forward_hook(lambda module, args, out: out - out.detach() + value)


def test_loss_form_switch_default_sigmoid_bce():
    assert tiny_trainer().cfg.TRAIN.LOSS == "sigmoid_bce"
    grads_by_form = {}
    for form in ("sigmoid_bce", "logits"):
        tr = tiny_trainer(**{"TRAIN.LOSS": form})
        batch = {"image": torch.stack([tr.dataset()[i]["image"] for i in range(6)])}
        pin_logits(tr.nets["D"])
        tr.d_step(batch)
        loss = tr.g_step(batch)
        assert abs(loss.item() - 30.0) < 1e-5             # the same value in both forms
        grads_by_form[form] = torch.autograd.grad(loss, list(tr.nets["G"].parameters()),
                                                  allow_unused=True)
    # BCELoss's backward clamp: every G gradient shrinks by p (1 - p) / 1e-12 at logit -30
    p = torch.sigmoid(torch.tensor(-30.0)).item()
    factor = p * (1 - p) / 1e-12
    damped, plain = (torch.cat([g.flatten() for g in grads_by_form[form] if g is not None])
                     for form in ("sigmoid_bce", "logits"))
    assert plain.abs().max() > 0
    # to float32 rounding (biases before BatchNorm have gradients of rounding noise only)
    assert (damped - factor * plain).abs().max() < 1e-5 * damped.abs().max()
