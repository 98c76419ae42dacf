"""CelebA faces with their 40 binary attributes (the acVAE family's data).

Where the files come from (DATA.ROOT, overridable one by one in DATA.OPTIONS):
- attributes: `list_attr_celeba.txt`, or the same file inside `list_attr_celeba.zip`;
- split: `list_eval_partition.txt` (0 train, 1 val, 2 test; 162,770 / 19,867 / 19,962);
- images: `img_align_celeba/` (aligned 178x218 faces) or any folder of aligned faces named like
  the list (OPTIONS.IMAGES);
- or the original acVAE index `gen/celeba.t7` (OPTIONS.T7_INDEX, read with torchfile): per split
  an N x L CharTensor of relative image paths (joined to DATA.ROOT) and an N x 40 attribute
  tensor. It replaces the two list files.
The files are looked up in ROOT, ROOT/celeba (torchvision's layout) and ROOT/Anno, ROOT/Eval,
ROOT/Img (the Google Drive layout).

Preprocessing as the Torch7 loader: RGB in [0,1] mapped to 2x-1, Torch's `image.scale` to
IMAGE_SIZE x IMAGE_SIZE (a fractional box filter when shrinking, see `torch_scale`), horizontal
flip with p = 1/2 on the train split only. The original squashed the authors' "loose crops" (size
undocumented) to a square; OPTIONS.CROP says what to do with other faces: 'squash' (faithful: the
whole picture, aspect ratio not kept; img_align_celeba is 178x218, so faces get 22% flatter),
'center' (the central square), or 'box' (OPTIONS.CROP_BOX = left, top, right, bottom in
178x218 pixels, scaled to the actual image size, e.g. 89x109 for a half-size copy).
"""
from __future__ import annotations

import functools
import io
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common.data.imageio import load_image
from common.data.registry import DataSpec, one_of, option_error, register
from common.data.textio import read_text, without_bom
from common.data.transforms import maybe_flip
from common.errors import DataError

ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young")
SPLITS = {"train": 0, "val": 1, "valid": 1, "test": 2}
ALIGNED_SIZE = (178, 218)   # width, height of img_align_celeba, the frame of CROP_BOX
OPTIONS = {
    "IMAGES": "",          # image folder (absolute or relative to ROOT); default img_align_celeba
    "ATTR_FILE": "",       # list_attr_celeba.txt or .zip; default: found in ROOT
    "PARTITION_FILE": "",  # list_eval_partition.txt; default: found in ROOT
    "T7_INDEX": "",        # the original gen/celeba.t7 (replaces the two list files)
    "CROP": "squash",      # squash (faithful ScaleSquare) | center | box
    "CROP_BOX": [0, 20, 178, 198],  # left, top, right, bottom in 178x218 pixels (CROP: box)
    "FLIP": True,          # random horizontal flip on the train split (as the original)
    "ATTR_CODING": "pm1",  # pm1: -1/+1 as in list_attr_celeba.txt | 01: 0/1
    "MISSING": "error",    # error: every image of the split must exist | skip: use those present
}
CROPS = ("squash", "center", "box")


# ---- the list files ---------------------------------------------------------------------------
def _cache_key(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _read_attr_cached(key: tuple) -> tuple[tuple, list, np.ndarray]:
    import pandas as pd
    path = Path(key[0])
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if n.endswith("list_attr_celeba.txt")]
                if not members:
                    raise DataError(f"{path}: zip file holds no list_attr_celeba.txt "
                                    f"(it holds {', '.join(zf.namelist()[:5]) or 'nothing'})")
                raw = zf.read(members[0])
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise DataError(f"{path}: not a readable zip file ({err})") from None
    else:
        raw = path.read_bytes()
    raw = without_bom(raw)
    head = raw[:4096].decode("utf-8", "replace").splitlines()
    if len(head) < 3 or not head[0].strip().isdigit():
        raise DataError(f"{path}: not a CelebA attribute list (expected the image count, then "
                        "the 40 attribute names, then one line per image)")
    names = tuple(head[1].split())
    if len(names) != len(ATTRIBUTES):
        raise DataError(f"{path}: header names {len(names)} attributes, expected 40")
    try:
        table = pd.read_csv(io.BytesIO(raw), sep=r"\s+", skiprows=2, header=None)
    except Exception as err:  # pandas raises several parser error types
        raise DataError(f"{path}: unreadable attribute rows ({err})") from None
    if table.shape[1] != len(names) + 1:
        raise DataError(f"{path}: rows have {table.shape[1] - 1} values, expected {len(names)}")
    values = table.iloc[:, 1:].to_numpy(dtype=np.int8)
    if not np.isin(values, (-1, 1)).all():
        raise DataError(f"{path}: attribute values must be -1 or 1")
    if len(values) != int(head[0]):
        raise DataError(f"{path}: header says {head[0].strip()} images but {len(values)} rows follow")
    return names, table.iloc[:, 0].astype(str).tolist(), values


