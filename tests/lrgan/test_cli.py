"""LR-GAN from the command line: train (demo config, tiny), the decomposition grid, sample.py
--decompose on the checkpoint, resume; the configs of every dataset load."""
import json

import pytest
import torch
from PIL import Image

from common import checkpoint, models

TINY = ["MODEL.NGF=4", "MODEL.NDF=4", "MODEL.CHANNEL_FLOOR=4", "MODEL.NZ=8",
        "TRAIN.BATCH_SIZE=8", "DATA.OPTIONS.LENGTH=64", "RUN.LOG_EVERY=2", "RUN.SAMPLE_EVERY=2",
        "RUN.CKPT_EVERY=2", "RUN.WORKERS=0", "TRAIN.DECOMPOSE_ROWS=4"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, repo):
    from tests.conftest import run_cli
    out = tmp_path_factory.mktemp("lrgan") / "run"
    proc = run_cli(["scripts/train_lrgan.py", "--cfg", "cfg/lrgan_demo.yml", "--out", out,
                    "--max-iters", "4", *TINY], cwd=repo)
    return out, proc


def test_train_writes_the_run_directory_and_decomposition(demo_run):
    out, proc = demo_run
    assert "training lrgan: 4 iterations" in proc.stdout
    for name in ("config.yml", "env.json", "log.txt", "stats.jsonl", "checkpoints/last.pt",
                 "samples/reals.png", "samples/fakes_0000004.png",
                 "samples/decomposition_0000004.png"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["iteration"] == 4
    for key in ("loss/D", "loss/G", "layers/mask1", "layers/scale1", "D/real"):
        assert key in rows[-1]
    # 4 samples x (background + fg, mask, warped fg, warped mask, canvas): 6 tiles of 32 px
    grid = Image.open(out / "samples" / "decomposition_0000004.png")
    assert grid.size == (2 + 6 * 34, 2 + 4 * 34)
    state = checkpoint.load(out / "checkpoints" / "last.pt")
    assert state["model"] == "lrgan" and state["counters"]["iteration"] == 4


def test_sample_script_decomposes_a_checkpoint(demo_run, cli, repo):
    out, _ = demo_run
    target = out / "sampled.png"
    proc = cli(["scripts/sample.py", out, target, "--n", "12", "--nrow", "4", "--decompose", "3",
                "--layers"], cwd=repo)
    assert "decomposition" in proc.stdout
    assert Image.open(target).size == (2 + 4 * 34, 2 + 3 * 34)
    decomposition = Image.open(out / "sampled_decomposition.png")
    assert decomposition.size == (2 + 6 * 34, 2 + 3 * 34)
    for name in ("background", "fg1", "mask1", "fg1_warped", "mask1_warped", "canvas1"):
        assert (out / f"sampled_{name}.png").is_file(), name


def test_resume_continues_an_lrgan_run(demo_run, cli, repo, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    (copy / "checkpoints" / "last.pt").write_bytes((out / "checkpoints" / "last.pt").read_bytes())
    before = checkpoint.load(copy / "checkpoints" / "last.pt")
    proc = cli(["scripts/train_lrgan.py", "--cfg", "cfg/lrgan_demo.yml", "--out", copy,
                "--resume", "auto", "--max-iters", "6", *TINY], cwd=repo)
    assert "resumed at iteration 4" in proc.stdout
    after = checkpoint.load(copy / "checkpoints" / "last.pt")
    assert after["counters"]["iteration"] == 6
    g0, g1 = before["nets"]["G"], after["nets"]["G"]
    assert not torch.equal(g0["Gfgc.convt1.weight"], g1["Gfgc.convt1.weight"])   # it trained
    assert (copy / "samples" / "decomposition_0000006.png").is_file()


def test_mnist_one_config_trains_on_the_real_mnist(shared_data, cli, repo, tmp_path):
    out = tmp_path / "mnist_one"
    cli(["scripts/train_lrgan.py", "--cfg", "cfg/lrgan_mnist_one.yml", "--out", out,
         "--max-iters", "2", f"DATA.ROOT={shared_data / 'mnist'}", *TINY], cwd=repo)
    reals = Image.open(out / "samples" / "reals.png")
    assert reals.mode == "L" and (out / "samples" / "decomposition_0000002.png").is_file()


@pytest.mark.parametrize("name", ["demo", "mnist_one", "mnist_two", "cifar10", "cub", "lfw"])
def test_configs_load(name, repo):
    cfg = models.load_config(models.module("lrgan"), repo / "cfg" / f"lrgan_{name}.yml")
    presets = {"mnist_one": (2, 32, 1.2, 0.3, 64, 50), "mnist_two": (3, 64, 2.0, 0.3, 64, 50),
               "cifar10": (2, 32, 1.2, 0.1, 64, 100), "cub": (2, 64, 1.2, 0.1, 128, 200),
               "lfw": (2, 64, 1.3, 0.1, 64, 100)}
    if name in presets:
        m = cfg.MODEL
        assert (m.NTIMESTEP, cfg.DATA.IMAGE_SIZE, m.MAXOBJSCALE, m.ROT, m.NGF,
                cfg.TRAIN.EPOCHS) == presets[name]
        assert (m.BG_NOISE, m.INIT, m.MASK_GRAD) == ("raw", "legacy", "original")
        assert cfg.TRAIN.BATCH_SIZE == 64 and cfg.TRAIN.LR == 2e-4


def test_bad_config_names_the_key(cli, repo):
    proc = cli(["scripts/train_lrgan.py", "--cfg", "cfg/lrgan_cifar10.yml", "--dry-run",
                "MODEL.NTIMESTEP=3"], cwd=repo, check=False)
    assert proc.returncode == 2 and "MODEL.NTIMESTEP" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli(["scripts/train_lrgan.py", "--cfg", "cfg/lrgan_cifar10.yml", "--dry-run",
                "MODEL.MASK_GRAD=fast"], cwd=repo, check=False)
    assert proc.returncode == 2 and "MODEL.MASK_GRAD" in proc.stderr

