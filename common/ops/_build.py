"""Find, build and load the compiled STNM extension.

Order of preference:

1. An ahead-of-time build (``GANREPRO_BUILD_EXT=1 pip install --no-build-isolation -e .``)
   at ``common/ops/_C*.so``, if it was compiled from the current sources and has
   the kernels needed.
2. A just-in-time build in the cache (see :func:`cache_root`), keyed by a hash of
   the sources and headers, the torch/CUDA/Python versions and the GPU
   architectures; built with ``torch.utils.cpp_extension.load`` on first use.

Nothing is compiled at import time.  Only one build can live in a process (its
``TORCH_LIBRARY`` owns the ``ganrepro`` namespace), so on a machine with a GPU the
CUDA build, which also holds the CPU kernels, is the one used for every device.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import torch

from . import _sources

_LOCK_STALE_SECONDS = 20 * 60
_LOCK_POLL_SECONDS = 2.0


@dataclasses.dataclass
class ExtStatus:
    """What the loader found; `reason` and `fix` explain a missing extension."""

    loaded: bool = False
    has_cuda: bool = False
    origin: str = ""          # "aot", "jit-cache", "jit-build" or "preloaded"
    path: str = ""
    reason: str = ""
    fix: str = ""
    detail: str = ""          # full compiler output of a failed build
    build_seconds: float = 0.0


_lock = threading.Lock()
_status = ExtStatus()
# Failed attempts, keyed by (require_cuda, allow_build), so that a missing
# extension costs one dictionary lookup per call instead of a new probe.
_failures: dict[tuple[bool, bool], ExtStatus] = {}


def loaded(require_cuda: bool) -> bool:
    """Fast check, without locking: is a usable extension already loaded?"""
    return _status.loaded and (_status.has_cuda or not require_cuda)


def status() -> ExtStatus:
    """The loader's current state, without trying to load anything."""
    return dataclasses.replace(_status)


def cache_root() -> Path:
    """Where JIT builds live: $TORCH_EXTENSIONS_DIR/ganrepro, else ~/.cache/ganrepro/torch_extensions."""
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"]) / "ganrepro"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ganrepro" / "torch_extensions"


def load(require_cuda: bool, allow_build: bool = True) -> ExtStatus:
    """Load the extension if possible and return the status.

    require_cuda: the caller has CUDA tensors, so a CPU-only build is not enough.
    allow_build: compile if nothing usable is on disk (False = only load a
    finished build; used for CPU tensors in impl="auto").
    """
    global _status
    with _lock:
        if _status.loaded:
            if require_cuda and not _status.has_cuda:
                return _failure(
                    "the STNM extension loaded in this process has no CUDA kernels (it was "
                    "built without nvcc, without a visible GPU, or as a CPU-only AOT build)",
                    "make nvcc available (CUDA_HOME) or rebuild the AOT build with CUDA, "
                    "then start a new process",
                )
            return status()
        key = (require_cuda, allow_build)
        if key in _failures:
            return dataclasses.replace(_failures[key])
        result = _preloaded() or _load_aot(require_cuda) or _load_jit(require_cuda, allow_build)
        if result.loaded:
            result = _register(result)
        if result.loaded:
            _status = result
            _failures.clear()
        else:
            _failures[key] = result
        return dataclasses.replace(result)


def _register(result: ExtStatus) -> ExtStatus:
    """Add the Python-side registrations; a failure here disables the extension."""
    from . import _registry

    try:
        _registry.register()
    except Exception as error:  # e.g. a torch.library API this torch version lacks
        return _failure(
            f"registering the op with torch.library failed ({type(error).__name__}: {error})",
            f"use impl='ref' and report this with the output of scripts/lrgan_ops_check.py "
            f"(torch {torch.__version__})",
        )
    return result


def _load_library(path: Path) -> str | None:
    """Load a built library; returns the error text if the file is unusable."""
    try:
        torch.ops.load_library(str(path))
    except (OSError, RuntimeError) as error:
        return str(error)
    return None


def _failure(reason: str, fix: str, detail: str = "") -> ExtStatus:
    return ExtStatus(reason=reason, fix=fix, detail=detail)


def _has_schema() -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw("ganrepro::stnm", "")
    except RuntimeError:
        return False
    return True


