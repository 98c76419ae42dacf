"""End to end on the real CUB subset: embeddings from the real captions, Stage-I, Stage-II,
sampling with TRAIN.FLAG False, and scripts/sample.py on the real example_captions.t7."""
import json

import pytest
from PIL import Image

from common.data.text_files import load_captions
from tests.conftest import load_script

TINY = ["GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.CONDITION_DIM=6", "GAN.R_NUM=1", "Z_DIM=10",
        "TRAIN.BATCH_SIZE=4", "RUN.WORKERS=0", "RUN.SAMPLE_EVERY=0", "RUN.LOG_EVERY=1"]


def test_config_decides_the_version(repo, tmp_path):
    script = load_script("train_stackgan")
    (tmp_path / "v2.yml").write_text("CONFIG_NAME: '3stages'\nTREE:\n    BRANCH_NUM: 3\n")
    assert script.model_for(str(tmp_path / "v2.yml")) == "stackgan_v2"
    assert script.model_for(str(repo / "cfg" / "coco_s1.yml")) == "stackgan_v1"
    assert script.model_for(str(tmp_path / "missing.yml")) == "stackgan_v1"


@pytest.mark.slow
def test_train_then_sample_on_real_cub(repo, shared_data, tmp_path, cli, capsys):
    cub = shared_data / "cub"
    embed = load_script("stackgan_embed_captions").main
    assert embed(["--data-dir", str(cub / "birds"), "--out", str(tmp_path / "birds"),
                  "--only-present"]) == 0
    data = [f"DATA_DIR={tmp_path / 'birds'}", f"DATASET.CUB_DIR={cub / 'CUB_200_2011'}",
            f"DATASET.TEXT_DIR={cub / 'birds' / 'text'}", "EMBEDDING_TYPE=char-ngram"]
    script = repo / "scripts" / "train_stackgan.py"
    s1, s2, out = tmp_path / "s1", tmp_path / "s2", tmp_path / "eval"
    cli([script, "--cfg", repo / "cfg" / "birds_s1.yml", "--out", s1, "--device", "cpu",
         "--max-iters", "2", *TINY, *data], cwd=tmp_path)
    rows = [json.loads(line) for line in (s1 / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["iteration"] == 2 and {"D_loss_wrong", "G_loss", "KL_loss"} <= set(rows[-1])
    assert (s1 / "checkpoints" / "last.pt").is_file() and (s1 / "samples" / "reals.png").is_file()

    train = load_script("train_stackgan").main      # in-process: one import less
    assert train(["--cfg", str(repo / "cfg" / "birds_s2.yml"), "--out", str(tmp_path / "bad"),
                  "--device", "cpu", "--max-iters", "1", "STAGE1_G=", *TINY, *data]) == 2
    assert "Stage-II training needs the trained Stage-I generator" in capsys.readouterr().err

    done = cli([script, "--cfg", repo / "cfg" / "birds_s2.yml", "--out", s2, "--device", "cpu",
                "--max-iters", "1", f"STAGE1_G={s1}", *TINY, *data], cwd=tmp_path)
    assert "frozen Stage-I generator loaded" in done.stdout

    cli([script, "--cfg", repo / "cfg" / "birds_eval.yml", "--out", out, "--device", "cpu",
         f"NET_G={s2}", "SAMPLE.MAX_CAPTIONS=5", "SAMPLE.NUM_COPY=2", *TINY, *data], cwd=tmp_path)
    singles = sorted((out / "single").rglob("*.png"))
    assert len(singles) == 10 and not (out / "checkpoints").exists()
    assert Image.open(singles[0]).size == (256, 256)
    assert len(list((out / "grids").rglob("*.png"))) == 5
    first = (out / "captions.txt").read_text().splitlines()[0].split("\t")
    assert first[0] == "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18_sentence0"
    real = load_captions(cub / "birds" / "text" / "001.Black_footed_Albatross" /
                         "Black_Footed_Albatross_0046_18.txt")
    assert first[1] == real[0]                                  # the caption's own sentence

    t7 = cub / "birds" / "example_captions" / "example_captions.t7"
    printed = cli([repo / "scripts" / "sample.py", s2, tmp_path / "t7.png", "--n", "3",
                   "--copies", "3", "--captions", t7], cwd=tmp_path).stdout
    assert "samples: 3 images" in printed and "stage1: 3 images" in printed
    assert Image.open(tmp_path / "t7.png").size == (3 * 258 + 2, 260)
