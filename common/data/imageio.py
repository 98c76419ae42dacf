"""Reading image files with errors that name the file and say what was expected."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm",
                    ".pgm")
# 8-bit modes that convert to RGB or L without losing the picture. 16-bit colour PNGs open as
# RGB (Pillow keeps the high byte); 16-bit grey ones open as I;16 (or I), which a plain
# convert() would clip to white, so they are reduced to their high byte here. Float and 1-bit
# images are refused.
CONVERTIBLE_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "RGBX")
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def is_image_file(path: str | Path) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def load_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Open, fully decode and convert an image to RGB (channels=3) or L (channels=1)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            img.load()  # decode now so that truncated files fail here, naming the file
            if img.mode in SIXTEEN_BIT_MODES:
                img = _high_byte(img, path)
            if img.mode not in CONVERTIBLE_MODES:
                raise DataError(f"{path}: image mode {img.mode!r} is not an 8-bit or 16-bit colour "
                                f"or grey image; expected one of {', '.join(CONVERTIBLE_MODES)} "
                                "or 16-bit grey (convert the file to 8-bit RGB or L)")
            return img.convert("RGB" if channels == 3 else "L")
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(f"{path}: refused as a possible decompression bomb ({err})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: corrupt or truncated image ({err})") from None


def _high_byte(img: Image.Image, path: Path) -> Image.Image:
    """A 16-bit grey image as 8-bit L (value >> 8, as Pillow does for 16-bit colour)."""
    values = np.asarray(img).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise DataError(f"{path}: image mode {img.mode!r} holds values outside 0..65535; "
                        "expected an 8-bit or 16-bit image")
    return Image.fromarray((values >> 8).astype(np.uint8))  # a 2-D uint8 array is mode L
