"""Reading the text files of a dataset (list files, metadata tables) with errors that name them."""
from __future__ import annotations

import codecs
from pathlib import Path

from common.errors import DataError


def without_bom(raw: bytes) -> bytes:
    """The bytes without a leading UTF-8 byte-order mark (what "UTF-8 with BOM" editors write)."""
    return raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw


def read_text(path: str | Path, what: str) -> str:
    """A UTF-8 text file, a byte-order mark dropped; anything else is one error naming it."""
    path = Path(path)
    try:
        return without_bom(path.read_bytes()).decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: {what} is not UTF-8 text (byte {err.start} is "
                        f"{err.object[err.start]:#04x})") from None
    except OSError as err:
        raise DataError(f"{path}: {what} cannot be read ({err.strerror or err})") from None