def _preloaded() -> ExtStatus | None:
    """The library was loaded by someone else (e.g. `import common.ops._C`)."""
    if not _has_schema():
        return None
    has_cuda = torch._C._dispatch_has_kernel_for_dispatch_key("ganrepro::stnm", "CUDA")
    return ExtStatus(loaded=True, has_cuda=has_cuda, origin="preloaded")


# ----------------------------------------------------------------------------------------
# Ahead-of-time build


def _aot_path() -> Path | None:
    try:
        spec = importlib.util.find_spec(f"{__package__}._C")
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def _load_aot(require_cuda: bool) -> ExtStatus | None:
    path = _aot_path()
    if path is None:
        return None
    built_from, has_cuda = _sources.read_build_info(path)
    if built_from != _sources.source_hash():
        _note_skipped_aot(path, "was built from different sources (stale)")
        return None
    if require_cuda and not has_cuda:
        _note_skipped_aot(path, "has no CUDA kernels")
        return None
    error = _load_library(path)
    if error:  # e.g. built against another torch: fall through to the JIT build
        _note_skipped_aot(path, f"failed to load ({error.strip().splitlines()[-1][:200]})")
        return None
    return ExtStatus(loaded=True, has_cuda=has_cuda, origin="aot", path=str(path))


_skipped_aot: list[str] = []


def _note_skipped_aot(path: Path, why: str) -> None:
    _skipped_aot.append(
        f"ahead-of-time build {path} {why}; rebuild it with "
        "`GANREPRO_BUILD_EXT=1 pip install --no-build-isolation -e .` or delete it"
    )


def skipped_aot_notes() -> list[str]:
    return list(_skipped_aot)


# ----------------------------------------------------------------------------------------
# Just-in-time build


def _local_cuda_arches() -> list[str]:
    caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    return [f"{major}.{minor}" for major, minor in sorted(caps)]


def _nvcc() -> Path | None:
    from torch.utils.cpp_extension import CUDA_HOME

    if not CUDA_HOME:
        return None
    nvcc = Path(CUDA_HOME) / "bin" / ("nvcc.exe" if os.name == "nt" else "nvcc")
    return nvcc if nvcc.exists() else None


def _want_cuda_build() -> tuple[bool, str, str]:
    """Whether to build the CUDA flavour here; if not, why not and how to fix it."""
    if torch.version.cuda is None:
        return False, "this torch build has no CUDA support", "install a CUDA build of torch"
    if not torch.cuda.is_available():
        return False, "no CUDA device is visible", "check the driver and CUDA_VISIBLE_DEVICES"
    if _nvcc() is None:
        return (
            False,
            "nvcc was not found (CUDA_HOME is unset or has no bin/nvcc)",
            f"install the CUDA toolkit matching torch.version.cuda ({torch.version.cuda}) "
            "and set CUDA_HOME",
        )
    return True, "", ""


