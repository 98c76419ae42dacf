"""Compile the CUDA kernels with nvcc (no GPU needed), so CPU-only CI catches CUDA build errors."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from common.ops import _sources


def find_nvcc():
    candidates = [Path(os.environ["CUDA_HOME"], "bin", "nvcc")] if os.environ.get("CUDA_HOME") else []
    if shutil.which("nvcc"):
        candidates.append(Path(shutil.which("nvcc")))
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    return next((c for c in candidates if c.exists()), None)


NVCC = find_nvcc()


@pytest.mark.skipif(NVCC is None, reason="nvcc not found (set CUDA_HOME or put nvcc on PATH)")
def test_cuda_kernels_compile(tmp_path):
    # stnm_cuda.cu includes no torch headers, so this takes seconds; the
    # torch-facing stnm_cuda_ops.cpp is compiled by the JIT/AOT builds.
    source = _sources.CSRC / "stnm_cuda.cu"
    command = [str(NVCC), "-std=c++17", "-O3", "-c", str(source), "-o", str(tmp_path / "stnm_cuda.o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    assert "warning" not in result.stderr.lower(), result.stderr
    assert (tmp_path / "stnm_cuda.o").stat().st_size > 0
