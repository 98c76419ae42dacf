"""Checkpoints written before the models were renamed (stackgan -> stackgan_v1, stackgan2 ->
stackgan_v2) store the old identity; common.models.ALIASES maps it, so they still load: as a
trainer (sample.py, evaluate.py), as v1 weights (STAGE1_G / NET_G) and for --resume."""
import json

import pytest
import torch

from common import checkpoint, cli, models
from common.errors import CheckpointError
from stackgan.v1 import weights
from tests.common.data.textdata import tiny_birds

V1 = ["GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.CONDITION_DIM=6", "GAN.R_NUM=1", "Z_DIM=10",
      "TEXT.DIMENSION=16", "TRAIN.BATCH_SIZE=4"]
V2 = ["GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.Z_DIM=6", "GAN.EMBEDDING_DIM=4", "GAN.R_NUM=1",
      "TEXT.DIMENSION=12", "TRAIN.BATCH_SIZE=2", "TREE.BRANCH_NUM=1"]


def saved_with_old_name(name, overrides, path):
    """A tiny trainer of model `name` and its checkpoint at `path`, whose identity is the name
    the model had before (as a checkpoint written then holds it)."""
    module = models.module(name)
    trainer = module.build(models.load_config(module, None, overrides), torch.device("cpu"))
    state = checkpoint.capture(trainer, {"iteration": 5})
    old = {v: k for k, v in models.ALIASES.items()}[name]
    state["model"] = old
    checkpoint.save(state, path)
    assert torch.load(path, weights_only=True)["model"] == old    # really the old identity
    return trainer


@pytest.mark.parametrize("name, overrides", [("stackgan_v1", V1), ("stackgan_v2", V2)])
def test_a_checkpoint_with_the_old_name_loads_as_the_new_model(name, overrides, tmp_path):
    source = saved_with_old_name(name, overrides, tmp_path / "old.pt")
    assert checkpoint.load(tmp_path / "old.pt")["model"] == name
    trainer, state = checkpoint.load_trainer(tmp_path / "old.pt")
    assert trainer.name == name and state["model"] == name
    assert trainer.progress.iteration == 5
    for key, value in source.nets["G"].state_dict().items():
        assert torch.equal(trainer.nets["G"].state_dict()[key], value), key
    assert models.module("stackgan2") is models.module("stackgan_v2")


def test_old_v1_checkpoints_are_v1_weights_and_others_are_refused(tmp_path):
    source = saved_with_old_name("stackgan_v1", V1, tmp_path / "v1.pt")
    state = weights.load_state(tmp_path / "v1.pt", "G", "STAGE1_G")
    assert all(torch.equal(state[k], v) for k, v in source.nets["G"].state_dict().items())
    saved_with_old_name("stackgan_v2", V2, tmp_path / "v2.pt")
    with pytest.raises(CheckpointError, match="'stackgan_v2' checkpoint, not a StackGAN v1"):
        weights.load_state(tmp_path / "v2.pt", "G", "NET_G")


def test_resume_from_a_checkpoint_with_the_old_name(repo, shared_data, tmp_path):
    birds = tiny_birds(tmp_path / "data", shared_data / "cub")
    run = tmp_path / "run"
    args = ["--cfg", str(repo / "cfg" / "birds_s1.yml"), "--out", str(run), "--device", "cpu",
            *V1, f"DATA_DIR={birds}", f"DATASET.CUB_DIR={shared_data / 'cub' / 'CUB_200_2011'}",
            "RUN.WORKERS=0", "RUN.THREADS=1", "RUN.SAMPLE_EVERY=0", "RUN.LOG_EVERY=1",
            "RUN.PROGRESS=lines"]
    assert cli.train_main("stackgan_v1", [*args, "--max-iters", "1"]) == 0
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["model"] = "stackgan"                    # as StackGAN v1 checkpoints were written
    torch.save(state, last)
    assert cli.train_main("stackgan_v1", [*args, "--max-iters", "2", "--resume", str(last)]) == 0
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["iteration"] == 2
    assert checkpoint.load(last)["model"] == "stackgan_v1"
