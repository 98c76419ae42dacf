"""The training-iteration and RP-GAN bank benchmarks stay runnable (tiny CPU runs; the real
ones need a GPU) and write what the README's tables are made from."""
import importlib.util
import json
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_step_times_each_variant_and_profiles(tmp_path, capsys):
    out = tmp_path / "train.json"
    load("train_step").main(["--model", "rpgan", "--cfg", "cfg/rpgan_face1.yml", "--device", "cpu",
                             "MODEL.D_WIDTH=4",     # overrides between options, as people type
                             "--variants", "eager,fused", "--batch", "2", "--iters", "2",
                             "--warmup", "1", "--profile", "1", "MODEL.G_WIDTH=8", "--out", str(out)])
    report = json.loads(out.read_text())
    assert list(report["variants"]) == ["eager", "fused"]
    for result in report["variants"].values():
        assert result["median_ms"] > 0 and result["batch"] == 2
    assert "Self CPU" in capsys.readouterr().out   # the profiler's table was printed


def test_rpgan_bank_benchmark_reports_arithmetic_rates(tmp_path):
    out = tmp_path / "rpgan_d.json"
    load("rpgan_d").main(["--k", "3", "--df", "4", "--batch", "2", "--impl", "loop", "bmm",
                          "--precision", "fp32", "--mode", "d", "--iters", "2", "--warmup", "1",
                          "--device", "cpu", "--json", str(out)])
    report = json.loads(out.read_text())
    loop, bmm = report["results"]
    assert loop["flops"] == bmm["flops"] > 0   # the same work, whatever the implementation
    assert bmm["tflop_per_s"] > 0 and "speedup_vs_loop" in bmm
    assert report["agreement_fp32"]["bmm_max_abs_diff"] < 1e-4


def test_data_loop_compares_the_loop_the_step_and_the_loader(tmp_path):
    out = tmp_path / "data.json"
    load("data_loop").main(["--model", "lrgan", "--cfg", "cfg/lrgan_demo.yml", "RUN.WORKERS=1",
                            "--fast", "eager", "--iters", "3", "--device", "cpu",
                            "TRAIN.BATCH_SIZE=4", "--out", str(out)])
    report = json.loads(out.read_text())
    for key in ("synthetic_img_per_s", "loop_img_per_s", "loader_img_per_s"):
        assert report[key] > 0
    assert report["ratio"] == round(report["loop_img_per_s"] / report["synthetic_img_per_s"], 3)
