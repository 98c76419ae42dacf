"""common.metrics without downloads: small extractors registered in place of Inception."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from common import config as config_lib
from common import models
from common.metrics import Evaluator, MetricsError, resolve, weights
from common.metrics.samples import generated
from tests.common import metrics_fixtures as fx
from tests.common import toy_model


def toy(overrides=(), module=toy_model):
    cfg = models.load_config(module, None, list(overrides))
    torch.manual_seed(0)
    return module.build(cfg, torch.device("cpu"))


class LevelToy(toy_model.ToyTrainer):
    """Unconditional images of CLASSES brightness levels, balanced: image j has level j % K."""

    def generate(self, n, seed=0, ema=True):
        level = (torch.arange(n) % fx.CLASSES).float()
        value = (level + 0.5) / fx.CLASSES * 2 - 1
        return value[:, None, None, None].expand(n, 3, 8, 8).clone()


def evaluator(metrics, protocol="fid50k", n=64, tmp_path=None, protocol_kw=None, **kw):
    kw.setdefault("extractor", "tiny-random")
    kw.setdefault("log", lambda message: None)
    kw.setdefault("batch_size", 16)
    chosen = resolve(protocol, n=n, **(protocol_kw or {}))
    return Evaluator(tuple(metrics), chosen, "cpu",
                     cache_dir=str(tmp_path) if tmp_path else None, **kw)


def save_pngs(trainer, folder, n, shift=0):
    folder.mkdir()
    for batch in generated(trainer, n, seed=0, batch_size=16):
        for image in batch["image"]:
            array = image.permute(1, 2, 0).numpy().astype(np.int16) + shift
            index = len(list(folder.iterdir()))
            Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(folder / f"{index:04d}.png")


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_a_shift(tmp_path):
    trainer = toy()
    save_pngs(trainer, tmp_path / "same", 64)
    save_pngs(trainer, tmp_path / "shifted", 64, shift=60)
    same = evaluator(["fid"], tmp_path=tmp_path, reference=str(tmp_path / "same")).run(trainer)
    shifted = evaluator(["fid"], tmp_path=tmp_path,
                        reference=str(tmp_path / "shifted")).run(trainer)
    assert abs(same[0]["value"]) < 1e-3   # PNGs hold exactly the uint8 images scored in memory
    assert shifted[0]["value"] > 100 * max(abs(same[0]["value"]), 1e-4)
    assert shifted[0]["value"] > 1e-2


def test_inception_score_of_uniform_and_of_confident_classifiers():
    trainer = LevelToy(models.load_config(toy_model, None), torch.device("cpu"))
    kw = {"protocol_kw": {"splits": 1}, "batch_size": 20}  # each batch holds every level 4 times
    uniform = evaluator(["is"], "is50k", n=100, extractor="uniform-classifier", **kw).run(trainer)
    assert uniform[0]["value"] == pytest.approx(1.0, abs=1e-9)
    confident = evaluator(["is"], "is50k", n=100, extractor="confident-classifier",
                          **kw).run(trainer)
    assert confident[0]["value"] == pytest.approx(fx.CLASSES, rel=1e-6)
    ten = evaluator(["is"], "is50k", n=1000, extractor="confident-classifier",
                    batch_size=20).run(trainer)
    assert ten[0]["protocol"]["splits"] == 10 and 4.5 < ten[0]["value"] <= fx.CLASSES + 1e-9


def test_records_carry_the_complete_protocol_and_reference_is_cached(tmp_path):
    trainer = toy()
    trainer.progress.iteration = 7
    logs = []
    ev = evaluator(["is", "fid", "kid", "pr"], n=48, tmp_path=tmp_path, log=logs.append,
                   protocol_kw={"splits": 2, "reference_n": 40})
    records = ev.run(trainer, checkpoint={"path": "x.pt"})
    assert [r["metric"] for r in records] == ["is", "fid", "kid", "precision", "recall"]
    for r in records:
        p = r["protocol"]
        assert isinstance(r["value"], float) and np.isfinite(r["value"])
        assert {"name", "overrides", "n", "seed", "batch_size", "generator", "resolution",
                "uint8"} <= set(p)
        assert p["name"] == "fid50k" and p["n"] == 48 and p["overrides"]["n"] == 48
        assert p["resolution"] == [8, 8] and r["iteration"] == 7 and r["checkpoint"]
        assert r["versions"]["torch-fidelity"]
        json.dumps(r)  # plain JSON
    is_, fid, kid = records[0], records[1], records[2]
    assert is_["std"] >= 0 and is_["protocol"]["splits"] == 2
    assert is_["protocol"]["classifier"]["name"] == "tiny-random"
    assert fid["protocol"]["extractor"]["layers"]["fid"] == "pool"
    ref = fid["protocol"]["reference"]
    assert ref["kind"] == "data" and ref["n"] == 40 and ref["data"]["KIND"] == "layered_scenes"
    assert ref["resolution"] == [8, 8] and ref["cache_key"]
    assert kid["protocol"]["kid_subset_size"] == 40 and "std" in kid
    assert records[3]["protocol"]["pr_neighborhood"] == 3
    # a fresh evaluator finds the reference features on disk, under the same key
    logs.clear()
    again = evaluator(["fid"], n=48, tmp_path=tmp_path, log=logs.append,
                      protocol_kw={"reference_n": 40}).run(trainer)
    assert any("from cache" in line for line in logs)
    assert again[0]["value"] == pytest.approx(fid["value"], rel=1e-9)


def test_protocol_resolution_and_generator_resolution_checks():
    with pytest.raises(MetricsError, match="unknown protocol"):
        resolve("fid51k")
    with pytest.raises(MetricsError, match="needs 256 px"):
        evaluator(["is"], "stackgan_is30k", n=16).run(toy())
    with pytest.raises(MetricsError, match="--is-classifier"):
        evaluator(["is"], "stackgan_birds_is30k", n=16)


def test_weights_missing_gives_one_clear_error_and_a_wrong_file_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MetricsError) as err:
        weights.resolve(weights.INCEPTION, cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert "\n" not in message
    for part in (weights.INCEPTION.name, weights.INCEPTION.sha256, str(tmp_path / "cache"),
                 str(tmp_path / "torch"), "--inception-weights", "--allow-download"):
        assert part in message
    wrong = tmp_path / "cache" / "weights" / weights.INCEPTION.name
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes(b"not the inception weights")
    with pytest.raises(MetricsError, match="sha256 is .* expected " + weights.INCEPTION.sha256):
        weights.resolve(weights.INCEPTION, cache_dir=tmp_path / "cache")
    with pytest.raises(MetricsError, match="sha256"):
        weights.resolve(weights.INCEPTION, path=wrong)
    with pytest.raises(MetricsError, match="not found"):
        weights.resolve(weights.INCEPTION, path=tmp_path / "nowhere.pth")
    # the evaluator checks the weights when it is made, before any image is generated
    with pytest.raises(MetricsError, match="sha256"):
        Evaluator(("fid",), resolve("fid10k"), cache_dir=str(tmp_path / "cache"))


def test_conditional_models_draw_the_evaluation_conditions():
    trainer = toy(module=fx)
    batches = list(generated(trainer, 30, seed=0, batch_size=8))
    assert sum(len(b["image"]) for b in batches) == 30 and batches[-1]["image"].shape[0] == 6
    conditions = fx.evaluation_conditions(trainer.cfg)
    drawn = torch.cat([b["attributes"] for b in batches])
    assert torch.equal(drawn[:24], conditions) and torch.equal(drawn[24:], conditions[:6])
    assert batches[0]["image"].dtype == torch.uint8
    record = evaluator(["is"], n=30, protocol_kw={"splits": 3}).run(trainer)[0]
    assert record["protocol"]["generator"].startswith("eval_samples hook")


def test_user_classifier_scores_inception_score(tmp_path, monkeypatch):
    from torchvision.models import inception_v3
    from common.metrics.extractors import UserClassifier
    monkeypatch.setattr(UserClassifier, "SIZE", 75)  # Inception's smallest input: a fast test
    net = inception_v3(weights=None, num_classes=fx.CLASSES + 1, aux_logits=False,
                       init_weights=False)
    path = tmp_path / "birds_inception.pth"
    torch.save(net.state_dict(), path)
    trainer = LevelToy(models.load_config(toy_model, None), torch.device("cpu"))
    ev = evaluator(["is"], "stackgan_birds_is30k", n=4, is_classifier=str(path),
                   protocol_kw={"splits": 2})
    ev.protocol = ev.protocol.with_overrides(resolution=8)  # the toy makes 8 px images
    record = ev.run(trainer)[0]
    info = record["protocol"]["classifier"]
    assert info["classes"] == fx.CLASSES and info["background_logit_dropped"]
    assert info["sha256"] == weights.sha256_file(path)
    assert 1.0 <= record["value"] <= fx.CLASSES


def test_eval_section_is_in_every_config_and_does_not_block_resume():
    cfg = models.load_config(toy_model, None, ["EVAL.METRICS=[fid,is]", "EVAL.EVERY=5"])
    assert list(cfg.EVAL.METRICS) == ["fid", "is"] and cfg.EVAL.EVERY == 5
    base = models.load_config(toy_model, None)
    assert base.EVAL.METRICS == []
    assert config_lib.differences(base, cfg) == []
    old = {k: v for k, v in config_lib.to_plain(base).items() if k != "EVAL"}
    assert config_lib.differences(old, cfg) == []   # checkpoints made before EVAL existed


def test_a_cache_size_does_not_change_the_reference_key():
    """The cache keeps the same pixels: its size must not force the statistics to be redone."""
    from common.metrics.samples import reference_from_data
    section = {"KIND": "layered_scenes", "SIZE": 16, "OPTIONS": {"LENGTH": 64}}
    keys = [reference_from_data({**section, "OPTIONS": {**section["OPTIONS"], **extra}}, "")
            .key({}) for extra in ({}, {"CACHE_MB": 64}, {"SEED": 5})]
    assert keys[0] == keys[1] != keys[2]
