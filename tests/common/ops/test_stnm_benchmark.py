"""The benchmark script stays runnable (a tiny CPU run; the real one needs a GPU)."""
import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "stnm.py"


def test_benchmark_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("stnm_benchmark", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "stnm.json"
    bench.main(["--device", "cpu", "--cases", "2x3x8x8", "--quick", "--no-compile", "--out", str(out)])
    report = json.loads(out.read_text())
    (case,) = report["cases"]
    assert case["shape"] == [2, 3, 8, 8]
    assert case["bytes_moved"] == 4 * (8 * 3 + 3) * 2 * 8 * 8
    assert case["timings_ms"]["ref_eager"] > 0
    assert [t["met"] for t in report["targets"]]  # evaluated, whatever the outcome on a CPU
