"""StackGAN++ end to end: the training CLI on the real CUB subset (embeddings written by
scripts/stackgan_embed_captions.py from the real captions) and on an image folder, TRAIN.FLAG False
evaluation files, and scripts/sample.py on the checkpoints."""
import json
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from common import checkpoint, models
from stackgan.v2 import sampling
from tests.conftest import load_script

TINY = ["GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.Z_DIM=6", "GAN.EMBEDDING_DIM=4", "GAN.R_NUM=1",
        "TRAIN.BATCH_SIZE=2", "TRAIN.VIS_COUNT=4", "TRAIN.SNAPSHOT_INTERVAL=2", "WORKERS=0",
        "RUN.LOG_EVERY=1", "RUN.PROGRESS=lines"]


def keep_first(split_dir, count):
    """Shorten a split's index-aligned pickles to its first `count` images (a quick eval)."""
    for name in ("filenames.pickle", "class_info.pickle", "char-ngram-embeddings.pickle"):
        path = split_dir / name
        with open(path, "rb") as f:
            data = pickle.load(f)
        with open(path, "wb") as f:
            pickle.dump(data[:count], f, protocol=2)


def evaluate(run_dir, net_g, *overrides):
    """TRAIN.FLAG False through the model's hook, in-process (one interpreter start less)."""
    module = models.module("stackgan_v2")
    cfg = models.load_config(module, run_dir / "config.yml",
                             ["TRAIN.FLAG=False", f"TRAIN.NET_G={net_g}", *overrides])
    ctx = SimpleNamespace(args=SimpleNamespace(out=None), device=torch.device("cpu"),
                          run_dir=run_dir)
    assert module.main_without_training(cfg, ctx)


@pytest.mark.slow
def test_conditional_cli_on_real_cub(repo, shared_data, tmp_path, cli):
    cub = shared_data / "cub"
    embed = load_script("stackgan_embed_captions").main
    birds = tmp_path / "birds"
    assert embed(["--data-dir", str(cub / "birds"), "--out", str(birds), "--only-present",
                  "--dim", "32"]) == 0
    keep_first(birds / "test", 2)
    data = [f"DATA_DIR={birds}", f"DATASET.CUB_DIR={cub / 'CUB_200_2011'}",
            "EMBEDDING_TYPE=char-ngram", "TEXT.DIMENSION=32"]
    run = tmp_path / "run"
    cli([repo / "scripts" / "train_stackgan.py", "--cfg", repo / "cfg" / "birds_3stages.yml",
         "--out", run, "--device", "cpu", "--max-iters", "2", *TINY, *data], cwd=tmp_path)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["iteration"] == 2
    assert {"G/kl", "D2/wrong", "loss/D/D2", "loss/G/G"} <= set(rows[-1])
    assert np.isfinite(rows[-1]["loss/G/G"])
    snapshot = run / "checkpoints" / "ckpt_0000002.pt"
    assert snapshot.is_file() and (run / "samples" / "fake256_0000002.png").is_file()

    # TRAIN.FLAG False: the original's file layout next to NET_G, one z per image for all
    # of its 10 captions; single images (B_EXAMPLE False) and caption grids (True)
    evaluate(run, snapshot, "TEST.B_EXAMPLE=False", "TEST.ALL_BRANCHES=True")
    root = run / "checkpoints" / "iteration2"
    key = pickle.load(open(birds / "test" / "filenames.pickle", "rb"))[0]
    singles = sorted((root / "single_samples" / "valid").rglob("*.png"))
    assert len(singles) == 2 * 10 * 3
    for size in (64, 128, 256):
        one = root / "single_samples" / "valid" / f"{key}_{size}_sentence9.png"
        assert Image.open(one).size == (size, size)
    evaluate(run, snapshot)
    grid = Image.open(root / "super" / "valid" / f"{key}_256.png")
    assert grid.size == (10 * 258 + 2, 260)

    # metric batches: evaluation-split captions in order, cycling (several samples per caption)
    trainer, _ = checkpoint.load_trainer(run)
    batches = list(sampling.eval_samples(trainer, 24, 0, 8))
    assert [b["image"].shape[0] for b in batches] == [8, 8, 8]
    assert batches[0]["key"][0] == key and batches[2]["caption_index"].tolist()[4:] == [0, 1, 2, 3]
    assert batches[0]["embedding"].shape == (8, 32)

    # scripts/sample.py: the three resolutions side by side, from a caption file
    captions = tmp_path / "captions.npz"
    assert embed(["--captions", str(cub / "birds" / "example_captions" /
                                    "example_captions.txt"), "--out", str(captions),
                  "--dim", "32"]) == 0
    printed = cli([repo / "scripts" / "sample.py", run, tmp_path / "s.png", "--n", "4",
                   "--nrow", "2", "--captions", captions], cwd=tmp_path).stdout
    assert "branches: 12 images" in printed and "256: 4 images" in printed
    assert Image.open(tmp_path / "s.png").size == (6 * 258 + 2, 2 * 258 + 2)
    assert Image.open(tmp_path / "s_256.png").size == (2 * 258 + 2, 2 * 258 + 2)


@pytest.mark.slow
def test_unconditional_cli_on_an_image_folder(repo, shared_data, tmp_path, cli):
    folder = shared_data / "cub" / "CUB_200_2011" / "images" / "001.Black_footed_Albatross"
    run = tmp_path / "run"
    cli([repo / "scripts" / "train_stackgan.py", "--cfg", repo / "cfg" / "church_3stages.yml",
         "--out", run, "--device", "cpu", "--max-iters", "2", f"DATA_DIR={folder}", *TINY],
        cwd=tmp_path)
    last = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert {"G/like_mu1", "G/like_cov2", "D0/real", "loss/G/G"} <= set(last)
    assert "G/kl" not in last and "D0/wrong" not in last
    evaluate(run, run / "checkpoints" / "last.pt", "TEST.SAMPLE_NUM=3", "TEST.B_EXAMPLE=False")
    singles = sorted((run / "checkpoints" / "iteration2" / "train" / "single").iterdir())
    assert [p.name for p in singles] == ["0_256.png", "1_256.png"]  # int(3 / batch 2) batches
    trainer, _ = checkpoint.load_trainer(run)       # what common.metrics does
    batches = list(sampling.eval_samples(trainer, 5, 0, 2))
    assert [b["image"].shape for b in batches] == [(2, 3, 256, 256)] * 2 + [(1, 3, 256, 256)]