def read_attributes(path: str | Path) -> tuple[tuple, list, np.ndarray]:
    """(names, file names, N x 40 int8 in {-1, 1}) from list_attr_celeba.txt or its .zip."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: CelebA attribute list not found")
    return _read_attr_cached(_cache_key(path))


@functools.lru_cache(maxsize=4)
def _read_partition_cached(key: tuple) -> dict[str, int]:
    path = Path(key[0])
    out = {}
    for n, line in enumerate(read_text(path, "partition list").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{path}:{n}: expected '<image name> <0|1|2>', got {line.strip()!r}")
        out[parts[0]] = int(parts[1])
    return out


def read_partition(path: str | Path) -> dict[str, int]:
    """{file name: 0 train | 1 val | 2 test} from list_eval_partition.txt."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: CelebA split file (list_eval_partition.txt) not found")
    return _read_partition_cached(_cache_key(path))


def _key(table: dict, name: str):
    for k in (name, name.encode()):
        if k in table:
            return table[k]
    return None


def read_t7_index(path: str | Path, split: str) -> tuple[list[str], np.ndarray]:
    """(relative paths, N x 40 attributes as stored) of one split of the original gen/celeba.t7."""
    import torchfile
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: acVAE index file (gen/celeba.t7) not found")
    try:
        info = torchfile.load(str(path))
    except Exception as err:  # torchfile raises plain exceptions on bad files
        raise DataError(f"{path}: not a readable Torch7 file ({err})") from None
    name = "val" if split == "valid" else split
    part = _key(info, name) if isinstance(info, dict) else None
    if part is None:
        raise DataError(f"{path}: has no {name!r} split (expected keys train, val, test)")
    chars, classes = _key(part, "imagePath"), _key(part, "imageClass")
    if chars is None or classes is None:
        raise DataError(f"{path}: split {name!r} lacks imagePath or imageClass")
    chars, classes = np.asarray(chars), np.asarray(classes, dtype=np.float32)
    if chars.ndim != 2 or classes.ndim != 2 or classes.shape != (len(chars), len(ATTRIBUTES)):
        raise DataError(f"{path}: split {name!r} has imagePath {chars.shape} and imageClass "
                        f"{classes.shape}; expected N x L and N x 40")
    rows = chars.astype(np.uint8).tobytes()
    width = chars.shape[1]
    paths = [rows[i * width:(i + 1) * width].split(b"\0", 1)[0].decode() for i in range(len(chars))]
    return paths, classes


def code_attributes(values: np.ndarray, coding: str, source: str = "") -> np.ndarray:
    """Attributes stored as -1/+1 or 0/1 -> float32 in the requested coding ('pm1' or '01')."""
    values = np.asarray(values, dtype=np.float32)
    present = values > 0
    if not np.isin(values, (-1.0, 0.0, 1.0)).all():
        raise DataError(f"{source}: attribute values must be -1/+1 or 0/1")
    if coding == "pm1":
        return np.where(present, 1.0, -1.0).astype(np.float32)
    if coding == "01":
        return present.astype(np.float32)
    raise DataError(f"DATA.OPTIONS.ATTR_CODING must be 'pm1' or '01', got {coding!r}")


