"""Images that came from no checkpoint of ours (the original code's samples, another library's),
read so that they are scored by exactly the protocol our generators are scored by.

A set is a folder of PNG / JPEG files (all of one size, read as RGB) or an `.npy` / `.npz` array
(N, C, H, W) with C 1 or 3, of uint8 in [0, 255] or float in [-1, 1] (converted to uint8 by the
PNG writer's rule, as our generators' samples are). Any height and width: the extractor resizes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from common.data.npfiles import LOAD_ERRORS, load_failure
from common.metrics.samples import listing_sha256, to_uint8_rgb
from common.metrics.weights import MetricsError

ARRAY_KEYS = ("images", "samples", "x", "arr_0")


class ImageSet:
    """uint8 (N, 3, H, W) images, read lazily for folders, with a description for the record."""

    def __init__(self, description: dict, count: int, read):
        self.description, self.count, self._read = description, count, read

    def __len__(self) -> int:
        return self.count

    def batches(self, n: int, batch_size: int) -> Iterator[dict]:
        """The first n images in batches of dicts {"image": uint8 (B, 3, H, W)}."""
        for start in range(0, min(n, self.count), batch_size):
            yield {"image": self._read(start, min(start + batch_size, n, self.count))}


def load(path: str | Path) -> ImageSet:
    path = Path(path).expanduser()
    if path.is_dir():
        return _folder(path)
    if not path.is_file():
        raise MetricsError(f"{path}: no such folder or file (expected a folder of PNG/JPEG "
                           "images or an .npy/.npz array)")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise MetricsError(f"{path}: expected a folder of PNG/JPEG images or an .npy/.npz array "
                           "(N, C, H, W)")
    return _array(path)


def _folder(folder: Path) -> ImageSet:
    from PIL import Image, UnidentifiedImageError

    from common.data.folders import scan_folder
    from common.errors import DataError
    try:
        paths, _, _ = scan_folder(folder)
    except DataError as err:
        raise MetricsError(str(err)) from None
    if not paths:
        raise MetricsError(f"{folder}: no PNG or JPEG images in it")
    sizes = {}
    for p in paths:
        try:
            with Image.open(p) as img:
                sizes.setdefault(img.size, p)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
            raise MetricsError(f"{p}: not a readable image ({err})") from None
        if len(sizes) > 1:
            (a, first), (b, odd) = sizes.items()
            raise MetricsError(f"{odd}: is {b[0]}x{b[1]}, {first} is {a[0]}x{a[1]}; the images "
                               "of a set must all have one size")
    (w, h), = sizes

    def read(start: int, stop: int) -> torch.Tensor:
        from common.data.imageio import load_image
        from common.errors import DataError
        out = []
        for p in paths[start:stop]:
            try:
                img = np.asarray(load_image(p, 3), dtype=np.uint8)
            except DataError as err:
                raise MetricsError(str(err)) from None
            out.append(torch.from_numpy(img.copy()).permute(2, 0, 1))
        return torch.stack(out)

    description = {"kind": "folder", "path": str(folder.resolve()), "files": len(paths),
                   "size": [h, w], "listing_sha256": listing_sha256(folder, paths),
                   "order": "sorted file paths"}
    return ImageSet(description, len(paths), read)


def from_array(array: np.ndarray, description: dict) -> ImageSet:
    """An in-memory (N, C, H, W) array as a set (checked and converted as a file would be)."""
    where = description.get("path", "array")
    if array.ndim != 4 or array.shape[1] not in (1, 3) or array.shape[0] == 0:
        raise MetricsError(f"{where}: expected a non-empty array (N, C, H, W) with C 1 or 3, "
                           f"got shape {tuple(array.shape)}")
    tensor = torch.from_numpy(np.ascontiguousarray(_as_uint8(array, where)))
    return ImageSet({"kind": "array", **description, "shape": list(array.shape)},
                    len(tensor), lambda a, b: _rgb(tensor[a:b]))


def _rgb(chunk: torch.Tensor) -> torch.Tensor:
    return chunk.expand(-1, 3, -1, -1).contiguous() if chunk.shape[1] == 1 else chunk


def _array(path: Path) -> ImageSet:
    try:
        loaded = np.load(path, allow_pickle=False)
    except LOAD_ERRORS as err:
        raise MetricsError(f"{path}: not a readable {path.suffix} array "
                           f"({load_failure(path, err)})") from None
    key = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        names = list(loaded.files)
        key = names[0] if len(names) == 1 else next((k for k in ARRAY_KEYS if k in names), None)
        if key is None:
            raise MetricsError(f"{path}: holds {', '.join(names) or 'no arrays'}; expected one "
                               f"array, or one named {' or '.join(ARRAY_KEYS)}")
        try:
            array = loaded[key]
        except LOAD_ERRORS as err:
            raise MetricsError(f"{path}: array {key!r} is not readable ({err})") from None
    else:
        array = loaded
    where = f"{path}" + (f" [{key}]" if key else "")
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise MetricsError(f"{where}: expected an array (N, C, H, W) with C 1 or 3, got shape "
                           f"{tuple(array.shape)}")
    if array.shape[0] == 0 or array.shape[2] == 0 or array.shape[3] == 0:
        raise MetricsError(f"{where}: the set is empty (shape {tuple(array.shape)})")
    dtype = str(array.dtype)
    array = _as_uint8(array, where)
    tensor = torch.from_numpy(np.ascontiguousarray(array))

    def read(start: int, stop: int) -> torch.Tensor:
        return _rgb(tensor[start:stop])

    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
    description = {"kind": "array", "path": str(path.resolve()), "key": key,
                   "shape": list(array.shape), "sha256_uint8": digest,
                   "dtype": dtype}
    return ImageSet(description, int(array.shape[0]), read)


def _as_uint8(array: np.ndarray, where: str) -> np.ndarray:
    """uint8 as is; other integers in [0, 255]; floats in [-1, 1] by the PNG writer's rule."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.integer):
        lo, hi = int(array.min()), int(array.max())
        if lo < 0 or hi > 255:
            raise MetricsError(f"{where}: integer images must lie in [0, 255], found "
                               f"[{lo}, {hi}]")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise MetricsError(f"{where}: holds NaN or Inf values")
        lo, hi = float(array.min()), float(array.max())
        if lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4:
            raise MetricsError(f"{where}: float images must lie in [-1, 1], found [{lo:.4g}, "
                               f"{hi:.4g}] (for [0, 1] images pass x * 2 - 1; for [0, 255] "
                               "store uint8)")
        out = [to_uint8_rgb(torch.from_numpy(array[i:i + 1024]).float()).numpy()
               [:, :array.shape[1]] for i in range(0, len(array), 1024)]
        return np.concatenate(out)
    raise MetricsError(f"{where}: images must be uint8 or float, got {array.dtype}")
