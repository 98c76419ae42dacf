"""The project's feature networks (scripts/train_feature_net.py, common.metrics.feature_net):
training on the real data is seeded and deterministic, resumes exactly, holds out a fixed part,
and the FD it yields behaves like a distance on real MNIST digits (noise, blur, disjoint splits)."""
import hashlib
import importlib.util
import json

import numpy as np
import pytest
import torch
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from common import models
from common.data.mnist import load_mnist
from common.metrics import Evaluator, feature_net, image_sets, resolve
from common.metrics.reference_points import blur
from common.metrics.weights import MetricsError

TINY_MNIST = ["NET.WIDTH=4", "NET.STAGES=3", "TRAIN.BATCH_SIZE=32", "MIX.OPTIONS.LENGTH=64",
              "RUN.WORKERS=1", "RUN.PROGRESS=lines", "RUN.LOG_EVERY=1000"]


def train_script(repo):
    spec = importlib.util.spec_from_file_location("train_feature_net",
                                                  repo / "scripts" / "train_feature_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(repo, shared, out, cfg="features_mnist", iters=6, extra=()):
    root = shared / ("mnist" if cfg == "features_mnist" else cfg.split("_")[1])
    roots = [f"DATA.ROOT={root}", f"MIX.ROOT={root}"] if cfg == "features_mnist" else []
    code = train_script(repo).main(["--cfg", str(repo / "cfg" / f"{cfg}.yml"), "--out", str(out),
                                    "--device", "cpu", "--max-iters", str(iters), *roots,
                                    *(TINY_MNIST if cfg == "features_mnist" else []), *extra])
    assert code == 0
    return out


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_parameter_count_of_the_celeba_width():
    net = feature_net.FeatureCNN(40, 32)
    convs = sum(p.numel() for m in net.modules() if isinstance(m, torch.nn.Conv2d)
                for p in m.parameters())
    assert convs == 9 * (3 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128
                         + 128 * 256 + 256 * 256)
    assert sum(p.numel() for p in net.head.parameters()) == 256 * 40 + 40
    assert sum(p.numel() for p in net.parameters()) == 1_183_496  # as docs/metrics.md says
    features, logits = net.features_and_logits(torch.zeros(2, 3, 64, 64))
    assert features.shape == (2, 256) and logits.shape == (2, 40)


def test_training_is_seeded_and_bitwise_deterministic(repo, shared_data, tmp_path):
    a = train(repo, shared_data, tmp_path / "a")
    b = train(repo, shared_data, tmp_path / "b")
    c = train(repo, shared_data, tmp_path / "c", extra=["RUN.SEED=1"])
    assert sha(a / "features.pt") == sha(b / "features.pt")
    assert sha(a / "features.pt") != sha(c / "features.pt")
    state = torch.load(a / "features.pt", weights_only=True)   # a plain state dict
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    accuracy = json.loads((a / "accuracy.json").read_text())
    assert accuracy["n"] == 10_000 and accuracy["split"] == "test"
    assert 0 <= accuracy["heldout"] <= 1 and "mnist_one test" in accuracy["sets"]
    meta = json.loads((a / "features.json").read_text())
    assert meta["tag"] == "mnist" and meta["pad_from"] == 28 and meta["outputs"][3] == "3"
    assert meta["config"]["NET"]["WIDTH"] == 4 and meta["reference_data"]["KIND"] == "mnist"


def test_a_resumed_training_ends_with_the_same_weights(repo, shared_data, tmp_path):
    whole = train(repo, shared_data, tmp_path / "whole", iters=6)
    part = train(repo, shared_data, tmp_path / "part", iters=3)
    # the cosine schedule (over TRAIN.EPOCHS) and the augmentation draws continue exactly
    train(repo, shared_data, part, iters=6, extra=["--resume", "auto"])
    assert sha(whole / "features.pt") == sha(part / "features.pt")


def test_cifar_heldout_part_is_fixed_interleaved_and_class_balanced(repo, shared_data):
    module = models.module(feature_net.NAME)
    cfg = models.load_config(module, repo / "cfg/features_cifar10.yml",
                             [f"DATA.ROOT={shared_data / 'cifar10/test_jpg'}"])
    train_set, heldout = feature_net.datasets(cfg)
    (name, held), = heldout.items()
    assert (len(train_set), len(held)) == (8000, 2000) and name == "every 5th of test"
    held_paths = {held.dataset.dataset.paths[i] for i in held.dataset.indices}
    train_paths = {train_set.dataset.dataset.paths[i] for i in train_set.dataset.indices}
    assert not held_paths & train_paths
    labels = torch.tensor([held.dataset.dataset.labels[i] for i in held.dataset.indices])
    assert torch.bincount(labels).tolist() == [200] * 10


def test_celeba_attribute_network_reports_the_majority_baseline(repo, shared_data, tmp_path):
    out = train(repo, shared_data, tmp_path / "celeba", cfg="features_celeba", iters=2,
                extra=[f"DATA.ROOT={shared_data / 'celeba'}", "NET.WIDTH=4",
                       "TRAIN.BATCH_SIZE=8", "HELDOUT.EVERY=100", "RUN.WORKERS=0"])
    accuracy = json.loads((out / "accuracy.json").read_text())
    assert accuracy["n"] == 100 and accuracy["metric"] == "mean attribute accuracy"
    assert 0.6 < accuracy["majority_baseline"] < 0.95
    meta = json.loads((out / "features.json").read_text())
    assert meta["outputs"][20] == "Male" and meta["task"] == "attributes"


# ---- the FD of a trained MNIST network on real digits -------------------------------------------
@pytest.fixture(scope="module")
def mnist_net(repo, shared_data, tmp_path_factory):
    """A small MNIST network trained for a short while (the full one: cfg/features_mnist.yml)."""
    out = tmp_path_factory.mktemp("features") / "mnist"
    return train(repo, shared_data, out, iters=250,
                 extra=["NET.WIDTH=8", "NET.STAGES=4", "TRAIN.BATCH_SIZE=64", "MIX.KIND=",
                        "TRAIN.LR=0.003"])


@pytest.fixture(scope="module")
def digits(shared_data):
    test, _ = load_mnist(shared_data / "mnist", "test")
    return test[:2000].numpy()[:, None]


@pytest.fixture(scope="module")
def scorer(mnist_net, shared_data, tmp_path_factory):
    """FD / PR of an uint8 array against 2,000 real MNIST training digits."""
    folder = tmp_path_factory.mktemp("arrays")
    ev = Evaluator(("fid", "pr"), resolve("fd_mnist10k", n=2000, reference_n=2000), "cpu",
                   features=str(mnist_net), cache_dir=str(folder / "cache"), batch_size=500,
                   log=lambda message: None)

    def score(array, name):
        path = folder / f"{name}.npy"
        np.save(path, array)
        return {r["metric"]: r for r in ev.run_images(image_sets.load(path))}
    return score


def test_fd_separates_real_digits_from_noise_and_blur(scorer, digits):
    rng = np.random.default_rng(0)
    real = scorer(digits, "real")
    noise = scorer(rng.integers(0, 256, digits.shape, dtype=np.uint8), "noise")
    blurred = [scorer(blur(digits, s), f"blur{s}")["fid"]["value"] for s in (0, 0.5, 1, 2)]
    floor = real["fid"]["value"]
    assert floor < 0.02 * noise["fid"]["value"]             # far below real against noise
    assert blurred[0] == pytest.approx(floor)
    assert all(a < b for a, b in zip(blurred, blurred[1:]))   # grows with the blur sigma
    assert real["precision"]["value"] > 0.8 and real["recall"]["value"] > 0.8
    assert noise["precision"]["value"] < 0.5 * real["precision"]["value"]
    record = real["fid"]
    extractor = record["protocol"]["extractor"]
    assert extractor["name"] == "ganrepro-mnist" and len(extractor["sha256"]) == 64
    assert extractor["heldout_accuracy"]["n"] == 10_000 and "28x28" in extractor["resize"]
    assert extractor["training_config"]["NET"]["TAG"] == "mnist"
    assert record["protocol"]["reference"]["data"]["KIND"] == "mnist"
    assert record["protocol"]["reference"]["n"] == 2000 and record["model"] is None
    assert record["images"]["shape"] == [2000, 1, 28, 28]


def test_the_network_is_a_torch_fidelity_extractor(mnist_net, digits):
    from torch_fidelity.utils import create_feature_extractor
    assert "ganrepro-mnist" in FEATURE_EXTRACTORS_REGISTRY
    net = create_feature_extractor("ganrepro-mnist", ["features", "logits"], cuda=False,
                                   feature_extractor_weights_path=str(mnist_net / "features.pt"))
    images = torch.from_numpy(digits[:64]).expand(-1, 3, -1, -1)
    features, logits = net(images)
    assert features.shape == (64, 64) and logits.shape == (64, 10)
    with pytest.raises(MetricsError, match="for 'mnist', not for 'cifar10'"):
        create_feature_extractor("ganrepro-cifar10", ["features"], cuda=False,
                                 feature_extractor_weights_path=str(mnist_net))


def test_evaluate_images_cli_small_fd_on_digits_large_on_noise(mnist_net, digits, tmp_path,
                                                               repo, cli):
    np.save(tmp_path / "digits.npy", digits[:1000])
    noise = np.random.default_rng(1).uniform(-1, 1, (1000, 1, 20, 20)).astype(np.float32)
    np.savez(tmp_path / "noise.npz", images=noise)
    values = {}
    for name in ("digits.npy", "noise.npz"):
        proc = cli([repo / "scripts/evaluate.py", "--images", tmp_path / name, "--protocol",
                    "fd_mnist10k", "--features", mnist_net, "--reference-n", "1000",
                    "--cache-dir", tmp_path / "cache", "--device", "cpu", "--out", "-"],
                   cwd=tmp_path)
        records = {json.loads(line)["metric"]: json.loads(line) for line in
                   proc.stdout.splitlines()}
        assert set(records) == {"fid", "kid", "precision", "recall", "is"}
        assert records["fid"]["protocol"]["overrides"] == {"reference_n": 1000, "n": 1000}
        assert "scoring all 1000 images" in proc.stderr
        values[name] = records
    assert values["digits.npy"]["fid"]["value"] * 20 < values["noise.npz"]["fid"]["value"]
    assert values["digits.npy"]["is"]["value"] > values["noise.npz"]["is"]["value"] + 1


def test_fd_protocols_need_the_matching_network(mnist_net, tmp_path):
    with pytest.raises(MetricsError, match="pass --features RUN"):
        Evaluator(("fid",), resolve("fd_cifar10_10k"), "cpu")
    with pytest.raises(MetricsError, match="needs the 'celeba64' feature network"):
        Evaluator(("fid",), resolve("fd_celeba64_10k"), "cpu", features=str(mnist_net))
    with pytest.raises(MetricsError, match="not a feature network"):
        Evaluator(("fid",), resolve("fd_mnist10k"), "cpu", features=str(tmp_path))
