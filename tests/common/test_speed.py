"""Speed switches of the RUN section: what can be checked on a CPU here, the rest on a GPU."""
import pytest
import torch

from common import logging as log
from common import models, train
from common.errors import ConfigError
from tests.common import toy_model

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def run_toy(tmp_path, overrides, device="cpu"):
    cfg = models.load_config(toy_model, None, [f"RUN.DEVICE={device}", "RUN.MAX_ITERS=6",
                                               *overrides])
    torch.manual_seed(cfg.RUN.SEED)
    trainer = toy_model.build(cfg, torch.device(device))
    train.run(trainer, tmp_path)
    return trainer


def test_fused_adam_takes_the_same_step(tmp_path):
    # one iteration: the same update up to rounding (later, parameters whose gradients are near
    # Adam's eps amplify rounding differences, so longer runs are not compared bitwise)
    plain = run_toy(tmp_path / "a", ["RUN.MAX_ITERS=1"])
    fused = run_toy(tmp_path / "b", ["RUN.MAX_ITERS=1", "RUN.FUSED_OPTIM=true"])
    assert fused.optimizers["G"].param_groups[0]["fused"] is True
    for name in ("G", "D"):
        for a, b in zip(plain.nets[name].parameters(), fused.nets[name].parameters()):
            assert torch.allclose(a, b, rtol=0, atol=1e-7)


def test_cuda_graphs_are_ignored_on_a_cpu_with_a_note(tmp_path):
    run_toy(tmp_path, ["RUN.CUDA_GRAPHS=true"])
    assert "CUDA graphs need a CUDA device" in (tmp_path / "log.txt").read_text()


def test_graph_report_accumulators():
    log.collect()
    log.report("x", torch.tensor(1.0))       # eager warm-up: the name becomes known
    assert log.collect() == {"x": 1.0}
    stats = log.GraphStats(log.seen_names(), torch.device("cpu"))
    log.begin_capture(stats)
    log.report("x", torch.tensor(3.0))       # "captured": adds into the accumulator
    names = log.end_capture()
    assert names == ["x"]
    stats.replayed(names)                   # two replays, each adding 3 (emulated here)
    stats.sums["x"].add_(3.0)
    stats.replayed(names)
    assert log.collect() == {"x": 3.0}
    assert log.collect() == {}
    log.begin_capture(log.GraphStats(set(), torch.device("cpu")))
    with pytest.raises(RuntimeError, match="not seen during the eager warm-up"):
        log.report("never", torch.tensor(1.0))
    log.end_capture()
    log.drop_graph_stats(stats)


@cuda
def test_cuda_graphs_reproduce_the_eager_loop(tmp_path):
    # both with the fused Adam kernel: the plain (foreach) and fused kernels round differently
    eager = run_toy(tmp_path / "a", ["RUN.DETERMINISTIC=true", "RUN.FUSED_OPTIM=true"], "cuda")
    graphs = run_toy(tmp_path / "b", ["RUN.DETERMINISTIC=true", "RUN.FUSED_OPTIM=true",
                                      "RUN.CUDA_GRAPHS=true"], "cuda")
    for name in ("G", "D", "G_ema"):
        for a, b in zip(eager.nets[name].parameters(), graphs.nets[name].parameters()):
            assert torch.allclose(a, b, rtol=0, atol=1e-6), name
    stats = (tmp_path / "b" / "stats.jsonl").read_text()
    assert "loss/D" in stats and "loss/G" in stats


@cuda
def test_unsafe_trainers_and_fp16_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="fp16"):
        run_toy(tmp_path, ["RUN.CUDA_GRAPHS=true", "RUN.PRECISION=fp16"], "cuda")


@cuda
def test_device_prefetcher_yields_the_batches_on_the_gpu():
    from common.data.loader import device_batches
    batches = [{"image": torch.full((2, 3), float(i)).pin_memory(), "n": [torch.tensor(i)]}
               for i in range(4)]
    got = list(device_batches(batches, torch.device("cuda")))
    assert len(got) == 4 and all(b["image"].is_cuda for b in got)
    assert [int(b["image"][0, 0]) for b in got] == [0, 1, 2, 3]
    assert [int(b["n"][0]) for b in got] == [0, 1, 2, 3]
