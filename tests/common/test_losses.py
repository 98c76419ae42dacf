"""The two BCE forms of common/losses.py: where they part, where they agree, under autocast."""
import math

import pytest
import torch
import torch.nn.functional as F

from common.losses import FORMS, bce

EPS = 1e-12  # BCELoss's backward divides by max(p (1 - p), EPS)


def value_and_grad(z: float, target: float, form: str, dtype=torch.float32):
    x = torch.tensor([z], dtype=dtype, requires_grad=True)
    loss = bce(x, target, form)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.item(), grad.item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_damping_at_minus_30_is_the_backward_clamp(dtype):
    """A fake that D rejects with logit -30, labelled real (the G step): the originals' gradient
    is p (1 - p) / EPS = 0.094 of the logits form's, in float64 as in float32."""
    p = 1.0 / (1.0 + math.exp(30.0))
    # the float32 sigmoid is not saturated there: p = 9.4e-14 to full relative precision
    assert math.isclose(torch.sigmoid(torch.tensor(-30.0, dtype=dtype)).item(), p, rel_tol=1e-6)
    loss_s, grad_s = value_and_grad(-30.0, 1.0, "sigmoid_bce", dtype)
    loss_l, grad_l = value_and_grad(-30.0, 1.0, "logits", dtype)
    assert math.isclose(loss_s, 30.0, rel_tol=1e-6) and math.isclose(loss_l, 30.0, rel_tol=1e-6)
    assert math.isclose(grad_l, p - 1.0, rel_tol=1e-6)                        # -1
    assert math.isclose(grad_s, (p - 1.0) * p * (1.0 - p) / EPS, rel_tol=1e-5)  # -0.0936
    assert 0.09 < grad_s / grad_l < 0.095
    # the clamp starts at p (1 - p) = EPS, z = log(EPS) = -27.63: just above it, no damping
    assert math.isclose(value_and_grad(-27.5, 1.0, "sigmoid_bce", dtype)[1],
                        value_and_grad(-27.5, 1.0, "logits", dtype)[1], rel_tol=1e-6)


def test_the_log_clamp_and_the_float32_sigmoid_near_one():
    # label 1, z = -120: BCELoss clamps log p at -100 (the loss stops growing), both dtypes
    for dtype in (torch.float32, torch.float64):
        assert value_and_grad(-120.0, 1.0, "sigmoid_bce", dtype)[0] == 100.0
        assert math.isclose(value_and_grad(-120.0, 1.0, "logits", dtype)[0], 120.0)
    # label 0, z = 20: float32's sigmoid rounds to exactly 1 (from z = 16.64), so the loss is
    # the clamp's 100 and the gradient 0; float64 still resolves p and agrees with logits
    assert torch.sigmoid(torch.tensor(20.0)).item() == 1.0
    assert value_and_grad(20.0, 0.0, "sigmoid_bce") == (100.0, 0.0)
    loss_l, grad_l = value_and_grad(20.0, 0.0, "logits")
    assert math.isclose(loss_l, 20.0, rel_tol=1e-6) and math.isclose(grad_l, 1.0, rel_tol=1e-6)
    loss_64, grad_64 = value_and_grad(20.0, 0.0, "sigmoid_bce", torch.float64)
    assert math.isclose(loss_64, 20.0, rel_tol=1e-8) and math.isclose(grad_64, 1.0, rel_tol=1e-8)


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_the_forms_agree_elsewhere(target):
    """Between the clamp (-27.6) and the float32 sigmoid's 1 (16.6) the gradients agree to
    rounding; so do the values, except label 0 beyond z ~ 2.8, where 1 - p loses digits."""
    z = torch.linspace(-27.5, 16.5, 441)
    a = z.clone().requires_grad_()
    b = z.clone().requires_grad_()
    # one element per loss: the mean would hide single-element differences
    loss_s = torch.stack([bce(a[i:i + 1], target) for i in range(len(z))])
    loss_l = torch.stack([bce(b[i:i + 1], target, "logits") for i in range(len(z))])
    grad_s, = torch.autograd.grad(loss_s.sum(), a)
    grad_l, = torch.autograd.grad(loss_l.sum(), b)
    assert (grad_s - grad_l).abs().max() < 1e-6
    exact = z <= 2.8 if target == 0.0 else torch.ones_like(z, dtype=torch.bool)
    assert (loss_s - loss_l)[exact].abs().max() < 1e-6
    # a batch mean, as the trainers use it
    g = torch.Generator().manual_seed(0)   # seeded, and inside the range where values agree
    batch = (torch.randn(64, generator=g) * 4).clamp(-27.5, 2.8)
    assert torch.allclose(bce(batch, target), bce(batch, target, "logits"), atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("form", FORMS)
def test_autocast_computes_in_float32_on_the_logit_d_gave(form, dtype):
    """Under autocast D's last layer gives reduced-precision logits; the loss is then the
    float32 loss of those logits, with the same damping at -30 (exact in bf16 and fp16)."""
    layer = torch.nn.Linear(4, 1)
    x = torch.randn(8, 4)
    with torch.no_grad():
        layer.bias.fill_(-30.0 - layer(x).mean().item())   # logits near -30
    with torch.autocast("cpu", dtype=dtype):
        logits = layer(x).view(-1)
        loss = bce(logits, 1.0, form)
    assert logits.dtype == dtype and loss.dtype == torch.float32
    plain = bce(logits.detach().float(), 1.0, form)
    assert torch.equal(loss.detach(), plain)
    g_auto, = torch.autograd.grad(loss, layer.bias)
    z = logits.detach().float().requires_grad_()
    g_plain, = torch.autograd.grad(bce(z, 1.0, form), z)
    assert torch.isfinite(g_auto).all()
    assert math.isclose(g_auto.item(), g_plain.sum().item(), rel_tol=1e-2)
    damped = -0.2 < g_auto.item() < 0                    # the logits form gives about -1
    assert damped == (form == "sigmoid_bce")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA autocast needs a CUDA device")
def test_cuda_autocast_refuses_bceloss_but_not_the_helper():
    logits = torch.randn(8, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        half = torch.nn.functional.linear(logits[:, None], torch.ones(1, 1, device="cuda"))[:, 0]
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            F.binary_cross_entropy(torch.sigmoid(half), torch.ones_like(half))
        loss = bce(half, 1.0)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, bce(half.float(), 1.0))


def test_an_unknown_form_is_refused():
    with pytest.raises(ValueError, match="sigmoid_bce"):
        bce(torch.zeros(2), 1.0, "hinge")
