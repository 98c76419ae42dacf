"""Feature-extractor weight files found offline, checked by sha256.

Lookup order: an explicit path (`--inception-weights`, `EVAL.WEIGHTS`), then the ganrepro cache
(`--cache-dir`, else $GANREPRO_CACHE, else ~/.cache/ganrepro) under `weights/`, then torch hub's
checkpoint folder ($TORCH_HOME/hub/checkpoints, where torch-fidelity itself would put it). A
download happens only when the caller allows it. The expected hash of each known file is written
in exactly one place: `KNOWN` below.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import UserError


class MetricsError(UserError):
    """Evaluation cannot run as asked: missing or wrong weights, bad protocol, no reference."""


@dataclass(frozen=True)
class WeightsFile:
    name: str       # the exact file name the extractor's library expects
    sha256: str     # of the whole file
    size: int       # bytes, for the error message
    url: str        # where it can be downloaded on a machine with internet


# torch-fidelity 0.4's InceptionV3 (TF 2015-12-05 graph converted to PyTorch). The URL and file
# name are torch-fidelity's (feature_extractor_inceptionv3.URL_INCEPTION_V3); the hash starts with
# the 8 hex digits torch hub embeds in the name. The full sha256 and size are quoted identically by
# several independent public projects that pin this file; it could not be recomputed here (no
# internet). If it ever proves wrong, correct it here and nowhere else.
INCEPTION = WeightsFile(
    name="weights-inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    size=95_628_359,
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth",
)
KNOWN = {"inception-v3-compat": INCEPTION}

_hash_memo: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """sha256 of a file (remembered per path, size and mtime within this process)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _hash_memo[key] = h.hexdigest()
    return _hash_memo[key]


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """ganrepro's cache folder (weights/, reference/)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GANREPRO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganrepro"


def search_folders(cache_dir: str | Path | None = None) -> list[Path]:
    return [cache_root(cache_dir) / "weights", Path(torch.hub.get_dir()) / "checkpoints"]


def verify(path: Path, spec: WeightsFile) -> str:
    """The file's sha256; an error naming the file if it is not the expected one."""
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise MetricsError(
            f"{path}: sha256 is {digest}, expected {spec.sha256} for {spec.name} "
            f"({spec.size:,} bytes); the file is damaged or a different network. Replace it with "
            f"the file from {spec.url}")
    return digest


def resolve(spec: WeightsFile, path: str | Path | None = None,
            cache_dir: str | Path | None = None, allow_download: bool = False) -> tuple[Path, str]:
    """(path, sha256) of a verified weights file; one clear error if it cannot be found."""
    if path:
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / spec.name
        if not path.is_file():
            raise MetricsError(f"{path}: weights file not found (expected {spec.name}, "
                               f"{spec.size:,} bytes, sha256 {spec.sha256}, from {spec.url})")
        return path, verify(path, spec)
    folders = search_folders(cache_dir)
    for folder in folders:
        if (folder / spec.name).is_file():
            return folder / spec.name, verify(folder / spec.name, spec)
    if allow_download:
        target = folders[0] / spec.name
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(target), hash_prefix=spec.sha256[:8])
        return target, verify(target, spec)
    places = " or ".join(str(f) for f in folders)
    raise MetricsError(
        f"weights file {spec.name} not found; put it ({spec.size:,} bytes, sha256 {spec.sha256}, "
        f"from {spec.url}) into {places}, or pass --inception-weights PATH "
        "(EVAL.WEIGHTS in a config); nothing is downloaded unless --allow-download is given")