def _build_key(with_cuda: bool, arches: list[str]) -> str:
    parts = [
        _sources.source_hash(),
        torch.__version__,
        str(torch.version.cuda),
        f"py{sys.version_info.major}.{sys.version_info.minor}",
        ";".join(arches),
        "cuda" if with_cuda else "cpu",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _load_jit(require_cuda: bool, allow_build: bool) -> ExtStatus:
    with_cuda, no_cuda_reason, no_cuda_fix = _want_cuda_build()
    if require_cuda and not with_cuda:
        return _failure(f"cannot build the CUDA kernels: {no_cuda_reason}", no_cuda_fix)
    arches = _local_cuda_arches() if with_cuda else []
    flavour = "cuda" if with_cuda else "cpu"
    name = f"ganrepro_stnm_{flavour}_{_build_key(with_cuda, arches)}"
    final_dir = cache_root() / name
    library = final_dir / f"{name}.so"
    if library.exists():
        error = _load_library(library)
        if error:
            return _failure(f"the cached build {library} failed to load: {error}",
                            f"delete it with `rm -rf {final_dir}` and retry")
        return ExtStatus(loaded=True, has_cuda=with_cuda, origin="jit-cache", path=str(library))
    if not allow_build:
        return _failure(
            "the extension has not been built yet",
            "run `python scripts/lrgan_ops_check.py` (it builds it) or call stnm(..., impl='ext') once",
        )

    missing = _missing_build_tools()
    if missing:
        return _failure(*missing)
    started = time.perf_counter()
    loaded_here = False
    try:
        with _build_lock(final_dir) as we_build:
            if we_build and not library.exists():
                loaded_here = _compile(name, final_dir, with_cuda, arches)
    except Exception as error:  # a failed build must not break the caller: report it
        text = str(error)
        return _failure(
            f"building the {flavour} extension failed: {_first_error_line(text).rstrip('.')}",
            f"run `python scripts/lrgan_ops_check.py --verbose` for the compiler output; "
            f"clear a broken cache with `rm -rf {final_dir}`",
            detail=text,
        )
    if not library.exists():
        return _failure(
            "another process was building the extension and did not finish",
            f"remove {final_dir}.lock if no build is running, then retry",
        )
    error = None if loaded_here else _load_library(library)
    if error:
        return _failure(f"the freshly built {library} failed to load: {error}",
                        "run `python scripts/lrgan_ops_check.py --verbose`")
    return ExtStatus(
        loaded=True,
        has_cuda=with_cuda,
        origin="jit-build",
        path=str(library),
        build_seconds=time.perf_counter() - started,
    )


def _missing_build_tools() -> tuple[str, str] | None:
    from torch.utils.cpp_extension import is_ninja_available

    if not is_ninja_available():
        return "ninja is not installed (needed to compile the extension)", "pip install ninja"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return (
            f"no C++ compiler found (looked for {compiler!r})",
            "install one (e.g. `apt install g++`) or point CXX at it",
        )
    return None


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower():
            return line.strip()[:300]
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "unknown error"


@contextlib.contextmanager
def _build_lock(final_dir: Path):
    """Yields True in the one process that should build; the others wait for it.

    A lock older than _LOCK_STALE_SECONDS is taken to belong to a dead process.
    """
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = final_dir.with_name(final_dir.name + ".lock")
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                age = time.time() - lock.stat().st_mtime
            except FileNotFoundError:
                continue
            if final_dir.exists():
                yield False
                return
            if age > _LOCK_STALE_SECONDS:
                lock.unlink(missing_ok=True)
                continue
            time.sleep(_LOCK_POLL_SECONDS)
            continue
        os.close(fd)
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)
        return


def _compile(name: str, final_dir: Path, with_cuda: bool, arches: list[str]) -> bool:
    """Build in a private directory, then move it into place in one rename.

    cpp_extension.load also loads the library (from the private directory; the
    mapping survives the rename).  Returns True, as the library is then loaded.
    """
    from torch.utils.cpp_extension import load as cpp_load

    work_dir = final_dir.with_name(f"{final_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    define = f"-DGANREPRO_STNM_SOURCE_HASH={_sources.source_hash()}"
    print(
        f"ganrepro: compiling the STNM {'CUDA' if with_cuda else 'CPU'} extension "
        f"(first use; cached in {final_dir})...",
        file=sys.stderr,
        flush=True,
    )
    # Target exactly the visible GPUs: a TORCH_CUDA_ARCH_LIST inherited from a
    # container image is often wrong for the card at hand.
    try:
        with _env("TORCH_CUDA_ARCH_LIST", ";".join(arches) if with_cuda else None):
            cpp_load(
                name=name,
                sources=[str(p) for p in _sources.source_paths(with_cuda)],
                extra_cflags=["-O3", define],
                extra_cuda_cflags=["-O3", define] if with_cuda else None,
                build_directory=str(work_dir),
                with_cuda=with_cuda,
                is_python_module=False,
                verbose=os.environ.get("GANREPRO_OPS_VERBOSE") == "1",
            )
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)  # the error text carries the compiler output
        raise
    try:
        os.replace(work_dir, final_dir)
    except OSError:  # another process finished first; keep its copy on disk
        shutil.rmtree(work_dir, ignore_errors=True)
    print("ganrepro: STNM extension ready.", file=sys.stderr, flush=True)
    return True


@contextlib.contextmanager
def _env(key: str, value: str | None):
    old = os.environ.get(key)
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
