"""Whole runs on the real data: the command line end to end (train, then sample with named
attributes), resume equivalence, the MNIST likelihood command, and the sampling helpers."""
import importlib.util
import json

import pytest
import torch
from PIL import Image

from common import checkpoint, models
from common.cli import seed_everything
from common.errors import ConfigError
from common.train import run

TINY = ["MODEL.BASE_CHANNELS=4", "MODEL.LATENT_CHANNELS=16", "TRAIN.BATCH_SIZE=8", "VIS.N=8",
        "RUN.WORKERS=0", "RUN.LOG_EVERY=1"]


def celeba(shared):
    return [f"DATA.ROOT={shared / 'celeba'}", "DATA.OPTIONS.IMAGES=img_align_celeba_89x109",
            "DATA.OPTIONS.MISSING=skip"]


@pytest.mark.parametrize("variant", ["acvaegan", "cvae"])
def test_cli_train_then_sample_with_named_attributes(variant, cli, repo, shared_data, tmp_path):
    out = tmp_path / "run"
    cli(["scripts/train_acvae.py", "--cfg", f"cfg/acvae_celeba64_{variant}.yml", "--out", out,
         "--max-iters", "1", "--device", "cpu", *celeba(shared_data), *TINY], repo)
    assert (out / "checkpoints" / "last.pt").is_file()
    names = {p.name.rsplit("_", 1)[0] for p in (out / "samples").glob("*.png")}
    assert {"reals.png", "recon", "samples", "val_originals"} <= names
    png = tmp_path / "faces.png"
    proc = cli(["scripts/sample.py", out, png, "--n", "8", "--attrs",
                "Male=1,Smiling=1,Eyeglasses=0", "--ref", "000002.jpg", "--sweep", "Smiling",
                "--sweep-steps", "4"], repo)
    assert "wrote" in proc.stdout
    assert Image.open(png).size == (8 * 66 + 2, 66 + 2)
    assert Image.open(tmp_path / "faces_sweep.png").size == (4 * 66 + 2, 2 * 66 + 2)
    assert (tmp_path / "faces_attention.png").is_file() == (variant == "acvaegan")


def run_in_process(overrides, run_dir, state=None):
    mod = models.module("acvae")
    cfg = models.load_config(mod, None, overrides)
    seed_everything(cfg.RUN.SEED)
    tr = mod.build(cfg, torch.device("cpu"))
    run(tr, run_dir, state)
    return tr


@pytest.mark.parametrize("variant", ["acvaegan", "cgan"])
def test_resume_gives_the_same_parameters(variant, shared_data, tmp_path):
    base = [f"MODEL.VARIANT={variant}", *celeba(shared_data), *TINY, "RUN.SAMPLE_EVERY=0",
            "RUN.CKPT_EVERY=1", "TRAIN.MARGIN=0.3"]
    whole = run_in_process(base + ["RUN.MAX_ITERS=2"], tmp_path / "a")
    run_in_process(base + ["RUN.MAX_ITERS=1"], tmp_path / "b")
    state = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.pt")
    resumed = run_in_process(base + ["RUN.MAX_ITERS=2"], tmp_path / "b", state)
    for name, net in whole.nets.items():
        for (key, a), b in zip(net.state_dict().items(), resumed.nets[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{key}"
    for name, opt in whole.optimizers.items():
        calls = [g["gan_calls"] for g in opt.param_groups]
        assert calls == [g["gan_calls"] for g in resumed.optimizers[name].param_groups]


def test_mnist_train_and_nll_command(shared_data, repo, tmp_path, capsys):
    overrides = ["MODEL.VARIANT=mnist_lstm", "DATA.KIND=mnist", "DATA.IMAGE_SIZE=28",
                 "DATA.CHANNELS=1", f"DATA.ROOT={shared_data / 'mnist'}", "VIS.SPLIT=test",
                 *TINY, "RUN.MAX_ITERS=2", "RUN.SAMPLE_EVERY=0"]
    run_in_process(overrides, tmp_path / "m")
    spec = importlib.util.spec_from_file_location("eval_nll", repo / "scripts" / "acvae_eval_nll.py")
    eval_nll = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eval_nll)
    # 2 iterations finish no epoch, so there is no best.pt: score the last checkpoint
    rc = eval_nll.main([str(tmp_path / "m"), "--last", "--samples", "1,4", "--limit", "8",
                        "--batch", "4", "--json", str(tmp_path / "nll.json")])
    assert rc == 0
    records = json.loads((tmp_path / "nll.json").read_text())
    assert [r["samples"] for r in records] == [1, 4] and all(r["images"] == 8 for r in records)
    assert all(r["nll"] > 0 and r["nll"] <= -r["vlb"] + 1e-3 for r in records)
    assert "binarised once with seed 0" in records[0]["test_set"]
    assert "K=     4" in capsys.readouterr().out


def test_attribute_parsing_and_eval_samples(shared_data):
    from acvae import sampling
    from tests.acvae.helpers import trainer
    tr = trainer("acvaegan", extra=celeba(shared_data))
    assert sampling.parse_attrs("Male=1,Smiling=no,Young=0.5", tr) == {20: 1.0, 31: -1.0, 39: 0.5}
    with pytest.raises(ConfigError, match="unknown attribute 'Smilin'"):
        sampling.parse_attrs("Smilin=1", tr)
    ref = sampling.reference_attributes(tr, "000001.jpg")
    assert ref[:3].tolist() == [-1.0, 1.0, 1.0]
    batches = list(sampling.eval_samples(tr, 10, seed=3, batch_size=4))
    assert [len(b["image"]) for b in batches] == [4, 4, 2]
    assert batches[0]["image"].shape[1:] == (3, 64, 64)
    attrs = torch.cat([b["attributes"] for b in batches])
    assert set(attrs.unique().tolist()) == {-1.0, 1.0}
    again = torch.cat([b["attributes"] for b in sampling.eval_samples(tr, 10, 3, 4)])
    assert torch.equal(attrs, again)
