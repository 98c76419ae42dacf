"""Why a NumPy file would not load, in words: np.load falls back to unpickling anything that is
neither a zip archive (.npz) nor an .npy array, and then talks about pickles."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from common import errors

# what np.load and reading its arrays raise on a damaged or foreign file
LOAD_ERRORS = (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile, zlib.error)

ZIP_MAGIC, NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


def load_failure(path: str | Path, err: BaseException) -> str:
    """The reason to show for `err` from np.load(path)."""
    return errors.load_failure(path, err, (ZIP_MAGIC, NPY_MAGIC),
                               "not a NumPy file (neither an .npz zip archive nor an .npy array)")
