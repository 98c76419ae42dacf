"""Reading image files with errors that name the file and say what was expected."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from common.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm",
                    ".pgm")
# 8-bit modes that convert to RGB or L without losing the picture; 16-bit, float and 1-bit
# images would be silently mangled by a plain convert(), so they are refused.
CONVERTIBLE_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "RGBX")


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
            if img.mode not in CONVERTIBLE_MODES:
                raise DataError(f"{path}: image mode {img.mode!r} is not an 8-bit colour or grey "
                                f"image; expected one of {', '.join(CONVERTIBLE_MODES)} "
                                "(convert the file to 8-bit RGB or L)")
            return img.convert("RGB" if channels == 3 else "L")
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: corrupt or truncated image ({err})") from None
