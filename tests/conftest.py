"""Shared fixtures: where the real data lives, and the repository root for subprocess runs.

Real data (MNIST, CIFAR-10, CUB, COCO lists, CelebA) is read from ../shared/data or from
$GANREPRO_SHARED_DATA. Tests that need it use the `shared_data` fixture: they skip when the
folder is absent, except when GANREPRO_REQUIRE_DATA=1 (as in CI), where they fail instead.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANREPRO_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        message = f"shared data folder {SHARED} not found (set GANREPRO_SHARED_DATA)"
        if os.environ.get("GANREPRO_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def run_cli(args: list[str], cwd: Path, timeout: int = 600, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run `python <args>` in `cwd` like a user would; fail with its output if it fails."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
                **(env or {})}
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"command {args} failed with {proc.returncode}:\n"
                             f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture
def cli():
    return run_cli


def load_script(name: str):
    """scripts/<name>.py as a module, so that a test calls its main() in-process."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_error_line(capsys) -> str:
    """The one `error: ...` line a command printed on stderr (and nothing else there)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]
