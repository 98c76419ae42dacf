"""Options and KEY=VALUE overrides in any order, in every script that takes overrides (the
training scripts here; the benchmarks' in tests/benchmarks)."""
import pytest

SCRIPTS = [
    ("train_lrgan.py", "cfg/lrgan_demo.yml", "TRAIN.LR=0.0003", "  LR: 0.0003"),
    ("train_stackgan.py", "cfg/coco_s1.yml", "TRAIN.GENERATOR_LR=0.0003", "GENERATOR_LR: 0.0003"),
    ("train_stackgan.py", "cfg/birds_3stages.yml", "TRAIN.GENERATOR_LR=0.0003",
     "GENERATOR_LR: 0.0003"),
    ("train_acvae.py", "cfg/acvae_celeba64_acvaegan.yml", "TRAIN.BATCH_SIZE=7", "BATCH_SIZE: 7"),
    ("train_acvae.py", "cfg/crvae_mnist_lstm.yml", "TRAIN.BATCH_SIZE=7", "BATCH_SIZE: 7"),
    ("train_rpgan.py", "cfg/rpgan_face12.yml", "TRAIN.BATCH_SIZE=7", "BATCH_SIZE: 7"),
    ("train_feature_net.py", "cfg/features_mnist.yml", "TRAIN.LR=0.0003", "  LR: 0.0003"),
]


@pytest.mark.parametrize("script, cfg, override, shown", SCRIPTS,
                         ids=[f"{s}:{c.split('/')[1]}" for s, c, _, _ in SCRIPTS])
def test_overrides_before_between_and_after_options(cli, repo, tmp_path, script, cfg, override,
                                                    shown):
    proc = cli([repo / "scripts" / script, "--cfg", repo / cfg, override, "--dry-run",
                "RUN.SEED=7", "--max-iters", "3", "RUN.LOG_EVERY=11"], cwd=tmp_path)
    out = proc.stdout
    assert shown in out and "  SEED: 7" in out and "  LOG_EVERY: 11" in out
    assert "  MAX_ITERS: 3" in out