# ---- where the files are ----------------------------------------------------------------------
def _find(root: Path, given: str, names: tuple[str, ...], what: str) -> Path:
    if given:
        path = Path(given).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.exists():
            raise DataError(f"{path}: {what} not found")
        return path
    for folder in (root, root / "celeba", root / "Anno", root / "Eval", root / "Img"):
        for name in names:
            if (folder / name).exists():
                return folder / name
    raise DataError(f"{root}: {what} not found (looked for {' or '.join(names)} in {root}, "
                    f"{root}/celeba, {root}/Anno, {root}/Eval and {root}/Img)")


def find_files(root: str | Path, options: dict, images: bool = True) -> dict[str, Path]:
    """Paths of the attribute list, the split file and (if `images`) the image folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: CelebA folder (DATA.ROOT) not found")
    found = {
        "attr": _find(root, options.get("ATTR_FILE", ""),
                      ("list_attr_celeba.txt", "list_attr_celeba.zip"), "attribute list"),
        "partition": _find(root, options.get("PARTITION_FILE", ""), ("list_eval_partition.txt",),
                           "split file list_eval_partition.txt"),
    }
    if images:
        found["images"] = _find(root, options.get("IMAGES", ""), ("img_align_celeba",),
                                "image folder img_align_celeba")
    return found


def split_attributes(root: str | Path, split: str, options: dict) -> tuple[list[str], np.ndarray]:
    """(image names, attributes in OPTIONS' coding) of one split, without touching images."""
    opts = {**OPTIONS, **options}
    if split not in SPLITS:
        raise DataError(f"DATA.SPLIT is {split!r}; CelebA has the splits train, val and test")
    if opts["T7_INDEX"]:
        index = Path(opts["T7_INDEX"]).expanduser()
        names, values = read_t7_index(index if index.is_absolute() else Path(root) / index, split)
        return names, code_attributes(values, opts["ATTR_CODING"], str(index))
    files = find_files(root, opts, images=False)
    names, values = _split_table(_cache_key(files["attr"]), _cache_key(files["partition"]),
                                 SPLITS[split])
    return list(names), code_attributes(values, opts["ATTR_CODING"])


@functools.lru_cache(maxsize=8)
def _split_table(attr_key: tuple, partition_key: tuple, wanted: int) -> tuple[tuple, np.ndarray]:
    _, names, values = _read_attr_cached(attr_key)
    partition = _read_partition_cached(partition_key)
    missing = [n for n in names[:1000] if n not in partition]
    if missing:
        raise DataError(f"{partition_key[0]}: has no entry for {missing[0]} of {attr_key[0]} "
                        "(do the two files belong together?)")
    keep = np.fromiter((partition.get(n, -1) == wanted for n in names), dtype=bool,
                       count=len(names))
    return tuple(n for n, k in zip(names, keep) if k), values[keep]


# ---- Torch7 image.scale -----------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def torch_scale_matrix(src_len: int, dst_len: int) -> torch.Tensor:
    """The (dst_len, src_len) linear map of Torch7's image.scale(..., 'bilinear') on one axis.

    Shrinking averages the source pixels under each destination pixel's footprint, counting the
    partly covered end pixels by their covered fraction (a fractional box filter); growing is
    linear interpolation with the end pixels aligned (align_corners=True). Positions are computed
    in float32 as in the C code.
    """
    w = np.zeros((dst_len, src_len), dtype=np.float64)
    if dst_len > src_len:
        if src_len == 1:
            w[:, 0] = 1.0
            return torch.from_numpy(w.astype(np.float32))
        scale = np.float32(src_len - 1) / np.float32(dst_len - 1)
        for di in range(dst_len - 1):
            pos = np.float32(di) * scale
            si = int(pos)
            frac = float(pos - np.float32(si))
            w[di, si] += 1 - frac
            if frac > 0:
                w[di, si + 1] += frac
        w[dst_len - 1, src_len - 1] = 1.0
    elif dst_len < src_len:
        scale = np.float32(src_len) / np.float32(dst_len)
        s0, f0 = 0, 0.0
        for di in range(dst_len):
            pos = np.float32(di + 1) * scale
            s1 = int(pos)
            f1 = float(pos - np.float32(s1))
            w[di, s0] += 1 - f0
            w[di, s0 + 1:s1] += 1.0
            if s1 < src_len:
                w[di, s1] += f1
            w[di] /= w[di].sum()
            s0, f0 = s1, f1
    else:
        np.fill_diagonal(w, 1.0)
    return torch.from_numpy(w.astype(np.float32))


def torch_scale(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Torch7 image.scale(img, width, height, 'bilinear') of a (C, H, W) float image."""
    rows = torch_scale_matrix(image.shape[-2], height)
    cols = torch_scale_matrix(image.shape[-1], width)
    return rows @ image @ cols.T


# ---- the dataset ------------------------------------------------------------------------------
def crop_box(size: tuple[int, int], crop: str, box: list) -> tuple[int, int, int, int] | None:
    """Pixel box (left, top, right, bottom) to cut from an image of `size` (w, h), or None."""
    w, h = size
    if crop == "squash":
        return None
    if crop == "center":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        return left, top, left + side, top + side
    sx, sy = w / ALIGNED_SIZE[0], h / ALIGNED_SIZE[1]
    if abs(sx - sy) > 0.02 * max(sx, sy):
        raise ValueError(f"image is {w}x{h}, not of the 178:218 shape of img_align_celeba that "
                         "CROP_BOX is given in; use CROP: center or squash")
    left, top, right, bottom = (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx),
                                round(box[3] * sy))
    return left, top, right, bottom


class CelebA(Dataset):
    """Items: "image" (3, S, S) in [-1, 1], "attributes" (40,) float, "label" -1."""

    def __init__(self, folder: Path, names: list[str], attributes: np.ndarray, size: int,
                 flip: bool, crop: str = "squash", box: list | None = None):
        self.folder, self.names = folder, names
        self.attributes = torch.from_numpy(np.ascontiguousarray(attributes))
        self.size, self.flip, self.crop, self.box = size, flip, crop, list(box or [])

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict:
        path = self.folder / self.names[index]
        img = load_image(path, 3)
        try:
            box = crop_box(img.size, self.crop, self.box)
        except ValueError as err:
            raise DataError(f"{path}: {err}") from None
        if box is not None:
            img = img.crop(box)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        x = torch_scale(x * 2.0 - 1.0, self.size, self.size)
        return {"image": maybe_flip(x, self.flip), "attributes": self.attributes[index],
                "label": torch.tensor(-1)}


def check_celeba_options(opts: dict) -> None:
    one_of(opts, "CROP", CROPS)
    one_of(opts, "MISSING", ("error", "skip"))
    one_of(opts, "ATTR_CODING", ("pm1", "01"))
    box = opts["CROP_BOX"]
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
        raise option_error("CROP_BOX", "[left, top, right, bottom] with left < right and "
                           "top < bottom", box)


@register("celeba", OPTIONS, check=check_celeba_options)
def build_celeba(spec: DataSpec) -> Dataset:
    """CelebA split DATA.SPLIT (train | val | test) with its 40 attributes; see the module doc."""
    opts = spec.options
    root = Path(spec.root).expanduser()
    names, attributes = split_attributes(root, spec.split, opts)
    if opts["T7_INDEX"]:
        folder = root
        present = [(root / n).is_file() for n in names]
    else:
        folder = find_files(root, opts)["images"]
        if not folder.is_dir():
            raise DataError(f"{folder}: image folder (DATA.OPTIONS.IMAGES) is not a folder")
        files = set(os.listdir(folder))
        present = [n in files for n in names]
    have = int(sum(present))
    if opts["MISSING"] == "error" and have < len(names):
        first = next(n for n, ok in zip(names, present) if not ok)
        raise DataError(f"{folder}: {len(names) - have} of the {len(names)} images of the "
                        f"{spec.split} split are missing (first {first}); set "
                        "DATA.OPTIONS.MISSING: skip to use only the images present")
    if have == 0:
        raise DataError(f"{folder}: none of the {len(names)} images of the {spec.split} split "
                        "is there (is DATA.OPTIONS.IMAGES the right folder?)")
    if have < len(names):
        names = [n for n, ok in zip(names, present) if ok]
        attributes = attributes[np.asarray(present, dtype=bool)]
    flip = bool(opts["FLIP"]) and spec.split == "train"
    return CelebA(folder, names, attributes, spec.image_size, flip, opts["CROP"], opts["CROP_BOX"])
