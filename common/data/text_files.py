"""Readers for the StackGAN on-disk text-image formats (one split directory at a time).

A split directory (`<DATA_DIR>/train`, `<DATA_DIR>/test`) holds
  filenames.pickle                 list of N image keys (path below the image folder, no `.jpg`)
  <embedding file>.pickle          (N, captions, dim) caption embeddings, index-aligned with it
  class_info.pickle (optional)     N class ids (default 0..N-1: every image its own class)
The CUB metadata (`images.txt`, `bounding_boxes.txt`) gives the bird boxes; the caption text of
image `key` is `<text dir>/<key>.txt`, one caption per line.

The pickles were written by Python 2: they are read with `encoding="latin1"` and by an
unpickler that only builds lists, dicts, strings, numbers and numpy arrays (never code).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.data.textio import without_bom
from common.errors import DataError

# EMBEDDING_TYPE -> file name. The first three are the published encoders' files; the last two
# are written by scripts/stackgan_embed_captions.py (not comparable with the published embeddings).
EMBEDDING_FILES = {
    "cnn-rnn": "char-CNN-RNN-embeddings.pickle",
    "cnn-gru": "char-CNN-GRU-embeddings.pickle",
    "skip-thought": "skip-thought-embeddings.pickle",
    "char-ngram": "char-ngram-embeddings.pickle",
    "sentence-transformer": "sentence-transformer-embeddings.pickle",
}

_SAFE_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"), ("collections", "OrderedDict"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "int"), ("builtins", "float"), ("builtins", "str"), ("builtins", "bytes"),
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only lists, numbers, "
                                     "strings and numpy arrays are accepted)")


def read_pickle(path: str | Path, what: str):
    """Load a data pickle (Python 2 or 3 protocol), naming the file in every error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable pickle of {what} ({err})") from None


def _as_text(value, path: Path, index: int) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    raise DataError(f"{path}: entry {index} is {type(value).__name__}, expected a string key")


def load_filenames(split_dir: str | Path) -> list[str]:
    """The image keys of a split (filenames.pickle)."""
    path = Path(split_dir) / "filenames.pickle"
    names = read_pickle(path, "filenames.pickle (list of image keys)")
    if not isinstance(names, (list, tuple)) or not names:
        raise DataError(f"{path}: expected a non-empty list of image keys, got "
                        f"{type(names).__name__}")
    return [_as_text(v, path, i) for i, v in enumerate(names)]


def embedding_path(split_dir: str | Path, embedding_type: str) -> Path:
    if embedding_type not in EMBEDDING_FILES:
        raise DataError(f"embedding type {embedding_type!r} unknown; expected one of "
                        f"{', '.join(EMBEDDING_FILES)}")
    return Path(split_dir) / EMBEDDING_FILES[embedding_type]


def load_embeddings(split_dir: str | Path, embedding_type: str, count: int | None = None
                    ) -> np.ndarray:
    """(N, captions, dim) float32 caption embeddings; a (N, dim) array counts as 1 caption."""
    path = embedding_path(split_dir, embedding_type)
    if not path.is_file():
        hint = ("; the published char-CNN-RNN files can no longer be downloaded: write "
                "embeddings with scripts/stackgan_embed_captions.py and set EMBEDDING_TYPE to its "
                "encoder (char-ngram)") if embedding_type in ("cnn-rnn", "cnn-gru") else ""
        raise DataError(f"{path}: caption embeddings ({embedding_type}) not found{hint}")
    raw = read_pickle(path, f"{embedding_type} caption embeddings")
    try:
        array = np.asarray(raw, dtype=np.float32)
    except (ValueError, TypeError) as err:
        raise DataError(f"{path}: embeddings are not a numeric array ({err})") from None
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3 or 0 in array.shape:
        raise DataError(f"{path}: embeddings have shape {array.shape}; expected "
                        "(images, captions per image, dimension)")
    if count is not None and array.shape[0] != count:
        raise DataError(f"{path}: {array.shape[0]} embedding rows but filenames.pickle lists "
                        f"{count} images (the two files must be index-aligned)")
    return array


