import pickle

import pytest
import torch

from common import checkpoint, models, train
from common.errors import CheckpointError
from tests.common import toy_model


def trained(tmp_path, iters=3):
    cfg = models.load_config(toy_model, None, ["RUN.DEVICE=cpu", f"RUN.MAX_ITERS={iters}"])
    trainer = toy_model.build(cfg, torch.device("cpu"))
    train.run(trainer, tmp_path)
    return trainer


def test_save_is_atomic_and_loads_weights_only(tmp_path):
    path = tmp_path / "c" / "x.pt"
    checkpoint.save({"format": 1, "nets": {}, "value": torch.arange(3)}, path)
    checkpoint.save({"format": 1, "nets": {}, "value": torch.arange(4)}, path)
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]  # no temporary file left
    assert torch.equal(checkpoint.load(path)["value"], torch.arange(4))


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoints_that_carry_code_or_are_not_ours_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": 1, "nets": Payload()}))
    with pytest.raises(CheckpointError, match="evil.pt: not a readable ganrepro checkpoint"):
        checkpoint.load(evil)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not a ganrepro checkpoint"):
        checkpoint.load(other)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        checkpoint.load(tmp_path / "missing.pt")


def test_load_trainer_rebuilds_the_model_from_its_own_config(tmp_path):
    trainer = trained(tmp_path)
    again, state = checkpoint.load_trainer(tmp_path)
    assert state["counters"]["iteration"] == 3 and again.progress.iteration == 3
    for a, b in zip(trainer.nets["G_ema"].parameters(), again.sampling_net().parameters()):
        assert torch.equal(a, b)
    assert not again.sampling_net().training
    assert torch.equal(again.generate(4, seed=1), again.generate(4, seed=1))


def test_restore_refuses_weights_of_another_shape(tmp_path):
    trained(tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    cfg = models.load_config(toy_model, None, ["TOY.WIDTH=4"])
    other = toy_model.build(cfg, torch.device("cpu"))
    with pytest.raises(CheckpointError, match="weights of network 'G' do not fit"):
        checkpoint.restore(other, state)


def test_find_latest_and_resolve(tmp_path):
    assert checkpoint.find_latest(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    for name in ["ckpt_0000010.pt", "ckpt_0000020.pt"]:
        (tmp_path / "checkpoints" / name).write_bytes(b"")
    assert checkpoint.find_latest(tmp_path).name == "ckpt_0000020.pt"
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    assert checkpoint.resolve(tmp_path).name == "last.pt"
    with pytest.raises(CheckpointError, match="has no checkpoints"):
        checkpoint.resolve(tmp_path / "checkpoints")


def test_rng_state_round_trip():
    import random

    import numpy as np
    state = checkpoint.rng_state(torch.device("cpu"))
    expected = (torch.rand(2), random.random(), np.random.rand())
    checkpoint.set_rng_state(state, torch.device("cpu"))
    assert (torch.rand(2), random.random(), np.random.rand())[1:] == expected[1:]
    checkpoint.set_rng_state(state, torch.device("cpu"))
    assert torch.equal(torch.rand(2), expected[0])


@pytest.mark.parametrize("fault", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_save_keeps_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch,
                                                                           fault):
    path = tmp_path / "last.pt"
    checkpoint.save({"format": 1, "nets": {}, "value": torch.arange(1)}, path)

    def write_half_then_fail(obj, f):
        f.write(b"half a checkpoint")
        raise fault

    monkeypatch.setattr(torch, "save", write_half_then_fail)
    expected = CheckpointError if isinstance(fault, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as caught:
        checkpoint.save({"format": 1, "nets": {}, "value": torch.arange(2)}, path)
    if expected is CheckpointError:
        assert "No space left on device); the previous one is kept" in str(caught.value)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.equal(checkpoint.load(path)["value"], torch.arange(1))


def test_a_temporary_file_left_by_a_killed_save_is_removed_by_the_next(tmp_path):
    (tmp_path / ".last.pt.tmp12345").write_bytes(b"a save killed by SIGKILL")
    checkpoint.save({"format": 1, "nets": {}, "value": torch.arange(2)}, tmp_path / "last.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_save_where_a_file_stands_for_the_folder_is_one_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CheckpointError, match=r"file/last.pt: the checkpoint could not be written "
                                              r"\(its folder: "):
        checkpoint.save({"format": 1, "nets": {}}, tmp_path / "file" / "last.pt")


def test_a_save_onto_a_folder_is_one_error(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder; expected a checkpoint file name"):
        checkpoint.save({"format": 1, "nets": {}}, tmp_path)
