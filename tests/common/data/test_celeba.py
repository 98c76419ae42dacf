"""The CelebA data kind on the real files in shared/data/celeba, the Torch7 resize, the t7 index."""
import struct

import numpy as np
import pytest
import torch

from common import data
from common.data import celeba
from common.errors import DataError


def spec(root, split="train", size=64, **options):
    return data.defaults("celeba", size, root=str(root), split=split, options=options)


def test_attribute_list_read_from_inside_its_zip(shared_data):
    names, files, values = celeba.read_attributes(shared_data / "celeba" / "list_attr_celeba.zip")
    assert names == celeba.ATTRIBUTES
    assert len(files) == len(values) == 202599 and values.shape == (202599, 40)
    assert files[0] == "000001.jpg" and files[-1] == "202599.jpg"
    first = "-1 1 1 -1 -1 -1 -1 -1 -1 -1 -1 1 -1 -1 -1 -1 -1 -1 1 1 -1 1 -1 -1 1 -1 -1 1 -1 -1 -1 1 1 -1 1 -1 1 -1 -1 1"
    assert values[0].tolist() == [int(v) for v in first.split()]
    assert set(np.unique(values)) == {-1, 1}


def test_split_file_and_split_attributes(shared_data):
    part = celeba.read_partition(shared_data / "celeba" / "list_eval_partition.txt")
    counts = np.bincount(list(part.values()))
    assert counts.tolist() == [162770, 19867, 19962]
    names, attrs = celeba.split_attributes(shared_data / "celeba", "test", {})
    assert len(names) == 19962 and names[0] == "182638.jpg" and attrs.shape == (19962, 40)
    _, attrs01 = celeba.split_attributes(shared_data / "celeba", "test", {"ATTR_CODING": "01"})
    assert np.array_equal(attrs01, (attrs > 0).astype(np.float32))


def test_images_of_a_partial_folder(shared_data):
    root = shared_data / "celeba"
    ds = data.build(spec(root, IMAGES="img_align_celeba_89x109", MISSING="skip"))
    assert len(ds) == 10000                  # the first 10,000 images, all in the train split
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and -1 <= item["image"].min() < item["image"].max() <= 1
    _, _, values = celeba.read_attributes(root / "list_attr_celeba.zip")
    assert item["attributes"].tolist() == values[0].astype(float).tolist()
    with pytest.raises(DataError, match="of the 162770 images of the train split are missing"):
        data.build(spec(root, IMAGES="img_align_celeba_89x109"))
    with pytest.raises(DataError, match="none of the 19867 images of the val split"):
        data.build(spec(root, "val", IMAGES="img_align_celeba_89x109", MISSING="skip"))


def test_original_aligned_images_crops_and_flip(shared_data):
    root = shared_data / "celeba"
    squash = data.build(spec(root, MISSING="skip", FLIP=False))
    center = data.build(spec(root, MISSING="skip", FLIP=False, CROP="center"))
    box = data.build(spec(root, MISSING="skip", FLIP=False, CROP="box", CROP_BOX=[0, 20, 178, 198]))
    assert len(squash) == 32
    assert torch.allclose(center[3]["image"], box[3]["image"])   # 178x178 centre = that box
    assert not torch.allclose(squash[3]["image"], center[3]["image"])
    # the 89x109 copy cut with the same box (scaled) gives nearly the same face
    half = data.build(spec(root, IMAGES="img_align_celeba_89x109", MISSING="skip", FLIP=False,
                           CROP="box"))
    assert (half[3]["image"] - box[3]["image"]).abs().mean() < 0.1
    flips = data.build(spec(root, MISSING="skip"))
    with data.seeded_rngs(0):
        views = [flips[5]["image"] for _ in range(12)]
    assert any(torch.equal(v, squash[5]["image"].flip(-1)) for v in views)
    assert any(torch.equal(v, squash[5]["image"]) for v in views)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DataError, match="CelebA folder"):
        data.build(spec(tmp_path / "nope"))
    with pytest.raises(DataError, match="attribute list not found"):
        data.build(spec(tmp_path))
    (tmp_path / "list_attr_celeba.txt").write_text("2\nA B\n000001.jpg 1 -1\n")
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    with pytest.raises(DataError, match="header names 2 attributes, expected 40"):
        data.build(spec(tmp_path))


