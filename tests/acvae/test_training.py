"""One iteration of every variant through the common loop's phase runner, and the update rules
(which module learns from which loss, the D gate, the original's bugs and their fixes)."""
import pytest
import torch

from tests.acvae.helpers import batch, changed, one_iteration, snapshot, trainer

VARIANTS = ["cvae", "cgan", "cvaegan", "crvaegan", "acvaegan", "mnist_baseline", "mnist_conv",
            "mnist_lstm"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_iteration_updates_every_network(variant, tmp_path):
    tr = trainer(variant, extra=["TRAIN.MARGIN=0.0"])      # D never gated
    if variant == "cgan":
        tr.prev_real = batch(tr, seed=3)["image"]            # not the first batch of an epoch
    before = {k: snapshot(n) for k, n in tr.nets.items()}
    loop = one_iteration(tr, tmp_path)
    assert all(bool(ok) for ok in loop.finite.values())
    for name, net in tr.nets.items():
        if name != "vis":
            assert changed(before[name], net), f"{variant}: {name} did not learn"


def test_cvaegan_encoder_never_sees_the_gan_gradient(tmp_path):
    """Through a whole iteration: the GAN weight changes the decoder, never the encoder."""
    runs = {}
    for beta in (0.0, 100.0):
        tr = trainer("cvaegan", extra=[f"TRAIN.BETA={beta}"], seed=5)
        torch.manual_seed(6)
        one_iteration(tr, tmp_path, batch(tr))
        runs[beta] = tr
    same = lambda name: all(torch.equal(a, b) for a, b in zip(  # noqa: E731
        runs[0.0].nets[name].parameters(), runs[100.0].nets[name].parameters()))
    assert same("encoder") and same("enc_rgb") and same("prior")
    assert not same("decoder") and not same("to_rgb")


def test_cvaegan_decoder_recompute_keeps_bn_statistics(tmp_path):
    """The dec step re-runs the decoder on the vae step's z: same image, statistics counted once
    for it (and once for the prior sample), as the original's single forward."""
    tr = trainer("cvaegan")
    b = batch(tr)
    tr.vae_step(b)
    first = tr._recon.clone()
    bn = tr.nets["decoder"].net[1]
    stats = bn.running_mean.clone()
    from acvae.modules import frozen_bn_stats
    with torch.no_grad(), frozen_bn_stats(tr.nets["decoder"], tr.nets["to_rgb"]):
        again = tr.rgb_out(tr.nets["decoder"](tr._z, b["attributes"]))
    assert torch.allclose(first, again, atol=1e-5)
    assert torch.equal(stats, bn.running_mean) and bn.momentum == 0.9
    tr.dec_step(b)                       # the prior sample's forward counts, the re-run does not
    assert not torch.equal(stats, bn.running_mean)


def gated(variant, fix=False, stage=1):
    return trainer(variant, stage, extra=["TRAIN.MARGIN=1.1", f"FIX.GATE_WHOLE_D={fix}"])


@pytest.mark.parametrize("variant,stage,fix,moved", [
    ("acvaegan", 1, False, {"features", "from_rgb"}),
    ("acvaegan", 1, True, set()),
    ("crvaegan", 1, False, {"from_rgb"}),
    ("crvaegan", 1, True, set()),
    ("crvaegan", 2, False, {"features", "from_rgb"}),
])
def test_gated_discriminator_side(variant, stage, fix, moved, tmp_path):
    tr = gated(variant, fix, stage)
    b = batch(tr)
    Q, D = tr.optimizers["Q"], tr.optimizers["D"]
    for phase in tr.phases()[:2]:             # the generator phases of the iteration
        loop_phase(tr, tmp_path, phase, b)
    before = {k: snapshot(tr.nets[k]) for k in ("disc", "features", "from_rgb")}
    calls = {g["name"]: g["gan_calls"] for g in Q.param_groups + D.param_groups}
    loop_phase(tr, tmp_path, tr.phases()[2], b)
    assert {k for k in before if changed(before[k], tr.nets[k])} == moved
    assert D.group("disc")["gan_calls"] == calls["disc"] + 1     # a gated call still counts
    if variant == "crvaegan" and stage == 1:                      # all three use adam_gan
        assert Q.group("features")["gan_calls"] == calls["features"] + 1
    else:
        assert Q.group("features")["gan_calls"] == 0


def loop_phase(tr, tmp_path, phase, b):
    from common.train import Loop
    loop = Loop(tr, tmp_path, None)
    loop.finite = {phase.name: torch.ones((), dtype=torch.bool)}
    loop.run_phase(phase, b)


def test_crvaegan_stale_gradient_is_the_sample_steps(tmp_path):
    tr = gated("crvaegan")
    b = batch(tr)
    loop_phase(tr, tmp_path, tr.phases()[0], b)
    loop_phase(tr, tmp_path, tr.phases()[1], b)
    params = list(tr.nets["from_rgb"].parameters())
    grads = [p.grad.clone() for p in params]            # left by the sample step's Lz
    assert all(torch.equal(tr.stale[p], g) for p, g in zip(params, grads))
    for p in params:
        p.grad = None
    tr.stale_surrogate(("from_rgb",)).backward()
    assert all(torch.allclose(p.grad, g) for p, g in zip(params, grads))


def test_cvaegan_gate_skips_d_and_from_rgb(tmp_path):
    tr = trainer("cvaegan", extra=["TRAIN.MARGIN=1.1"])
    before = {k: snapshot(tr.nets[k]) for k in ("disc", "from_rgb")}
    one_iteration(tr, tmp_path)
    assert not changed(before["disc"], tr.nets["disc"])
    assert not changed(before["from_rgb"], tr.nets["from_rgb"])
    assert tr.optimizers["D"].group("disc")["gan_calls"] == 1


def test_cgan_first_batch_of_an_epoch_only_fills_previous_reals(tmp_path):
    tr = trainer("cgan")
    before = {k: snapshot(tr.nets[k]) for k in ("G", "D")}
    b = batch(tr)
    one_iteration(tr, tmp_path, b, iteration=5, iters_per_epoch=5)   # first batch of epoch 1
    assert not changed(before["G"], tr.nets["G"]) and not changed(before["D"], tr.nets["D"])
    assert torch.equal(tr.prev_real, b["image"])
    one_iteration(tr, tmp_path, batch(tr, seed=2), iteration=6, iters_per_epoch=5)
    assert changed(before["G"], tr.nets["G"]) and changed(before["D"], tr.nets["D"])


@pytest.mark.parametrize("fix,steps", [(False, 2), (True, 1)])
def test_cgan_d_step_applied_twice_unless_fixed(fix, steps, tmp_path):
    tr = trainer("cgan", extra=[f"FIX.CGAN_SINGLE_D_STEP={fix}"])
    tr.prev_real = batch(tr, seed=3)["image"]
    one_iteration(tr, tmp_path, iteration=1)
    p = next(tr.nets["D"].parameters())
    assert tr.optimizers["D"].state[p]["step"] == steps


@pytest.mark.parametrize("fix,steps,lr", [(False, 1, 1e-3), (True, 2, 3e-4)])
def test_cvae_prior_optimizer_bug_and_fix(fix, steps, lr, tmp_path):
    tr = trainer("cvae", extra=[f"FIX.CVAE_PRIOR_ADAM={fix}", "TRAIN.LR=3e-4"])
    one_iteration(tr, tmp_path)
    one_iteration(tr, tmp_path, iteration=2)
    p = next(tr.nets["prior"].parameters())
    assert tr.optimizers["G"].state[p]["step"] == steps
    tr.set_epoch(200)                                   # the nil state ignored LR and its decay
    assert tr.optimizers["G"].group("prior")["lr"] == pytest.approx(lr * (1 if not fix else 0.125))


def test_acvaegan_optimizer_table():
    tr = trainer("acvaegan", extra=["TRAIN.LR=1e-3", "TRAIN.BETA1=0.5"])
    g = {x["name"]: (x["lr"], x["beta1"], x["clip"]) for o in tr.optimizers.values()
         for x in o.param_groups}
    T = 8
    assert g["encoder"] == (1e-3, 0.9, 0) and g["var_encoder"] == (1e-3 / T, 0.9, 5)
    assert g["var_decoder"] == (1e-3 / T, 0.9, 5) and g["prior"] == (1e-3 / T, 0.9, 5)
    assert g["attention"] == (1e-3, 0.9, 0) and g["disc"] == (5e-4, 0.5, 0)
    assert g["recon"] == (5e-4, 0.5, 0) and g["features"] == (5e-4, 0.5, 0)
    assert g["from_rgb"] == (5e-4, 0.5, 0)
    cr = trainer("crvaegan", extra=["TRAIN.LR=1e-3", "TRAIN.BETA1=0.5"])
    g = {x["name"]: (x["lr"], x["beta1"]) for o in cr.optimizers.values() for x in o.param_groups}
    assert g["disc"] == (1e-3, 0.9) and g["recon"] == (1e-3, 0.9) and g["prior"] == (1e-3, 0.9)
    assert g["features"] == (5e-4, 0.9) and g["from_rgb"] == (5e-4, 0.5)


def test_acvaegan_sample_step_does_not_train_the_prior(tmp_path):
    tr = trainer("acvaegan")
    b = batch(tr)
    out = tr.sample_step(b)
    out["G"].backward()
    assert all(p.grad is None for p in tr.nets["prior"].parameters())
    assert tr.nets["attention"].weight.grad is not None        # through var_dec only
    assert all(p.grad is None for p in tr.nets["encoder"].parameters())
