"""Training: the per-discriminator Adam equivalence, one G and one D step, filters and resume."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common import checkpoint, models
from common import train as train_loop
from common.cli import seed_everything
from common.errors import ConfigError, DataError
from rpgan import trainer as rp
from rpgan.models import projected_discriminators
from rpgan.projection import draw_filters, save_filters_npz

TINY = ["DATA.IMAGE_SIZE=16", "MODEL.Z_DIM=8", "MODEL.G_WIDTH=16", "MODEL.D_WIDTH=2",
        "PROJ.K=3", "TRAIN.BATCH_SIZE=4", "RUN.WORKERS=0", "RUN.LOG_EVERY=1",
        "RUN.SAMPLE_EVERY=0", "RUN.PROGRESS=lines", "RUN.DEVICE=cpu"]


def config(*overrides):
    return models.load_config(rp, None, [*TINY, *overrides])


def d_loss_per_k(logits_real, logits_fake):
    return 0.5 * (F.softplus(-logits_real).mean(0) + F.softplus(logits_fake).mean(0))


def test_one_adam_over_the_bank_equals_k_separate_adams():
    """The original keeps K Adam instances. Adam is element-wise; its only non-elementwise
    quantity is the step count, which every block shares because all K step together; the D
    loss is a *sum* over k, so block k's gradient is exactly dL_k/dtheta_k (a mean would scale
    it by 1/K, which Adam undoes except through eps). No weight decay or global clipping."""
    torch.manual_seed(0)
    k = 3
    bank = projected_discriminators(k, 16, 4, draw_filters(k, 0)).double()
    singles = [bank.discriminator(i) for i in range(k)]
    hyper = dict(lr=1e-2, betas=(0.5, 0.999), eps=1e-8)
    bank_opt = torch.optim.Adam(bank.parameters(), **hyper)
    single_opts = [torch.optim.Adam(net[1:].parameters(), **hyper) for net in singles]
    for _ in range(6):
        real, fake = torch.randn(2, 5, 3, 16, 16, dtype=torch.double)
        bank_opt.zero_grad()
        logits = bank(torch.cat([real, fake]))
        d_loss_per_k(logits[:5], logits[5:]).sum().backward()
        bank_opt.step()
        for net, opt in zip(singles, single_opts):
            opt.zero_grad()
            d_loss_per_k(net(real), net(fake)).sum().backward()
            opt.step()
    for i, net in enumerate(singles):
        convs = [m for m in net if isinstance(m, torch.nn.Conv2d)][1:]
        for w, b, layer, conv in zip(bank.weights, bank.biases, bank.layers, convs):
            assert torch.allclose(bank.conv_weight(w[i], layer), conv.weight, rtol=0, atol=1e-12)
            assert torch.allclose(b[i], conv.bias, rtol=0, atol=1e-12)
    # the weights did move (the comparison is not vacuous)
    torch.manual_seed(0)
    fresh = projected_discriminators(k, 16, 4, draw_filters(k, 0)).double()
    assert (bank.weights[1] - fresh.weights[1]).abs().max() > 1e-3


def test_one_g_step_and_one_d_step_at_tiny_width():
    seed_everything(0)
    t = rp.build(config(), "cpu")
    g, d = t.nets["G"], t.nets["D"]
    assert [p.name for p in t.phases()] == ["G", "D"]   # G first, as train.py
    batch = {"image": torch.rand(4, 3, 16, 16) * 2 - 1}
    d_before = copy.deepcopy(d.state_dict())
    g_before = copy.deepcopy(g.state_dict())
    # G step: mean over k of softplus(-logit); only G gets gradients
    loss = t.g_step(batch)
    assert set(loss) == {"G"} and torch.isfinite(loss["G"])
    loss["G"].backward(inputs=list(g.parameters()))
    assert all(p.grad is None for p in d.parameters())
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in g.parameters())
    t.optimizers["G"].step()
    assert all(torch.equal(v, d_before[k]) for k, v in d.state_dict().items())
    # D step: new z, fakes from the updated G (no gradient into G), sum over k of the BCE
    t.optimizers["G"].zero_grad(set_to_none=True)
    loss = t.d_step(batch)
    assert torch.isfinite(loss) and 3 * 0.5 < float(loss.detach()) < 3 * 1.0
    loss.backward()
    assert all(p.grad is None for p in g.parameters())
    assert all(torch.isfinite(p.grad).all() for p in d.parameters())
    t.optimizers["D"].step()
    assert any(not torch.equal(v, g_before[k]) for k, v in g.state_dict().items())
    assert torch.equal(d.filters, d_before["filters"])


def test_baseline_and_config_checks():
    t = rp.build(config("MODEL.D_TYPE=full", "PROJ.K=1"), "cpu")
    assert not t.nets["D"].projected and t.nets["D"].k == 1
    with pytest.raises(ConfigError, match="PROJ.K"):
        config("MODEL.D_TYPE=full")
    with pytest.raises(ConfigError, match="IMAGE_SIZE"):
        config("DATA.IMAGE_SIZE=48")
    with pytest.raises(ConfigError, match="D_CHUNKS"):
        config("TRAIN.D_CHUNKS=4")


@pytest.mark.parametrize("override, key", [
    ("MODEL.Z_DIM=0", "MODEL.Z_DIM"), ("MODEL.G_WIDTH=0", "MODEL.G_WIDTH"),
    ("MODEL.D_WIDTH=-1", "MODEL.D_WIDTH"), ("PROJ.CHANNELS=0", "PROJ.CHANNELS"),
    ("PROJ.STRIDE=0", "PROJ.STRIDE"), ("PROJ.SEED=-1", "PROJ.SEED"),
    (f"PROJ.SEED={2**32}", "PROJ.SEED")])
def test_widths_and_the_filter_seed_are_checked_when_the_config_is_loaded(override, key):
    with pytest.raises(ConfigError) as err:
        config(override)
    assert err.value.key == key and key in str(err.value)


def test_start_fresh_loads_a_filts_npz_and_checks_it(tmp_path):
    filters = draw_filters(3, seed=11)
    path = save_filters_npz(tmp_path / "K3.npz", filters, 1, 2)
    t = rp.build(config(f"PROJ.FILTERS={path}"), "cpu")
    assert torch.equal(t.nets["D"].filters, draw_filters(3, seed=0))   # drawn at build
    t.start_fresh()
    assert torch.equal(t.nets["D"].filters, filters)
    assert t.extra_state()["filters_source"]["file"] == str(path)
    save_filters_npz(tmp_path / "K4.npz", draw_filters(4, 0), 1, 2)
    t = rp.build(config(f"PROJ.FILTERS={tmp_path / 'K4.npz'}"), "cpu")
    with pytest.raises(DataError, match="K4.npz: holds 4 filters.*PROJ.K=3"):
        t.start_fresh()


@pytest.fixture(scope="module")
def face_list(shared_data, tmp_path_factory):
    images = sorted((shared_data / "celeba" / "img_align_celeba").glob("*.jpg"))
    assert len(images) >= 8
    path = tmp_path_factory.mktemp("lists") / "faces.txt"
    path.write_text("".join(f"{p}\n" for p in images[:8]))
    return path


def run(cfg, run_dir, state=None):
    seed_everything(cfg.RUN.SEED)
    t = rp.build(cfg, "cpu")
    train_loop.run(t, run_dir, state)
    return t


def test_resume_is_exact_and_keeps_the_checkpoints_projections(face_list, tmp_path):
    filters = save_filters_npz(tmp_path / "filts.npz", draw_filters(3, seed=21), 1, 2)
    base = [f"DATA.ROOT={face_list}", f"PROJ.FILTERS={filters}"]
    straight = run(config(*base, "RUN.MAX_ITERS=4"), tmp_path / "a")
    run(config(*base, "RUN.MAX_ITERS=2"), tmp_path / "b")
    state = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.pt")
    assert torch.equal(state["nets"]["D"]["filters"], draw_filters(3, seed=21))
    # the filter file changes on disk: a resumed run still uses the checkpoint's bank
    save_filters_npz(filters, draw_filters(3, seed=99), 1, 2)
    resumed = run(config(*base, "RUN.MAX_ITERS=4"), tmp_path / "b", state)
    assert torch.equal(resumed.nets["D"].filters, draw_filters(3, seed=21))
    for name in ("G", "D"):
        for (key, a), b in zip(straight.nets[name].state_dict().items(),
                               resumed.nets[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{key} differs after resume"
    stats = (tmp_path / "a" / "stats.jsonl").read_text()
    assert "per_d/G_L02" in stats and "per_d/D_L00" in stats and "loss/D_mean" in stats
    final = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.pt")
    assert torch.equal(final["nets"]["D"]["filters"], draw_filters(3, seed=21))
    assert np.isfinite(final["counters"]["iteration"]) and final["counters"]["iteration"] == 4
