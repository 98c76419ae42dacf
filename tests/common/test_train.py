"""The common loop, driven in-process with the toy model."""
import json
import os
import signal

import pytest
import torch

from common import checkpoint, models, train
from common.errors import TrainingDiverged
from common.trainer import update_ema
from tests.common import toy_model


def make(overrides=(), device="cpu"):
    cfg = models.load_config(toy_model, None, ["RUN.DEVICE=cpu", *overrides])
    torch.manual_seed(cfg.RUN.SEED)
    return toy_model.build(cfg, torch.device(device))


def test_run_writes_the_run_directory(tmp_path):
    trainer = make(["RUN.SAMPLE_EVERY=10", "RUN.SNAPSHOT_EVERY=16"])
    progress = train.run(trainer, tmp_path)
    assert progress.iteration == 32 and progress.nimg == 32 * 16
    for name in ["config.yml", "env.json", "log.txt", "stats.jsonl", "samples/reals.png",
                 "samples/fakes_0000010.png", "samples/fakes_0000032.png",
                 "checkpoints/last.pt", "checkpoints/ckpt_0000016.pt"]:
        assert (tmp_path / name).is_file(), name
    assert any((tmp_path / "tb").iterdir())
    rows = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [5, 10, 15, 20, 25, 30, 32]
    assert {"loss/D", "loss/G", "img_per_s", "kimg", "epoch"} <= set(rows[0])
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["counters"] == {"iteration": 32, "epoch": 2, "nimg": 512}
    assert set(state["nets"]) == {"G", "D", "G_ema"}
    assert "it 32/32" in (tmp_path / "log.txt").read_text()