def load_class_ids(split_dir: str | Path, count: int) -> np.ndarray:
    """class_info.pickle as int64, or 0..count-1 when the file is absent (original rule)."""
    path = Path(split_dir) / "class_info.pickle"
    if not path.is_file():
        return np.arange(count, dtype=np.int64)
    raw = read_pickle(path, "class_info.pickle (list of class ids)")
    try:
        ids = np.asarray(raw, dtype=np.int64).reshape(-1)
    except (ValueError, TypeError) as err:
        raise DataError(f"{path}: class ids are not integers ({err})") from None
    if ids.shape[0] != count:
        raise DataError(f"{path}: {ids.shape[0]} class ids but filenames.pickle lists {count} "
                        "images")
    return ids


@dataclass
class TextSplit:
    """The index-aligned lists of one split (no image is opened)."""

    split_dir: Path
    filenames: list[str]
    embeddings: np.ndarray      # (N, captions, dim) float32
    class_ids: np.ndarray       # (N,) int64

    def __len__(self) -> int:
        return len(self.filenames)


def load_split(data_dir: str | Path, split: str, embedding_type: str) -> TextSplit:
    split_dir = Path(data_dir) / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found (expected "
                        f"<DATA_DIR>/{split}/filenames.pickle and the embedding pickle)")
    names = load_filenames(split_dir)
    return TextSplit(split_dir, names, load_embeddings(split_dir, embedding_type, len(names)),
                     load_class_ids(split_dir, len(names)))


# ---- CUB bounding boxes ---------------------------------------------------------------------
def load_bboxes(cub_dir: str | Path) -> dict[str, list[int]]:
    """{image key: [x_left, y_top, width, height]} from CUB's images.txt and bounding_boxes.txt.

    Both files are read with pandas (whitespace separated, no header); the box values are cast
    to int and rows are matched by position, as the original code did.
    """
    import pandas as pd
    cub_dir = Path(cub_dir)
    tables = {}
    for name in ("images.txt", "bounding_boxes.txt"):
        path = cub_dir / name
        if not path.is_file():
            raise DataError(f"{path}: CUB metadata file not found (expected the CUB_200_2011 "
                            "folder with images.txt and bounding_boxes.txt)")
        try:
            tables[name] = pd.read_csv(path, sep=r"\s+", header=None)
        except (ValueError, pd.errors.ParserError) as err:
            raise DataError(f"{path}: not a whitespace-separated table ({err})") from None
    images, boxes = tables["images.txt"], tables["bounding_boxes.txt"]
    if images.shape[1] < 2 or boxes.shape[1] < 5:
        raise DataError(f"{cub_dir}: images.txt needs '<id> <path>' rows and bounding_boxes.txt "
                        "'<id> <x> <y> <w> <h>' rows")
    if len(images) != len(boxes):
        raise DataError(f"{cub_dir}: images.txt has {len(images)} rows but bounding_boxes.txt "
                        f"{len(boxes)} (rows are matched by position)")
    try:
        values = boxes.iloc[:, 1:5].astype(float).astype(int).values.tolist()
    except ValueError as err:
        raise DataError(f"{cub_dir / 'bounding_boxes.txt'}: box values are not numbers "
                        f"({err})") from None
    return {str(path)[:-4]: box for path, box in zip(images[1].tolist(), values)}


def crop_box(bbox, width: int, height: int) -> tuple[int, int, int, int]:
    """The StackGAN crop around a CUB box: a square of side 1.5 * max(w, h) centred on the
    box, clipped at the image borders. Returns (left, top, right, bottom)."""
    x, y, w, h = (int(v) for v in bbox)
    radius = int(max(w, h) * 0.75)
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    return (max(0, cx - radius), max(0, cy - radius), min(width, cx + radius),
            min(height, cy + radius))


# ---- caption text ---------------------------------------------------------------------------
def load_captions(path: str | Path) -> list[str]:
    """Non-empty lines of a caption file (UTF-8; the broken '\\ufffd\\ufffd' pairs of the CUB
    text files become a space, as in the original loader)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: caption file not found")
    text = without_bom(path.read_bytes()).decode("utf-8", errors="replace")
    lines = [line.replace("\ufffd\ufffd", " ").strip() for line in text.splitlines()]
    return [line for line in lines if line]
