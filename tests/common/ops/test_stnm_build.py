"""The extension loader: cache location, build tags, stale builds, locking, fallback."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from common.ops import _build, _sources

REPO = Path(__file__).resolve().parents[3]


def test_cache_root_follows_torch_extensions_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert _build.cache_root() == tmp_path / "ganrepro"
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _build.cache_root() == tmp_path / "xdg" / "ganrepro" / "torch_extensions"


def test_source_hash_covers_every_source_and_header():
    names = set(_sources.HEADERS + _sources.CPU_SOURCES + _sources.CUDA_SOURCES)
    assert names == {p.name for p in _sources.CSRC.iterdir() if p.suffix in (".h", ".cpp", ".cu")}
    assert len(_sources.source_hash()) == 16


def test_build_info_is_read_from_the_library_bytes(tmp_path):
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"\x7fELF...." + _sources.BUILD_TAG + b"0123abcd\0...." + _sources.CUDA_TAG + b"\0")
    assert _sources.read_build_info(lib) == ("0123abcd", True)
    lib.write_bytes(b"\x7fELF....")
    assert _sources.read_build_info(lib) == (None, False)


def test_stale_ahead_of_time_build_is_skipped(monkeypatch, tmp_path):
    lib = tmp_path / "_C.so"
    lib.write_bytes(_sources.BUILD_TAG + b"not-the-current-hash\0")
    monkeypatch.setattr(_build, "_aot_path", lambda: lib)
    assert _build._load_aot(require_cuda=False) is None
    assert "stale" in _build.skipped_aot_notes()[-1]


def test_cpu_only_ahead_of_time_build_is_skipped_for_cuda(monkeypatch, tmp_path):
    lib = tmp_path / "_C.so"
    lib.write_bytes(_sources.BUILD_TAG + _sources.source_hash().encode() + b"\0")
    monkeypatch.setattr(_build, "_aot_path", lambda: lib)
    assert _build._load_aot(require_cuda=True) is None
    assert "no CUDA kernels" in _build.skipped_aot_notes()[-1]


def test_unloadable_library_is_reported_not_raised(tmp_path):
    garbage = tmp_path / "broken.so"
    garbage.write_bytes(b"not a shared library")
    assert _build._load_library(garbage)


def test_registration_failure_disables_the_extension(monkeypatch):
    from common.ops import _registry

    def broken():
        raise AttributeError("module 'torch.library' has no attribute 'register_fake'")

    monkeypatch.setattr(_registry, "register", broken)
    result = _build._register(_build.ExtStatus(loaded=True))
    assert not result.loaded and "register_fake" in result.reason and "impl='ref'" in result.fix


def test_build_lock_is_exclusive_and_recovers_from_a_dead_holder(tmp_path, monkeypatch):
    target = tmp_path / "build"
    with _build._build_lock(target) as first:
        assert first
        assert (tmp_path / "build.lock").exists()
    assert not (tmp_path / "build.lock").exists()
    lock = tmp_path / "build.lock"
    lock.touch()
    old = time.time() - _build._LOCK_STALE_SECONDS - 10
    os.utime(lock, (old, old))
    with _build._build_lock(target) as we_build:
        assert we_build


def test_waiters_use_the_finished_build(tmp_path):
    target = tmp_path / "build"
    (tmp_path / "build.lock").touch()
    target.mkdir()
    with _build._build_lock(target) as we_build:
        assert not we_build


FALLBACK_SCRIPT = textwrap.dedent(
    """
    import warnings, torch
    from common.ops import stnm, _build
    import importlib
    stnm_module = importlib.import_module("common.ops.stnm")
    _build._aot_path = lambda: None  # ignore an ahead-of-time build in the checkout
    x = [torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(1, 1, 4, 4),
         torch.eye(2, 3).unsqueeze(0)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stnm(*x)  # auto on CPU: reference, silently, nothing built
        print("cpu-auto-warnings", len(caught))
        print("cpu-auto-loaded", _build.status().loaded)
        first = stnm_module._use_ext("auto", "cuda")
        second = stnm_module._use_ext("auto", "cuda")
        print("cuda-auto", first, second)
        print("cuda-warnings", len(caught))
        print("cuda-message", str(caught[-1].message) if caught else "")
    try:
        stnm(*x, impl="ext")
    except RuntimeError as error:
        print("ext-error", error)

    import os
    os.environ["CXX"] = "false"  # a "compiler" that exists but fails
    _build._failures.clear()
    try:
        stnm(*x, impl="ext")
    except RuntimeError as error:
        print("build-error", str(error).replace(chr(10), " "))
    print("leftovers", sorted(p.name for p in _build.cache_root().glob("*")))
    """
)


def test_fallback_warns_once_and_ext_errors_name_the_cause(tmp_path):
    from torch.utils.cpp_extension import is_ninja_available

    ninja = is_ninja_available()  # without ninja, that is the cause reported first
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(tmp_path), CXX="/nonexistent/c++",
               CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    env.pop("GANREPRO_OPS", None)
    result = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["cpu-auto-warnings"] == "0"
    assert lines["cpu-auto-loaded"] == "False"
    assert lines["cuda-auto"] == "False False"
    assert lines["cuda-warnings"] == "1"
    assert "reference because" in lines["cuda-message"] and "Fix:" in lines["cuda-message"]
    if ninja:
        assert "no C++ compiler" in lines["ext-error"] and "CXX" in lines["ext-error"]
        assert "failed" in lines["build-error"] and "lrgan_ops_check.py --verbose" in lines["build-error"]
    else:
        assert "ninja" in lines["ext-error"] and "pip install ninja" in lines["ext-error"]
    assert lines["leftovers"] == "[]"  # no half-built directory or lock is left behind


def test_environment_override(monkeypatch):
    import importlib

    stnm_module = importlib.import_module("common.ops.stnm")
    monkeypatch.setenv("GANREPRO_OPS", "ref")
    assert stnm_module._use_ext("auto", "cpu") is False
    monkeypatch.setenv("GANREPRO_OPS", "fast")
    with pytest.raises(ValueError, match="GANREPRO_OPS"):
        stnm_module._use_ext("auto", "cpu")


AUTOCAST_FALLBACK_SCRIPT = textwrap.dedent(
    """
    import torch
    del torch.library.register_autocast  # behave like torch < 2.7
    from common.ops import stnm, stnm_ref, _build
    status = _build.load(require_cuda=False)
    assert status.loaded, status.reason
    gen = torch.Generator().manual_seed(0)
    x = [torch.randn(2, 3, 5, 6, generator=gen), torch.randn(2, 3, 5, 6, generator=gen),
         torch.rand(2, 1, 5, 6, generator=gen),
         torch.tensor([[1.2, 0.1, 0.2], [-0.1, 0.9, -0.3]]).expand(2, 2, 3).clone()]
    leaves = [t.bfloat16().requires_grad_() for t in x]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = torch.ops.ganrepro.stnm(*leaves)
        compiled = torch.compile(lambda *t: torch.ops.ganrepro.stnm(*t), backend="aot_eager",
                                 fullgraph=True)(*leaves)
    expected = stnm_ref(*[t.detach().float() for t in leaves])
    out.sum().backward()
    print("dtype", out.dtype, compiled.dtype)
    print("error", float((out.detach() - expected).abs().max()))
    print("grads", all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in leaves))
    """
)


def test_autocast_rule_without_register_autocast():
    """torch 2.5 and 2.6 lack torch.library.register_autocast; the fallback must behave the same."""
    from . import stnm_cases

    stnm_cases.require_ext()  # build (or reuse) the cached library before the subprocess
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", AUTOCAST_FALLBACK_SCRIPT], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["dtype"] == "torch.float32 torch.float32"
    assert float(lines["error"]) < 1e-5
    assert lines["grads"] == "True"