def test_ema_follows_the_live_generator(tmp_path):
    trainer = make(["RUN.MAX_ITERS=6"])
    train.run(trainer, tmp_path)
    g, ema = trainer.nets["G"], trainer.nets["G_ema"]
    assert any(not torch.equal(a, b) for a, b in zip(g.parameters(), ema.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(g.buffers(), ema.buffers()))
    assert trainer.sampling_net() is ema and trainer.sampling_net(ema=False) is g


def test_update_ema_formula():
    live, avg = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = avg.weight.detach().clone()
    update_ema(avg, live, 0.9)
    assert torch.allclose(avg.weight, 0.9 * before + 0.1 * live.weight)


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = make(["TOY.NAN_AT=7", "RUN.CKPT_EVERY=3", "RUN.NAN_CHECK_EVERY=1"])
    with pytest.raises(TrainingDiverged, match=r"phase\(s\) D, G became NaN or Inf by iteration 8.*"
                                               r"last\.pt \(iteration 6\)"):
        train.run(trainer, tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["counters"]["iteration"] == 6
    assert all(torch.isfinite(t).all() for t in state["nets"]["D"].values())


def test_loss_dict_phases_and_bf16_autocast(tmp_path):
    trainer = make(["TOY.LOSS_DICT=true", "RUN.PRECISION=bf16", "RUN.MAX_ITERS=4"])
    before = [p.detach().clone() for p in trainer.nets["D"].parameters()]
    train.run(trainer, tmp_path)
    assert all(not torch.equal(a, b) for a, b in zip(before, trainer.nets["D"].parameters()))
    assert "loss/D/D" in (tmp_path / "stats.jsonl").read_text()


def test_sampling_does_not_change_training_state(tmp_path):
    trainer = make()
    trainer.nets["G"].train()
    buffers = [b.clone() for b in trainer.nets["G"].buffers()]
    torch.manual_seed(1)
    expected = torch.rand(2)
    torch.manual_seed(1)
    loop = train.Loop(trainer, tmp_path, None)
    loop.progress = trainer.progress
    loop.samples()
    assert torch.equal(torch.rand(2), expected)
    assert all(torch.equal(a, b) for a, b in zip(buffers, trainer.nets["G"].buffers()))
    assert (tmp_path / "samples" / "fakes_0000000.png").is_file()


def test_weights_that_overflow_while_the_losses_stay_finite_are_never_saved(tmp_path):
    """The last update turns D's weights to Inf after its losses were computed (G's gradients
    through D, and so G and its EMA, follow): the end-of-run save refuses, and last.pt stays the finite one of iteration 4, also over a resume."""
    trainer = make(["RUN.MAX_ITERS=6", "RUN.CKPT_EVERY=2"])
    step = trainer.g_step

    def g_step_then_overflow(batch):
        loss = step(batch)
        if trainer.progress.iteration == 5:
            trainer.nets["D"].net[0].weight.data.fill_(float("inf"))
        return loss

    trainer.g_step = g_step_then_overflow
    with pytest.raises(TrainingDiverged, match=r"parameters of network\(s\) G, D, G_ema are NaN or Inf at "
                                               r"iteration 6; last\.pt not written; last good "
                                               r"checkpoint: .*last\.pt \(iteration 4\)"):
        train.run(trainer, tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["counters"]["iteration"] == 4
    assert all(torch.isfinite(t).all() for t in state["nets"]["D"].values())

    resumed = make(["RUN.MAX_ITERS=6", "RUN.CKPT_EVERY=2"])
    resumed.g_step = lambda batch, step=resumed.g_step: (
        resumed.nets["D"].net[0].weight.data.fill_(float("nan")), step(batch))[1]
    with pytest.raises(TrainingDiverged, match="the checkpoint this run resumed from"):
        train.run(resumed, tmp_path, state)
    assert checkpoint.load(tmp_path / "checkpoints" / "last.pt")["counters"]["iteration"] == 4


def test_sigterm_stops_cleanly_with_a_checkpoint(tmp_path):
    trainer = make(["TOY.EPOCHS=50"])
    step = trainer.g_step

    def g_step_then_terminate(batch):
        if trainer.progress.iteration == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(batch)

    trainer.g_step = g_step_then_terminate
    progress = train.run(trainer, tmp_path)
    assert progress.iteration == 5
    assert checkpoint.load(tmp_path / "checkpoints" / "last.pt")["counters"]["iteration"] == 5
    assert "resume with --resume auto" in (tmp_path / "log.txt").read_text()


@pytest.fixture
def restore_threads():
    """RUN.THREADS sets torch's thread count for the whole process: put it back after."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_epoch_score_selects_best_pt_and_survives_resume(tmp_path, restore_threads):
    """Trainer.epoch_score: reported after each epoch; best.pt where it was best (here the
    higher, epoch 1 of 3); the best value rides in the checkpoints into a resumed run."""
    from common.trainer import EpochScore

    class Scored(toy_model.ToyTrainer):
        def epoch_score(self):
            it = self.progress.iteration  # 16 iterations per epoch
            return EpochScore("acc", {16: 0.9, 32: 0.5, 48: 0.7}[it], lower_is_better=False)

    cfg = models.load_config(toy_model, None, ["RUN.DEVICE=cpu", "TOY.EPOCHS=3",
                                               "RUN.MAX_ITERS=32", "RUN.THREADS=1"])
    train.run(Scored(cfg, torch.device("cpu")), tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [(r["iteration"], r["acc"], r["acc/best"]) for r in rows if "acc" in r] == [
        (16, 0.9, 0.9), (32, 0.5, 0.9)]
    assert checkpoint.load(tmp_path / "checkpoints" / "best.pt")["counters"]["iteration"] == 16
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["selection"] == {"name": "acc", "value": 0.9, "lower_is_better": False,
                                  "iteration": 16, "epoch": 1}
    cfg.RUN.MAX_ITERS = 48
    train.run(Scored(cfg, torch.device("cpu")), tmp_path, state)
    assert checkpoint.load(tmp_path / "checkpoints" / "last.pt")["selection"]["value"] == 0.9
    assert checkpoint.load(tmp_path / "checkpoints" / "best.pt")["counters"]["iteration"] == 16
    plain = tmp_path / "plain"  # the default (None): no best.pt, no extra stats rows
    train.run(make(["RUN.MAX_ITERS=16", "RUN.THREADS=1"]), plain)
    assert not (plain / "checkpoints" / "best.pt").exists()
    assert "selection" not in checkpoint.load(plain / "checkpoints" / "last.pt")
