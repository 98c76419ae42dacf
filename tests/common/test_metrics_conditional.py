"""Conditional models under the metrics, on the real files in ../shared/data: acVAE draws the
CelebA test-split attribute vectors; the attribute classifier trains on real faces and scores
an acVAE generator."""
import importlib.util
import json

import torch

from common import models
from common.data import celeba
from common.metrics import Evaluator, resolve
from common.metrics.samples import generated
from tests.common import metrics_fixtures  # noqa: F401  (registers tiny-random)

ACVAE_TINY = ["MODEL.BASE_CHANNELS=4", "TRAIN.BATCH_SIZE=4"]


def acvae_trainer(repo, root):
    module = models.module("acvae")
    cfg = models.load_config(module, repo / "cfg/acvae_celeba64_cgan.yml",
                             [f"DATA.ROOT={root}", *ACVAE_TINY])
    torch.manual_seed(0)
    return module.build(cfg, torch.device("cpu"))


def test_acvae_samples_are_conditioned_on_the_test_split_attributes(shared_data, repo):
    trainer = acvae_trainer(repo, shared_data / "celeba")
    batches = list(generated(trainer, 10, seed=3, batch_size=4))
    assert [len(b["image"]) for b in batches] == [4, 4, 2]
    assert batches[0]["image"].shape[1:] == (3, 64, 64)
    drawn = torch.cat([b["attributes"] for b in batches])
    _, test = celeba.split_attributes(shared_data / "celeba", "test", {"ATTR_CODING": "pm1"})
    assert len(test) == 19_962
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(3))[:10]
    assert torch.equal(drawn, torch.from_numpy(test)[order])


def test_attribute_classifier_on_real_celeba_scores_an_acvae_generator(shared_data, repo,
                                                                       tmp_path):
    spec = importlib.util.spec_from_file_location("train_feature_net", repo / "scripts" /
                                                  "train_feature_net.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = shared_data / "celeba"
    out = tmp_path / "attr"
    code = script.main(["--cfg", str(repo / "cfg/features_celeba.yml"), "--out", str(out),
                        "--device", "cpu", "--max-iters", "2", f"DATA.ROOT={root}",
                        "NET.WIDTH=4", "TRAIN.BATCH_SIZE=16", "HELDOUT.EVERY=100",
                        "RUN.WORKERS=0"])
    assert code == 0
    real = json.loads((out / "accuracy.json").read_text())
    assert real["n"] == 100 and 0 <= real["heldout"] <= 1
    assert json.loads((out / "features.json").read_text())["outputs"] == list(celeba.ATTRIBUTES)

    trainer = acvae_trainer(repo, root)
    ev = Evaluator(("attr",), resolve("acvae_test", n=8), "cpu", attr_classifier_path=str(out),
                   batch_size=4, log=lambda message: None)
    record = ev.run(trainer)[0]
    assert record["metric"] == "attr" and 0 <= record["value"] <= 1
    assert list(record["per_attribute"]) == list(celeba.ATTRIBUTES)
    assert record["protocol"]["classifier"]["real_accuracy"] == real["heldout"]
    assert record["protocol"]["generator"].startswith("eval_samples hook of acvae")


V2_TINY = ["GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.Z_DIM=6", "GAN.EMBEDDING_DIM=4", "GAN.R_NUM=1",
           "TEXT.DIMENSION=12", "GAN.B_CONDITION=True", "RUN.WORKERS=0"]


def test_stackgan_samples_walk_the_evaluation_captions_at_256_px(shared_data, tmp_path):
    from common.data.text_files import load_split
    from tests.common.data.textdata import tiny_birds
    cub = shared_data / "cub"
    root = tiny_birds(tmp_path / "data", cub, dim=12)     # 8 test images x 3 captions
    module = models.module("stackgan_v2")
    cfg = models.load_config(module, None, V2_TINY + [f"DATA_DIR={root}",
                                                      f"DATASET.CUB_DIR={cub / 'CUB_200_2011'}"])
    torch.manual_seed(0)
    trainer = module.build(cfg, torch.device("cpu"))
    batches = list(generated(trainer, 30, seed=1, batch_size=8))
    test = torch.from_numpy(load_split(root, "test", "cnn-rnn").embeddings.reshape(-1, 12))
    drawn = torch.cat([b["embedding"] for b in batches])
    assert torch.equal(drawn[:24], test) and torch.equal(drawn[24:], test[:6])  # cycled
    assert batches[0]["image"].shape[1:] == (3, 256, 256)

    reference = tmp_path / "birds_test256.yml"   # the real test images, same crop, no augmentation
    reference.write_text(f"DATA:\n  KIND: stackgan_text\n  ROOT: {root}\n  SPLIT: test\n"
                         f"  IMAGE_SIZE: 256\n  OPTIONS:\n    CUB_DIR: {cub / 'CUB_200_2011'}\n"
                         "    RESIZE: shorter\n")
    ev = Evaluator(("is", "fid"), resolve("stackgan_fid30k", n=30, splits=3), "cpu",
                   extractor="tiny-random", reference=str(reference), batch_size=8,
                   cache_dir=str(tmp_path / "cache"), log=lambda message: None)
    is_, fid = ev.run(trainer)
    assert is_["protocol"]["resolution"] == [256, 256] and is_["value"] >= 1.0
    ref = fid["protocol"]["reference"]
    assert ref["data"]["KIND"] == "stackgan_text" and ref["split"] == "test" and ref["n"] == 8
    assert ref["data"]["OPTIONS"]["AUGMENT"] is False and ref["resolution"] == [256, 256]
    assert fid["value"] > 0


def test_stackgan_v1_samples_walk_the_evaluation_captions(shared_data, tmp_path):
    from common.data.text_files import load_split
    from tests.common.data.textdata import tiny_birds
    cub = shared_data / "cub"
    root = tiny_birds(tmp_path / "data", cub, dim=16)
    module = models.module("stackgan_v1")
    cfg = models.load_config(module, None, [
        "GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.CONDITION_DIM=6", "GAN.R_NUM=1", "Z_DIM=10",
        "TEXT.DIMENSION=16", "TRAIN.BATCH_SIZE=4", f"DATA_DIR={root}",
        f"DATASET.CUB_DIR={cub / 'CUB_200_2011'}"])
    trainer = module.build(cfg, torch.device("cpu"))
    ev = Evaluator(("is",), resolve("is50k", n=30, splits=3), "cpu", extractor="tiny-random",
                   batch_size=8, log=lambda message: None)
    record = ev.run(trainer)[0]
    assert record["protocol"]["generator"].startswith("eval_samples hook of stackgan")
    assert record["protocol"]["resolution"] == [64, 64]
    drawn = torch.cat([b["embedding"] for b in generated(trainer, 30, seed=0, batch_size=8)])
    test = torch.from_numpy(load_split(root, "test", "cnn-rnn").embeddings.reshape(-1, 16))
    assert torch.equal(drawn[:24], test) and torch.equal(drawn[24:], test[:6])
