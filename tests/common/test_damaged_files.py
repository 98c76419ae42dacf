"""A damaged input file (truncated, or not of its declared format) is one error naming the file,
whichever reader meets it (issue: hardening, class 1)."""
import gzip
import zipfile

import numpy as np
import pytest

from common.data import celeba, mnist, t7captions
from common.errors import DataError
from common.metrics import image_sets
from common.metrics.weights import MetricsError
from rpgan import projection


def idx_gz(path):
    images = np.zeros((3, 4, 4), np.uint8)
    raw = bytes([0, 0, 8, 3]) + np.array([3, 4, 4], ">i4").tobytes() + images.tobytes()
    path.write_bytes(gzip.compress(raw))
    return path


def attr_zip(path):
    lines = ["1", " ".join(celeba.ATTRIBUTES), "000001.jpg " + " ".join(["1"] * 40)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("list_attr_celeba.txt", "\n".join(lines) + "\n")
    return path


def filters_npz(path):
    np.savez(path, nfilt=1, p0=np.zeros((4, 4, 3, 2), np.float32), s0=2)
    return path


def images_npz(path):
    np.savez(path, images=np.zeros((4, 3, 8, 8), np.uint8))
    return path


def captions_npz(path):
    np.savez(path, raw_txt=np.array(["a small bird"] * 2), fea_txt=np.zeros((2, 8), np.float32))
    return path


def truncate(path, keep=0.6):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


CASES = {
    "mnist_gz": (idx_gz, "train-images-idx3-ubyte.gz", mnist.read_idx, DataError),
    "celeba_zip": (attr_zip, "list_attr_celeba.zip", celeba.read_attributes, DataError),
    "filters_npz": (filters_npz, "filts.npz", projection.load_filters_npz, DataError),
    "image_set_npz": (images_npz, "samples.npz", image_sets.load, MetricsError),
    "caption_npz": (captions_npz, "captions.npz", t7captions.read_caption_file, DataError),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_file_is_one_error_naming_it(tmp_path, case, damage):
    make, name, read, error = CASES[case]
    path = make(tmp_path / name)
    read(path)  # the intact file reads
    if damage == "truncated":
        truncate(path)
    else:
        path.write_bytes(b"\x1f\x8b not what the name says" if case == "mnist_gz" else
                         b"PK\x03\x04 not what the name says")
    with pytest.raises(error) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"just some text", "not a NumPy file (neither an .npz zip archive nor an .npy array)")])
@pytest.mark.parametrize("case", ["filters_npz", "image_set_npz", "caption_npz"])
def test_an_npz_that_is_no_numpy_file_says_so(tmp_path, case, content, reason):
    """np.load tries to unpickle such a file and then speaks of pickles: the message says what
    the file is instead."""
    _, name, read, error = CASES[case]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(error) as caught:
        read(tmp_path / name)
    assert reason in str(caught.value) and "pickle" not in str(caught.value)


def test_a_decompression_bomb_is_one_error_naming_it(tmp_path, monkeypatch):
    from PIL import Image

    from common.data.imageio import load_image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 64 pixels > twice the limit
    with pytest.raises(DataError, match=r"bomb\.png: refused as a possible decompression bomb"):
        load_image(tmp_path / "bomb.png")
    with pytest.raises(MetricsError, match=r"bomb\.png: not a readable image"):
        image_sets.load(tmp_path)


# ---- text files saved as "UTF-8 with BOM" read as the same text; other encodings are refused --
BOM = b"\xef\xbb\xbf"


def test_list_files_with_a_byte_order_mark_read_as_without(tmp_path):
    from common.data import text_files
    from common.data.folders import read_list_file
    from PIL import Image
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_bytes(BOM + b"a.png\n")
    assert read_list_file(tmp_path / "list.txt") == [tmp_path / "a.png"]

    (tmp_path / "list_eval_partition.txt").write_bytes(BOM + b"000001.jpg 0\n000002.jpg 2\n")
    assert celeba.read_partition(tmp_path / "list_eval_partition.txt") == {"000001.jpg": 0,
                                                                           "000002.jpg": 2}
    attrs = "1\n" + " ".join(celeba.ATTRIBUTES) + "\n000001.jpg " + " ".join(["-1"] * 40) + "\n"
    (tmp_path / "list_attr_celeba.txt").write_bytes(BOM + attrs.encode())
    names, files, values = celeba.read_attributes(tmp_path / "list_attr_celeba.txt")
    assert files == ["000001.jpg"] and (values == -1).all()

    (tmp_path / "captions.txt").write_bytes(BOM + b"a small bird\n")
    assert text_files.load_captions(tmp_path / "captions.txt") == ["a small bird"]


def test_a_list_file_in_another_encoding_is_one_error_naming_it(tmp_path):
    from common.data.folders import read_list_file
    (tmp_path / "list.txt").write_bytes("caf\u00e9.png\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"list\.txt: list file is not UTF-8 text \(byte 3 is 0xe9\)"):
        read_list_file(tmp_path / "list.txt")
