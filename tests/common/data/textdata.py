"""Helpers for the text-data tests: pickles in the original formats, tiny StackGAN folders."""
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def py2_numpy_pickle(array: np.ndarray) -> bytes:
    """The bytes Python 2 + numpy 1.x wrote for `pickle.dump(float32_array, f, 2)`: module
    `numpy.core.multiarray` and the raw data as a Python 2 `str` (BINSTRING), which Python 3
    can only read with encoding='latin1'."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    out = bytearray(b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
                    b"K\x00\x85U\x01b\x87R(K\x01(")
    out += b"".join(b"J" + struct.pack("<i", d) for d in array.shape) + b"t"
    out += (b"cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xff"
            b"J\xff\xff\xff\xffK\x00tb\x89")
    raw = array.tobytes()
    out += b"T" + struct.pack("<i", len(raw)) + raw + b"tb."
    return bytes(out)


def write_split(folder: Path, keys: list[str], embeddings: np.ndarray,
                class_ids: list[int] | None = None, embedding_file="char-CNN-RNN-embeddings.pickle",
                py2: bool = True) -> Path:
    """A split folder in the original formats (protocol-0 lists, Python-2 numpy pickle)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "filenames.pickle").write_bytes(pickle.dumps(list(keys), protocol=0))
    if class_ids is not None:
        (folder / "class_info.pickle").write_bytes(pickle.dumps(list(class_ids), protocol=0))
    data = py2_numpy_pickle(embeddings) if py2 else pickle.dumps(embeddings, protocol=2)
    (folder / embedding_file).write_bytes(data)
    return folder


def write_jpeg(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A smooth colour picture (JPEG), so that crops and resizes are easy to tell apart."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 255, size=3)
    rgb = np.stack([(base[0] + x * 200 / width) % 256, (base[1] + y * 200 / height) % 256,
                    np.full_like(x, base[2], dtype=float)], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)
    return path


def present_cub_keys(cub: Path, split: str = "train") -> list[str]:
    """Keys of a CUB split whose pictures exist in the shared subset (classes 001-010)."""
    from common.data.text_files import load_filenames
    names = load_filenames(cub / "birds" / split)
    return [k for k in names if (cub / "CUB_200_2011" / "images" / f"{k}.jpg").is_file()]


def tiny_birds(root: Path, cub: Path, per_split: int = 8, captions: int = 3, dim: int = 16,
               seed: int = 0) -> Path:
    """<root>/birds with train and test splits over real CUB pictures, random embeddings."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        keys = present_cub_keys(cub, split)[::7][:per_split]
        emb = rng.standard_normal((len(keys), captions, dim)).astype(np.float32)
        write_split(root / "birds" / split, keys, emb, [int(k[:3]) for k in keys])
    return root / "birds"
