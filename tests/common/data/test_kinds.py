import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from common import data
from common.errors import ConfigError, DataError


def build(kind, root="", size=16, channels=3, split="train", **options):
    return data.build(data.defaults(kind, size, channels, str(root), split, options))


def save(path, size=(20, 12), mode="RGB", colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)
    return path


# ---- layered scenes ---------------------------------------------------------------------------
def test_layered_scenes_deterministic_any_size():
    a = build("layered_scenes", size=24, LENGTH=10, SEED=3, OBJECTS=[1, 2])
    b = build("layered_scenes", size=24, LENGTH=10, SEED=3, OBJECTS=[1, 2])
    c = build("layered_scenes", size=24, LENGTH=10, SEED=4, OBJECTS=[1, 2])
    assert len(a) == 10 and a[0]["image"].shape == (3, 24, 24)
    assert torch.equal(a[7]["image"], b[7]["image"])
    assert not torch.equal(a[7]["image"], c[7]["image"])
    assert not torch.equal(a[1]["image"], a[2]["image"])
    assert a[0]["image"].min() >= -1 and a[0]["image"].max() <= 1
    assert a[0]["label"].item() in (1, 2)
    assert build("layered_scenes", size=70, channels=1, LENGTH=2)[1]["image"].shape == (1, 70, 70)


def test_layered_scenes_cache_keeps_the_same_pictures():
    plain = build("layered_scenes", size=16, LENGTH=6, SEED=2)
    cached = build("layered_scenes", size=16, LENGTH=6, SEED=2, CACHE_MB=1.0)
    too_small = build("layered_scenes", size=16, LENGTH=6, SEED=2, CACHE_MB=0.001)
    assert cached.cache == {} and too_small.cache is None and plain.cache is None
    for i in (0, 5, 0):
        first = cached[i]
        first["image"].zero_()                    # a caller's in-place change stays its own
        assert torch.equal(cached[i]["image"], plain[i]["image"])
        assert int(cached[i]["label"]) == int(plain[i]["label"])
    assert sorted(cached.cache) == [0, 5]


def test_layered_scenes_objects_are_pasted():
    flat = build("layered_scenes", size=32, LENGTH=4, OBJECTS=[0, 0], BACKGROUND="flat")
    img = flat[0]["image"]
    assert torch.allclose(img, img[:, :1, :1].expand_as(img))  # no object: one flat colour
    one = build("layered_scenes", size=32, LENGTH=4, OBJECTS=[1, 1], BACKGROUND="flat")
    colours = one[0]["image"].reshape(3, -1).T.unique(dim=0)
    assert len(colours) > 2  # background, object (shaded) and anti-aliased edge


@pytest.mark.parametrize("options, match", [({"SHAPES": ["hexagon"]}, "SHAPES"),
                                            ({"OBJECTS": [2, 1]}, "OBJECTS"),
                                            ({"BACKGROUND": "sky"}, "BACKGROUND")])
def test_layered_scenes_bad_options(options, match):
    with pytest.raises(ConfigError, match=match):
        build("layered_scenes", **options)


