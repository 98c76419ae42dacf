"""Source files of the STNM extension and their content hash.

Imports nothing from torch, so that setup.py can use it before deciding what to build.
"""
import functools
import hashlib
from pathlib import Path

CSRC = Path(__file__).resolve().parent / "csrc"
HEADERS = ("stnm_math.h", "stnm_common.h", "stnm_cuda.h")
CPU_SOURCES = ("stnm.cpp",)
CUDA_SOURCES = ("stnm_cuda_ops.cpp", "stnm_cuda.cu")

# Markers compiled into the library (stnm.cpp, stnm_cuda_ops.cpp) so that the loader
# can tell what a build contains without loading it.
BUILD_TAG = b"ganrepro-stnm-source-hash:"
CUDA_TAG = b"ganrepro-stnm-has-cuda-kernels"


def source_paths(with_cuda: bool) -> list[Path]:
    names = CPU_SOURCES + (CUDA_SOURCES if with_cuda else ())
    return [CSRC / name for name in names]


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """Hash of every source and header (ninja does not track .cu header dependencies)."""
    digest = hashlib.sha256()
    for name in sorted(HEADERS + CPU_SOURCES + CUDA_SOURCES):
        digest.update(name.encode() + b"\0" + (CSRC / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def read_build_info(library: Path) -> tuple[str | None, bool]:
    """(source hash the library was built from or None, whether it has CUDA kernels)."""
    data = Path(library).read_bytes()
    start = data.find(BUILD_TAG)
    built_from = None
    if start >= 0:
        start += len(BUILD_TAG)
        built_from = data[start : data.find(b"\0", start)].decode("ascii", errors="replace")
    return built_from, CUDA_TAG in data
