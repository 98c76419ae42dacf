"""Caption files for sampling: sentences and their embeddings (`raw_txt`, `fea_txt`).

Three containers hold the same two fields:
  .t7   the Lua Torch7 files of the original demos (`example_captions.t7`, `val_captions.t7`),
        read with torchfile: a table {raw_txt = {sentences}, fea_txt = {1 x dim tensors}}
  .pt   a torch file {"raw_txt": [str], "fea_txt": (N, dim) tensor} (read with weights_only)
  .npz  numpy arrays raw_txt (N,) str and fea_txt (N, dim)
`.pt` and `.npz` are what scripts/stackgan_embed_captions.py writes; `.t7` is read only.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.data.npfiles import LOAD_ERRORS, load_failure
from common.errors import DataError

CAPTION_SUFFIXES = (".t7", ".pt", ".npz")


@dataclass
class CaptionSet:
    texts: list[str]            # one sentence per embedding ('' where the file has none)
    embeddings: np.ndarray      # (N, dim) float32

    def __len__(self) -> int:
        return self.embeddings.shape[0]


def _lua_list(value, path: Path, field: str) -> list:
    """A Lua array (torchfile gives a dict {1: ..., 2: ...} or already a list) as a list."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        keys = sorted(value)
        if keys != list(range(1, len(keys) + 1)):
            raise DataError(f"{path}: {field} is not a Lua array (keys {keys[:5]}...)")
        return [value[k] for k in keys]
    raise DataError(f"{path}: {field} is {type(value).__name__}, expected a Lua array")


def _field(table, name: str, path: Path):
    for key in (name.encode(), name):
        try:
            return table[key]
        except (KeyError, TypeError):
            continue
    raise DataError(f"{path}: no field {name!r} (a caption file holds raw_txt and fea_txt)")


def _checked_storage(handler):
    """torchfile reads a storage with np.fromfile, which returns fewer values at the end of a
    truncated file (the tensor view then reaches past them): refuse short storages instead."""
    def read(reader, version):
        start = reader.f.tell()
        size = reader.read_long()
        reader.f.seek(start)
        values = handler(reader, version)
        if len(values) != size:
            import torchfile
            raise torchfile.T7ReaderException(f"a storage holds {len(values)} of its {size} "
                                              "values")
        return values
    read.checked = True
    return read


def _read_t7(path: Path) -> tuple[list[str], np.ndarray]:
    import torchfile
    for name, handler in list(torchfile.type_handlers.items()):
        if name.endswith(b"Storage") and not getattr(handler, "checked", False):
            torchfile.type_handlers[name] = _checked_storage(handler)
    try:
        # The list heuristic of torchfile compares numpy arrays with dicts, which numpy 2
        # rejects; Lua arrays are turned into lists here instead.
        table = torchfile.load(str(path), use_list_heuristic=False)
    except (struct.error, EOFError, ValueError, torchfile.T7ReaderException) as err:
        raise DataError(f"{path}: not a readable Torch7 file, possibly truncated ({err}); the "
                        "COCO val_captions.t7 download is known to be truncated") from None
    texts = [t.decode("utf-8", errors="replace") if isinstance(t, bytes) else str(t)
             for t in _lua_list(_field(table, "raw_txt", path), path, "raw_txt")]
    rows = [np.asarray(v, dtype=np.float32)
            for v in _lua_list(_field(table, "fea_txt", path), path, "fea_txt")]
    if not rows:
        raise DataError(f"{path}: fea_txt is empty")
    dim = rows[0].shape[-1]
    try:
        embeddings = np.concatenate([r.reshape(-1, dim) for r in rows], axis=0)
    except ValueError as err:
        raise DataError(f"{path}: fea_txt entries have different sizes ({err})") from None
    return texts, embeddings


def _read_pt(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise DataError(f"{path}: not a readable torch caption file ({err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a dict with raw_txt and fea_txt")
    texts = [str(t) for t in _field(data, "raw_txt", path)]
    return texts, torch.as_tensor(_field(data, "fea_txt", path)).float().numpy()


def _read_npz(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            texts = [str(t) for t in _field(data, "raw_txt", path).tolist()]
            embeddings = np.asarray(_field(data, "fea_txt", path), dtype=np.float32)
    except LOAD_ERRORS as err:
        raise DataError(f"{path}: not a readable .npz caption file "
                        f"({load_failure(path, err)})") from None
    return texts, embeddings


def read_caption_file(path: str | Path) -> CaptionSet:
    """Sentences and (N, dim) embeddings from a .t7, .pt or .npz caption file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: caption file not found")
    readers = {".t7": _read_t7, ".pt": _read_pt, ".npz": _read_npz}
    if path.suffix not in readers:
        raise DataError(f"{path}: unknown caption file type; expected one of "
                        f"{', '.join(CAPTION_SUFFIXES)}")
    texts, embeddings = readers[path.suffix](path)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise DataError(f"{path}: fea_txt has shape {embeddings.shape}; expected (N, dim)")
    if texts and len(texts) != embeddings.shape[0]:
        raise DataError(f"{path}: {len(texts)} sentences in raw_txt but {embeddings.shape[0]} "
                        "embeddings in fea_txt")
    return CaptionSet(texts or [""] * embeddings.shape[0], embeddings)


def write_caption_file(path: str | Path, texts: list[str], embeddings: np.ndarray) -> Path:
    """Write sentences and their embeddings as .pt or .npz (the modern caption formats)."""
    path = Path(path)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(texts) != embeddings.shape[0]:
        raise ValueError(f"need one (dim,) embedding per sentence, got {len(texts)} sentences "
                         f"and an array of shape {embeddings.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt":
        torch.save({"raw_txt": list(texts), "fea_txt": torch.from_numpy(embeddings)}, path)
    elif path.suffix == ".npz":
        np.savez(path, raw_txt=np.array(texts, dtype=str), fea_txt=embeddings)
    else:
        raise DataError(f"{path}: caption files are written as .pt or .npz")
    return path