# Option values are checked when a config is loaded, before any file is read: the roots below
# do not exist, so a check that needed the files would fail differently.
@pytest.mark.parametrize("kind, options, key", [
    ("layered_scenes", {"SCALE": [0.0, 0.5]}, "SCALE"),
    ("layered_scenes", {"LENGTH": 0}, "LENGTH"),
    ("layered_scenes", {"SHAPES": []}, "SHAPES"),
    ("layered_scenes", {"CACHE_MB": -1.0}, "CACHE_MB"),
    ("mnist", {"RESIZE": "stretch"}, "RESIZE"),
    ("mnist_one", {"SCALE": [0.9, 0.5]}, "SCALE"),
    ("mnist_two", {"DIGITS": 0}, "DIGITS"),
    ("image_folder", {"CROP": "middle"}, "CROP"),
    ("list_file", {"CROP": "middle"}, "CROP"),
    ("cub_crops", {"CROP_SCALE": 0.0}, "CROP_SCALE"),
    ("celeba", {"CROP": "zoom"}, "CROP"),
    ("celeba", {"ATTR_CODING": "bits"}, "ATTR_CODING"),
    ("celeba", {"CROP_BOX": [10, 10, 5, 20]}, "CROP_BOX"),
    ("stackgan_text", {"RESIZE": "longer"}, "RESIZE"),
    ("stackgan_text", {"WRONG": "random"}, "WRONG"),
    ("stackgan_text", {"SIZES": [128, 64]}, "SIZES"),
    ("stackgan_text", {"EMBEDDING_TYPE": "bert"}, "EMBEDDING_TYPE"),
])
def test_option_values_checked_at_config_load(tmp_path, kind, options, key):
    section = data.defaults(kind, 32, 3, str(tmp_path / "absent"), "train", options)
    with pytest.raises(ConfigError, match=f"DATA.OPTIONS.{key} must be") as caught:
        data.check(section)
    assert caught.value.key == f"DATA.OPTIONS.{key}" and kind in str(caught.value)
    data.check(data.defaults(kind, 32, 3, str(tmp_path / "absent"), "train"))  # defaults pass


def test_unknown_kind_option_and_missing_root():
    with pytest.raises(ConfigError, match="DATA.KIND is 'nope'"):
        build("nope")
    with pytest.raises(ConfigError, match="unknown key DATA.OPTIONS.LENGHT"):
        build("layered_scenes", LENGHT=3)
    with pytest.raises(ConfigError, match="DATA.OPTIONS.LENGTH must be int"):
        build("layered_scenes", LENGTH="many")
    with pytest.raises(ConfigError, match="DATA.ROOT must name"):
        build("image_folder")


# ---- image folders and list files ------------------------------------------------------------
def test_image_folder_with_classes_and_center_crop(tmp_path):
    save(tmp_path / "cats" / "a.png", (20, 12), colour=(255, 0, 0))
    save(tmp_path / "dogs" / "b.jpg", (12, 30), colour=(0, 0, 255))
    save(tmp_path / "dogs" / "sub" / "c.png")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    ds = build("image_folder", tmp_path, size=8)
    assert len(ds) == 3 and [int(ds[i]["label"]) for i in range(3)] == [0, 1, 1]
    x = ds[0]["image"]
    assert x.shape == (3, 8, 8) and torch.allclose(x[0], torch.ones(8, 8))
    assert torch.allclose(x[1:], -torch.ones(2, 8, 8))
    grey = build("image_folder", tmp_path, size=8, channels=1, CROP="resize")
    assert grey[1]["image"].shape == (1, 8, 8)


