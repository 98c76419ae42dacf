"""Why a NumPy file would not load, in words: np.load falls back to unpickling anything that is
neither a zip archive (.npz) nor an .npy array, and then talks about pickles."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

# what np.load and reading its arrays raise on a damaged or foreign file
LOAD_ERRORS = (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile, zlib.error)

ZIP_MAGIC, NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


def load_failure(path: str | Path, err: BaseException) -> str:
    """The reason to show for `err` from np.load(path)."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as read_err:
        return read_err.strerror or type(read_err).__name__
    if not head:
        return "the file is empty"
    if not (head.startswith(ZIP_MAGIC) or head.startswith(NPY_MAGIC)):
        return "not a NumPy file (neither an .npz zip archive nor an .npy array)"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