def test_torch_scale_box_filter_by_hand():
    # 3 -> 2: [x0 + x1/2, x1/2 + x2] / 1.5 (fractional box); 4 -> 2: pairwise means
    w = celeba.torch_scale_matrix(3, 2)
    assert torch.allclose(w, torch.tensor([[1 / 1.5, 0.5 / 1.5, 0], [0, 0.5 / 1.5, 1 / 1.5]]))
    assert torch.allclose(celeba.torch_scale_matrix(4, 2),
                          torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]))
    # 2 -> 3 grows linearly with the corners aligned
    assert torch.allclose(celeba.torch_scale_matrix(2, 3),
                          torch.tensor([[1.0, 0], [0.5, 0.5], [0, 1.0]]))
    img = torch.arange(16.0).view(1, 4, 4)
    assert torch.allclose(celeba.torch_scale(img, 2, 2),
                          torch.nn.functional.avg_pool2d(img[None], 2)[0])
    w = celeba.torch_scale_matrix(218, 64)
    assert torch.allclose(w.sum(1), torch.ones(64)) and (w >= 0).all()


# ---- a minimal Torch7 serializer to write a gen/celeba.t7-style index ---------------------------
class _T7Writer:
    def __init__(self):
        self.out, self.index = bytearray(), 0

    def int(self, v):
        self.out += struct.pack("<i", v)

    def long(self, v):
        self.out += struct.pack("<q", v)

    def string(self, s: bytes):
        self.int(len(s))
        self.out += s

    def obj(self, v):
        self.index += 1
        if isinstance(v, str):
            self.int(2)
            self.index -= 1
            self.string(v.encode())
        elif isinstance(v, dict):
            self.int(3)
            self.int(self.index)
            self.int(len(v))
            for k, val in v.items():
                self.obj(k)
                self.obj(val)
        else:
            kind = {np.int8: "Char", np.float32: "Float"}[v.dtype.type]
            self.int(4)
            self.int(self.index)
            self.string(b"V 1")
            self.string(f"torch.{kind}Tensor".encode())
            self.int(v.ndim)
            for d in v.shape:
                self.long(d)
            for s in np.cumprod((v.shape[1:] + (1,))[::-1])[::-1]:
                self.long(int(s))
            self.long(1)
            self.index += 1
            self.int(4)
            self.int(self.index)
            self.string(b"V 1")
            self.string(f"torch.{kind}Storage".encode())
            self.long(v.size)
            self.out += np.ascontiguousarray(v).tobytes()


def _char_rows(paths, width=32):
    rows = np.zeros((len(paths), width), dtype=np.int8)
    for i, p in enumerate(paths):
        rows[i, :len(p)] = np.frombuffer(p.encode(), dtype=np.int8)
    return rows


def test_t7_index(shared_data, tmp_path):
    train = ["img_align_celeba/000001.jpg", "img_align_celeba/000002.jpg"]
    classes = np.array([[1, 0] * 20, [0, 1] * 20], dtype=np.float32)
    index = {s: {"imagePath": _char_rows(train if s == "train" else train[:1]),
                 "imageClass": classes if s == "train" else classes[:1]}
             for s in ("train", "val", "test")}
    w = _T7Writer()
    w.obj(index)
    (tmp_path / "celeba.t7").write_bytes(bytes(w.out))
    paths, attrs = celeba.read_t7_index(tmp_path / "celeba.t7", "train")
    assert paths == train and attrs.shape == (2, 40)
    ds = data.build(spec(shared_data / "celeba", T7_INDEX=str(tmp_path / "celeba.t7")))
    assert len(ds) == 2 and ds[1]["attributes"][:2].tolist() == [-1.0, 1.0]   # 0/1 -> pm1
    assert ds[0]["image"].shape == (3, 64, 64)
    with pytest.raises(DataError, match="has no 'valid' split|has no 'val' split|not found"):
        celeba.read_t7_index(tmp_path / "missing.t7", "val")