def test_flat_image_folder_has_no_labels(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png")
    ds = build("image_folder", tmp_path, size=4)
    assert len(ds) == 3 and int(ds[0]["label"]) == -1


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="image folder not found"):
        build("image_folder", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files found"):
        build("image_folder", tmp_path / "empty")


def test_corrupt_truncated_and_wrong_mode_images_name_the_file(tmp_path):
    bad = tmp_path / "bad"
    save(bad / "good.png")
    (bad / "garbage.png").write_bytes(b"this is not a png at all")
    full = save(tmp_path / "full.jpg", (64, 64))
    (bad / "truncated.jpg").write_bytes(full.read_bytes()[:300])
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(bad / "deep.png")
    Image.fromarray(np.full((8, 8), 156, dtype=np.uint8)).save(bad / "eight.png")
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(bad / "float.tif")
    ds = build("image_folder", bad, size=8)
    names = [p.name for p in ds.paths]
    with pytest.raises(DataError, match=r"garbage\.png: not a readable image"):
        ds[names.index("garbage.png")]
    with pytest.raises(DataError, match=r"truncated\.jpg: corrupt or truncated image"):
        ds[names.index("truncated.jpg")]
    with pytest.raises(DataError, match=r"float\.tif: image mode 'F' is not an 8-bit or 16-bit"):
        ds[names.index("float.tif")]
    # a 16-bit grey PNG is its high byte (40000 >> 8 = 156), not clipped to white
    assert torch.equal(ds[names.index("deep.png")]["image"], ds[names.index("eight.png")]["image"])
    assert ds[names.index("good.png")]["image"].shape == (3, 8, 8)


def test_list_file(tmp_path):
    save(tmp_path / "imgs" / "a.png")
    save(tmp_path / "imgs" / "b.png")
    lst = tmp_path / "list.txt"
    lst.write_text("# two images\nimgs/a.png\n\n  imgs/b.png  \n")
    assert len(build("list_file", lst, size=4)) == 2
    other = tmp_path / "elsewhere" / "list.txt"
    other.parent.mkdir()
    other.write_text("a.png\n")
    assert len(build("list_file", other, size=4, BASE_DIR=str(tmp_path / "imgs"))) == 1


def test_list_file_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(DataError, match=r"empty\.txt: list file has no image paths"):
        build("list_file", empty)
    with pytest.raises(DataError, match="list file not found"):
        build("list_file", tmp_path / "nope.txt")
    missing = tmp_path / "missing.txt"
    missing.write_text("gone.png\n")
    with pytest.raises(DataError, match=r"1 of 1 listed images do not exist, first .*gone\.png"):
        build("list_file", missing)


# ---- MNIST and CIFAR-10 -----------------------------------------------------------------------
def test_mnist_from_real_idx_files(shared_data):
    train = build("mnist", shared_data / "mnist", size=28, channels=1)
    test = build("mnist", shared_data / "mnist", size=32, channels=1, split="test")
    assert len(train) == 60000 and len(test) == 10000
    assert [int(train[i]["label"]) for i in range(5)] == [5, 0, 4, 1, 9]  # MNIST's first labels
    x = test[0]["image"]
    assert x.shape == (1, 32, 32) and x.min() == -1 and x.max() == 1
    assert torch.all(x[:, :2] == -1)  # padded frame
    assert build("mnist", shared_data / "mnist", size=16, channels=3, split="test",
                 RESIZE="scale")[0]["image"].shape == (3, 16, 16)


def test_mnist_bad_files(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        build("mnist", tmp_path, size=28)
    header = bytes([0, 0, 8, 3]) + np.array([10, 28, 28], ">i4").tobytes()
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + bytes(100))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) +
                                                       np.array([10], ">i4").tobytes() + bytes(10))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: idx header says"):
        build("mnist", tmp_path, size=28)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(DataError, match="not an idx file"):
        build("mnist", tmp_path, size=28)


def test_cifar10_class_folders(shared_data):
    ds = build("cifar10", shared_data / "cifar10" / "test_jpg", size=32, split="test")
    assert len(ds) == 10000
    labels = torch.tensor([int(l) for l in ds.labels])
    assert torch.equal(torch.bincount(labels), torch.full((10,), 1000))
    assert ds[0]["image"].shape == (3, 32, 32)
    assert int(ds[9999]["label"]) == 9  # truck


def test_cifar10_python_batches(tmp_path):
    import pickle
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (5, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3, 4]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    ds = build("cifar10", tmp_path, size=32, split="test")
    assert len(ds) == 5 and int(ds[3]["label"]) == 3
    expected = torch.from_numpy(batch["data"][3].reshape(3, 32, 32)).float() / 127.5 - 1
    assert torch.allclose(ds[3]["image"], expected)
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match="data_batch_2: CIFAR-10 batch file not found"):
        build("cifar10", tmp_path, size=32, split="train")
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match="test_batch: not a CIFAR-10 python batch"):
        build("cifar10", tmp_path, size=32, split="test")


@pytest.mark.parametrize("kind, root, channels, named", [
    ("mnist", "mnist", 1, "MNIST has the splits train and test"),
    ("cifar10", "cifar10/test_jpg", 3, "CIFAR-10 has the splits train and test"),
    ("celeba", "celeba", 3, "CelebA has the splits train, val and test"),
    ("cub_crops", "cub/CUB_200_2011", 3, "CUB has the splits all, train, test"),
])
def test_an_unknown_split_names_the_key_and_the_splits(shared_data, kind, root, channels, named):
    with pytest.raises(DataError, match=f"DATA.SPLIT is 'dev'; {named}"):
        build(kind, shared_data / root, size=32, channels=channels, split="dev")
