"""scripts/evaluate.py end to end on a tiny checkpoint, the EVAL section during training, and
the attribute classifier (train_feature_net.py, metric attr). No downloads."""
import json

import pytest
import torch

from common import cli, models
from common.metrics import Evaluator, resolve
from tests.common import metrics_fixtures as fx
from tests.conftest import load_script

TOY = "tests.common.toy_model"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, repo):
    from tests.conftest import run_cli
    out = tmp_path_factory.mktemp("toy") / "run"
    cfg = out.parent / "toy.yml"
    cfg.write_text("TOY:\n  BATCH_SIZE: 8\n")
    run_cli([repo / "tests/common/toy_train.py", "--cfg", cfg, "--out", out, "--device", "cpu",
             "--max-iters", "3"], cwd=out.parent)
    return out


def test_evaluate_cli_end_to_end(toy_run, tmp_path, repo, cli):
    proc = cli([repo / "scripts/evaluate.py", "--run", toy_run, "--import",
                "tests.common.metrics_fixtures", "--extractor", "tiny-random",
                "--metrics", "is,fid,kid,pr", "--n", "48", "--splits", "2", "--reference-n", "40",
                "--batch-size", "16", "--device", "cpu", "--cache-dir", tmp_path / "cache"],
               cwd=tmp_path)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["metric"] for r in records] == ["is", "fid", "kid", "precision", "recall"]
    saved = [json.loads(line) for line in (toy_run / "metrics.jsonl").read_text().splitlines()]
    assert saved == records
    fid = records[1]
    assert fid["iteration"] == 3 and fid["model"] == TOY
    assert fid["checkpoint"]["path"].endswith("last.pt")
    assert fid["protocol"]["n"] == 48 and fid["protocol"]["generator"] == "EMA generator"
    assert fid["protocol"]["reference"]["n"] == 40
    assert "fid50k:" in proc.stderr and "appended to" in proc.stderr


def test_evaluate_cli_missing_weights_is_one_clear_line(toy_run, tmp_path, repo, capsys,
                                                        monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    evaluate = load_script("evaluate")
    code = evaluate.main(["--ckpt", str(toy_run / "checkpoints/last.pt"), "--n", "8",
                          "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: weights file weights-inception-2015-12-05-6726825d.pth "
                          "not found")
    assert "6726825d0af5f729" in err and str(tmp_path / "cache" / "weights") in err


def test_eval_section_appends_to_metrics_jsonl_during_training(tmp_path):
    out = tmp_path / "run"
    code = cli.train_main(TOY, ["--cfg", str(_toy_cfg(tmp_path)), "--out", str(out),
                                "--device", "cpu", "--max-iters", "4",
                                "EVAL.METRICS=[fid,is]", "EVAL.EVERY=2", "EVAL.N=32",
                                "EVAL.EXTRACTOR=tiny-random", f"EVAL.CACHE_DIR={tmp_path}"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["iteration"], r["metric"]) for r in rows] == \
        [(2, "fid"), (2, "is"), (4, "fid"), (4, "is")]
    assert rows[0]["protocol"]["name"] == "fid10k" and rows[0]["protocol"]["n"] == 32
    assert rows[0]["nimg"] == 2 * 8 and rows[0]["epoch"] == 0
    assert "it 4  fid10k: fid" in (out / "log.txt").read_text()


def test_eval_section_problems_stop_the_run_before_training(tmp_path):
    code = cli.train_main(TOY, ["--cfg", str(_toy_cfg(tmp_path)), "--out", str(tmp_path / "r"),
                                "--device", "cpu", "--max-iters", "2", "EVAL.METRICS=[fid]",
                                "EVAL.PROTOCOL=fid3k", "EVAL.EXTRACTOR=tiny-random"])
    assert code == 2
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_attribute_classifier_trains_and_scores_conditioned_samples(tmp_path, repo):
    train = load_script("train_feature_net")
    cfg = tmp_path / "attr.yml"
    cfg.write_text("DATA:\n  KIND: painted_attributes\n  IMAGE_SIZE: 16\n"
                   "  OPTIONS:\n    LENGTH: 64\n"
                   "NET:\n  TASK: attributes\n  OUTPUTS: 2\n  WIDTH: 4\n"
                   "TRAIN:\n  BATCH_SIZE: 8\n  EPOCHS: 5\n  LR: 0.01\n"
                   "HELDOUT:\n  SPLIT: test\nRUN:\n  WORKERS: 0\n")
    out = tmp_path / "classifier"
    assert train.main(["--cfg", str(cfg), "--out", str(out), "--device", "cpu"]) == 0
    real = json.loads((out / "accuracy.json").read_text())
    assert real["heldout"] > 0.9 and real["split"] == "test" and real["n"] == 64

    generator = fx.build(models.load_config(fx, None, ["DATA.IMAGE_SIZE=16"]), "cpu")
    ev = Evaluator(("attr",), resolve("acvae_test", n=48), "cpu", attr_classifier_path=str(out),
                   batch_size=16, log=lambda message: None)
    faithful = ev.run(generator)[0]
    generator.invert = True                 # samples that ignore their conditions
    ignoring = ev.run(generator)[0]
    assert faithful["value"] > 0.9 > 0.1 > ignoring["value"]
    info = faithful["protocol"]["classifier"]
    assert info["real_accuracy"] == real["heldout"] and info["file"].endswith("features.pt")
    assert set(faithful["per_attribute"]) == {"output_0", "output_1"}


def _toy_cfg(tmp_path):
    cfg = tmp_path / "toy.yml"
    cfg.write_text("TOY:\n  BATCH_SIZE: 8\nDATA:\n  OPTIONS:\n    LENGTH: 64\n")
    return cfg
