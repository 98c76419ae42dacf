"""crVAE's MNIST model selection: the per-epoch 5-sample NLL in the stats, checkpoints/best.pt,
acvae_eval_nll.py scoring it (or the last with --last), resume keeping the best value, and the
held-out alternative. Runs of 2 tiny epochs on the first digits of the real MNIST."""
import importlib.util
import json

import numpy as np
import pytest
import torch

from common import checkpoint, models
from common.cli import seed_everything
from common.data.mnist import load_mnist
from common.errors import CheckpointError, ConfigError, DataError
from common.train import run

NAME = "nll/test_k5"
TINY = ["MODEL.VARIANT=mnist_conv", "DATA.KIND=mnist", "DATA.IMAGE_SIZE=28", "DATA.CHANNELS=1",
        "VIS.SPLIT=test", "MODEL.BASE_CHANNELS=4", "MODEL.LATENT_CHANNELS=16",
        "TRAIN.BATCH_SIZE=8", "TRAIN.EPOCHS=2", "VIS.N=8", "NLL.BATCH_SIZE=8", "RUN.WORKERS=0",
        "RUN.LOG_EVERY=100", "RUN.SAMPLE_EVERY=0", "RUN.CKPT_EVERY=0", "RUN.THREADS=1"]


@pytest.fixture(autouse=True)
def restore_threads():
    """RUN.THREADS=1 (fast beside other jobs) sets torch's thread count for the whole process."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def write_idx(path, array: np.ndarray) -> None:
    """An idx file of uint8 values (magic 0 0 8 ndim, big-endian dims, the bytes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    path.write_bytes(header + array.tobytes())


@pytest.fixture(scope="module")
def small_mnist(shared_data, tmp_path_factory):
    """The first 48 training and 24 test digits of the real MNIST, as idx files."""
    root = tmp_path_factory.mktemp("mnist")
    for split, stem, n in (("train", "train", 48), ("test", "t10k", 24)):
        images, labels = load_mnist(shared_data / "mnist", split)
        write_idx(root / f"{stem}-images-idx3-ubyte", images[:n].numpy())
        write_idx(root / f"{stem}-labels-idx1-ubyte", labels[:n].numpy().astype(np.uint8))
    return root


def train(root, run_dir, extra=(), state=None):
    mod = models.module("acvae")
    cfg = models.load_config(mod, None, [*TINY, f"DATA.ROOT={root}", *extra])
    seed_everything(cfg.RUN.SEED)
    trainer = mod.build(cfg, torch.device("cpu"))
    run(trainer, run_dir, state)
    return trainer


def rows_with(run_dir, name):
    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    return [r for r in rows if name in r]


def eval_nll(repo):
    spec = importlib.util.spec_from_file_location("eval_nll", repo / "scripts" / "acvae_eval_nll.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epoch_nll_keeps_the_best_model_and_eval_scores_it(small_mnist, repo, tmp_path,
                                                           capsys):
    out = tmp_path / "run"
    train(small_mnist, out)
    rows = rows_with(out, NAME)
    assert [(r["iteration"], r["epoch"]) for r in rows] == [(6, 1), (12, 2)]  # 48 / 8 per epoch
    values = [r[NAME] for r in rows]
    assert all(v > 0 for v in values)
    assert rows[1][f"{NAME}/best"] == min(values)
    best = checkpoint.load(out / "checkpoints" / "best.pt")
    sel = best["selection"]
    assert sel["name"] == NAME and sel["value"] == min(values) and sel["lower_is_better"]
    assert best["counters"]["iteration"] == sel["iteration"] == rows[values.index(min(values))][
        "iteration"]
    last = checkpoint.load(out / "checkpoints" / "last.pt")
    assert last["counters"]["iteration"] == 12 and last["selection"] == sel
    assert not list(out.glob("checkpoints/.*tmp*"))  # written through checkpoint.save

    script = eval_nll(repo)
    args = ["--samples", "2", "--batch", "8", "--json"]
    assert script.main([str(out), *args, str(tmp_path / "best.json")]) == 0
    assert script.main([str(out), "--last", *args, str(tmp_path / "last.json")]) == 0
    best_rec = json.loads((tmp_path / "best.json").read_text())[0]
    last_rec = json.loads((tmp_path / "last.json").read_text())[0]
    assert best_rec["checkpoint"].endswith("best.pt") and best_rec["selection"] == sel
    assert best_rec["iteration"] == sel["iteration"] and best_rec["images"] == 24
    assert last_rec["checkpoint"].endswith("last.pt") and last_rec["iteration"] == 12
    assert best_rec["selected"] and last_rec["selected"] == (sel["iteration"] == 12)
    assert f"the selected model: best {NAME}" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--last: .* is not a run directory"):
        script.checkpoint_to_score(str(out / "checkpoints" / "last.pt"), last=True)


def test_resume_compares_against_the_stored_best(small_mnist, tmp_path):
    out = tmp_path / "run"
    train(small_mnist, out, ["RUN.MAX_ITERS=6"])
    state = checkpoint.load(out / "checkpoints" / "last.pt")
    assert state["selection"]["iteration"] == 6
    state["selection"]["value"] = 1.0          # unbeatable: epoch 2 must not replace best.pt
    before = (out / "checkpoints" / "best.pt").stat().st_mtime_ns
    train(small_mnist, out, state=state)
    last = checkpoint.load(out / "checkpoints" / "last.pt")
    assert last["counters"]["iteration"] == 12
    assert last["selection"]["value"] == 1.0 and last["selection"]["iteration"] == 6
    assert (out / "checkpoints" / "best.pt").stat().st_mtime_ns == before
    assert rows_with(out, NAME)[-1][f"{NAME}/best"] == 1.0


def test_heldout_selection_trains_without_the_held_out_digits(small_mnist, tmp_path):
    out = tmp_path / "run"
    trainer = train(small_mnist, out, ["NLL.SELECT_ON=heldout", "NLL.HELDOUT=16",
                                       "RUN.MAX_ITERS=4"])
    assert len(trainer.dataset()) == 32                     # 4 iterations = one epoch
    from acvae.train_mnist import heldout_split
    kept, held = heldout_split(trainer.cfg)
    assert len(held) == 16 and len(set(kept)) == 32 and set(held.unique().tolist()) <= {0.0, 1.0}
    assert rows_with(out, "nll/heldout_k5")[0]["iteration"] == 4
    assert checkpoint.load(out / "checkpoints" / "best.pt")["selection"]["name"] == \
        "nll/heldout_k5"


def test_selection_none_and_a_run_without_best(small_mnist, repo, tmp_path):
    out = tmp_path / "run"
    train(small_mnist, out, ["NLL.SELECT_ON=none", "RUN.MAX_ITERS=6"])
    assert not (out / "checkpoints" / "best.pt").exists() and not rows_with(out, NAME)
    with pytest.raises(CheckpointError, match=r"best\.pt: not found .* pass --last"):
        eval_nll(repo).checkpoint_to_score(str(out), last=False)
    with pytest.raises(DataError, match="NLL.BATCH_SIZE: 32 is more than the images"):
        train(small_mnist, tmp_path / "big", ["NLL.BATCH_SIZE=32"])   # before any iteration
    assert not (tmp_path / "big").exists()   # nothing written before the inputs are valid
    with pytest.raises(ConfigError, match="NLL.HELDOUT"):
        models.load_config(models.module("acvae"), None,
                           [*TINY, "DATA.ROOT=x", "NLL.SELECT_ON=heldout", "NLL.HELDOUT=0"])


@pytest.mark.parametrize("override, message", [
    ("NLL.SAMPLES=[5, 0]", r"NLL.SAMPLES must be a list of positive counts, got \[5, 0\]"),
    ("NLL.SAMPLES=[]", "NLL.SAMPLES must be a list of positive counts"),
    ("NLL.CHUNK=0", "NLL.CHUNK must be at least 1, got 0"),
    ("NLL.BATCH_SIZE=-1", "NLL.BATCH_SIZE must be at least 1, got -1"),
    ("MODEL.LATENT_CHANNELS=0", "MODEL.LATENT_CHANNELS must be at least 1, got 0"),
    ("MODEL.BASE_CHANNELS=0", "MODEL.BASE_CHANNELS must be at least 1, got 0"),
    ("TRAIN.EPOCHS=0", "TRAIN.EPOCHS must be at least 1, got 0"),
])
def test_counts_and_widths_are_checked_when_the_config_is_loaded(override, message):
    with pytest.raises(ConfigError, match=message):
        models.load_config(models.module("acvae"), None, [*TINY, "DATA.ROOT=x", override])
