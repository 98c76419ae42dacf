"""Install ganrepro: `pip install -e .` (add `[dev]` for the test tools).

`GANREPRO_BUILD_EXT=1 pip install --no-build-isolation -e .` also compiles the STNM
op ahead of time (CUDA when torch and nvcc have it, else CPU only; `=cpu` forces
CPU only).  Without it nothing is compiled here: the op builds itself on first
use.  See docs/custom_ops.md.
"""
import os
import runpy
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
REQUIREMENTS = [line.strip() for line in (HERE / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]


def stnm_extension(mode):
    """The `common.ops._C` extension and its build command, for GANREPRO_BUILD_EXT=1|cpu."""
    import torch
    from torch.utils import cpp_extension

    sources = runpy.run_path(str(HERE / "common" / "ops" / "_sources.py"))
    nvcc = Path(cpp_extension.CUDA_HOME or "/nonexistent", "bin", "nvcc")
    with_cuda = mode != "cpu" and torch.version.cuda is not None and nvcc.exists()
    define = f"-DGANREPRO_STNM_SOURCE_HASH={sources['source_hash']()}"
    flags = {"cxx": ["-O3", define], "nvcc": ["-O3", define]}
    kind = cpp_extension.CUDAExtension if with_cuda else cpp_extension.CppExtension
    paths = [os.path.relpath(p, HERE) for p in sources["source_paths"](with_cuda)]
    extension = kind("common.ops._C", paths, extra_compile_args=flags)
    return [extension], {"build_ext": cpp_extension.BuildExtension}


BUILD_EXT = os.environ.get("GANREPRO_BUILD_EXT", "0")
EXT_MODULES, CMDCLASS = stnm_extension(BUILD_EXT) if BUILD_EXT in ("1", "cpu") else ([], {})

setup(
    name="ganrepro",
    version="0.1.0",
    description="Faithful, fast re-implementations of LR-GAN, StackGAN v1/v2, acVAE and RP-GAN",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks", "benchmarks.*",
                                    "scripts", "scripts.*", "cfg", "cfg.*", "docs", "docs.*"]),
    install_requires=REQUIREMENTS,
    extras_require={"dev": ["pytest>=7", "pytest-timeout", "ninja"]},
    ext_modules=EXT_MODULES,
    cmdclass=CMDCLASS,
)
