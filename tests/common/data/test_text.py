"""StackGAN text-image data: the real CUB/COCO files and small pickles in the original formats."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from common import data
from common.data import EpochLoader, seeded_rngs
from common.data.text import build_text_dataset
from common.data.text_files import (crop_box, load_bboxes, load_captions, load_class_ids,
                                    load_embeddings, load_filenames, read_pickle)
from common.data.transforms import to_tensor
from common.errors import DataError
from tests.common.data.textdata import (present_cub_keys, py2_numpy_pickle, write_jpeg,
                                        write_split)


@pytest.fixture(scope="module")
def cub(shared_data):
    return shared_data / "cub"


@pytest.fixture(scope="module")
def present_keys(cub):
    """Train keys of the shared CUB subset whose pictures exist (classes 002, 003, ...)."""
    return present_cub_keys(cub)


def small_birds(tmp_path, cub, keys, captions=3, dim=8, **kwargs):
    """A `birds` data dir in the original formats over real CUB pictures."""
    emb = np.random.default_rng(0).standard_normal((len(keys), captions, dim)).astype(np.float32)
    write_split(tmp_path / "birds" / "train", keys, emb, [int(k[:3]) for k in keys])
    ds = build_text_dataset(tmp_path / "birds", "train", embedding_type="cnn-rnn",
                            cub_dir=cub / "CUB_200_2011", **kwargs)
    return ds, emb


# ---- the real files ---------------------------------------------------------------------------
def test_real_cub_bounding_boxes_and_crop(cub):
    boxes = load_bboxes(cub / "CUB_200_2011")
    assert len(boxes) == 11788
    key = "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"
    assert boxes[key] == [60, 27, 325, 304]        # row 1 of bounding_boxes.txt, cast to int
    with Image.open(cub / "CUB_200_2011" / "images" / f"{key}.jpg") as img:
        width, height = img.size
    # R = int(0.75 * 325) = 243, centre (222, 179): clipped to the picture's borders
    assert crop_box(boxes[key], width, height) == (0, 0, min(width, 465), min(height, 422))
    assert crop_box([100, 50, 40, 80], 500, 400) == (60, 30, 180, 150)


def test_real_cub_split_pickles(cub):
    splits = {}
    for split, count in (("train", 8855), ("test", 2933)):
        names = load_filenames(cub / "birds" / split)
        ids = load_class_ids(cub / "birds" / split, len(names))
        assert len(names) == count and ids.dtype == np.int64
        assert all(int(k[:3]) == c for k, c in zip(names, ids))   # class id = folder number
        splits[split] = set(ids.tolist())
    assert len(splits["train"]) == 150 and len(splits["test"]) == 50
    assert not splits["train"] & splits["test"]


def test_real_coco_filenames(shared_data):
    for split, count, prefix in (("train", 82783, "COCO_train2014_"),
                                 ("test", 40470, "COCO_val2014_")):
        names = load_filenames(shared_data / "coco" / split)
        assert len(names) == count and all(n.startswith(prefix) for n in names[:100])
        # COCO has no class_info.pickle: every image is its own class (original rule)
        assert np.array_equal(load_class_ids(shared_data / "coco" / split, count),
                              np.arange(count))


def test_real_cub_captions(cub):
    key = "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"
    captions = load_captions(cub / "birds" / "text" / f"{key}.txt")
    assert len(captions) == 10 and all(c and c == c.strip() for c in captions)


# ---- pickles in the original formats ------------------------------------------------------------
def test_python2_embedding_pickle(tmp_path):
    emb = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    write_split(tmp_path, ["a", "b", "c"], emb)
    with pytest.raises(UnicodeDecodeError):    # a plain Python 3 load fails: it is a py2 file
        pickle.loads((tmp_path / "char-CNN-RNN-embeddings.pickle").read_bytes())
    assert np.array_equal(load_embeddings(tmp_path, "cnn-rnn", 3), emb)
    assert load_filenames(tmp_path) == ["a", "b", "c"]


def test_embedding_file_variants_and_errors(tmp_path):
    (tmp_path / "skip-thought-embeddings.pickle").write_bytes(
        pickle.dumps(np.ones((2, 6), np.float64), protocol=2))
    two_d = load_embeddings(tmp_path, "skip-thought", 2)
    assert two_d.shape == (2, 1, 6) and two_d.dtype == np.float32
    with pytest.raises(DataError, match="index-aligned"):
        load_embeddings(tmp_path, "skip-thought", 3)
    with pytest.raises(DataError, match="embed_captions"):
        load_embeddings(tmp_path, "cnn-rnn", 2)
    (tmp_path / "bad.pickle").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(DataError, match="refusing to load os.system"):
        read_pickle(tmp_path / "bad.pickle", "test")
    (tmp_path / "trunc.pickle").write_bytes(py2_numpy_pickle(np.ones((2, 2)))[:40])
    with pytest.raises(DataError, match="trunc.pickle: not a readable pickle"):
        read_pickle(tmp_path / "trunc.pickle", "test")


# ---- the dataset ------------------------------------------------------------------------------
def test_bbox_crop_and_transforms_match_the_rule(tmp_path, cub, present_keys):
    keys = present_keys[:3]
    ds, emb = small_birds(tmp_path, cub, keys, sizes=[64], augment=False,
                          text_dir=cub / "birds" / "text")
    assert ds.captions(1) == load_captions(cub / "birds" / "text" / f"{keys[1]}.txt")
    assert ds.bboxes is not None                    # "birds" in DATA_DIR turns the crop on
    key = keys[1]
    img = Image.open(cub / "CUB_200_2011" / "images" / f"{key}.jpg").convert("RGB")
    img = img.crop(crop_box(ds.bboxes[key], *img.size)).resize((76, 76), Image.BILINEAR)
    expected = to_tensor(img.crop((6, 6, 70, 70)))   # centre 64 of 76
    item = ds[1]
    assert item["key"] == key and int(item["class_id"]) == int(key[:3])
    assert torch.equal(item["image"], expected) and item["images"][0] is item["image"]
    assert any(torch.equal(item["embedding"], torch.from_numpy(e)) for e in emb[1])
    assert "wrong_images" not in item and "embeddings" not in item


def test_multi_size_items_and_wrong_images(tmp_path, cub, present_keys):
    ds, emb = small_birds(tmp_path, cub, present_keys[:6], sizes=[64, 128, 256],
                          resize="shorter", wrong="resample", all_embeddings=True)
    with seeded_rngs(3):
        item = ds[2]
    assert [tuple(x.shape) for x in item["images"]] == [(3, 64, 64), (3, 128, 128), (3, 256, 256)]
    assert [x.shape for x in item["wrong_images"]] == [x.shape for x in item["images"]]
    assert all(-1 <= float(x.min()) and float(x.max()) <= 1 for x in item["images"])
    # the small sizes are downscales of the same crop: compare with a 256 -> 64 resize
    small = item["images"][2].add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()
    down = to_tensor(Image.fromarray(small).resize((64, 64), Image.BILINEAR))
    assert (down - item["images"][0]).abs().mean() < 0.02
    assert torch.equal(item["embeddings"], torch.from_numpy(emb[2]))
    with seeded_rngs(3):
        again = ds[2]
    assert torch.equal(again["images"][1], item["images"][1])     # seeded loads repeat


def test_random_caption_per_load_and_tf_mean(tmp_path, cub, present_keys):
    ds, emb = small_birds(tmp_path, cub, present_keys[:2], captions=10, sizes=[64])
    seen = set()
    for seed in range(40):
        with seeded_rngs(seed):
            e = ds.pick_embedding(0).numpy()
        seen.add(int(np.flatnonzero((emb[0] == e).all(axis=1))[0]))
    assert len(seen) >= 8                   # uniform over the 10 captions
    ds.num_embedding = 4
    with seeded_rngs(5):
        mean = ds.pick_embedding(0).numpy()
    with seeded_rngs(5):
        chosen = np.random.choice(10, 4, replace=False)
    assert len(set(chosen.tolist())) == 4
    assert np.allclose(mean, emb[0][chosen].mean(axis=0))


def test_wrong_index_rules(tmp_path, cub, present_keys):
    keys = present_keys[::7]                    # 40 images of 5 classes
    ds, _ = small_birds(tmp_path, cub, keys, sizes=[64], wrong="resample")
    classes = ds.class_ids
    for rule in ("resample", "shift"):
        ds.wrong = rule
        same = 0
        for seed in range(200):
            with seeded_rngs(seed):
                same += classes[ds.wrong_index(0)] == classes[0]
        share = (classes == classes[0]).mean()
        assert 0.05 < share < 0.5
        # collisions are redrawn once (resample: about share**2 remain) or moved (shift)
        assert same / 200 < share * 0.7


def test_missing_images_error_or_skip(tmp_path, cub):
    names = load_filenames(cub / "birds" / "train")
    emb = np.zeros((len(names), 1, 4), np.float32)
    write_split(tmp_path / "birds" / "train", names, emb, [int(k[:3]) for k in names])
    with pytest.raises(DataError, match="8580 of 8855 images.*MISSING_IMAGES: skip"):
        build_text_dataset(tmp_path / "birds", "train", cub_dir=cub / "CUB_200_2011")
    ds = build_text_dataset(tmp_path / "birds", "train", cub_dir=cub / "CUB_200_2011",
                            missing_images="skip")
    assert len(ds) == 275 and ds.skipped == 8580
    assert sorted(set(ds.class_ids.tolist())) == [2, 3, 5, 7, 10]
    assert ds.keys[0] == "002.Laysan_Albatross/Laysan_Albatross_0002_1027"


def test_coco_layout_no_crop(tmp_path, shared_data):
    keys = load_filenames(shared_data / "coco" / "train")[:4]
    for i, key in enumerate(keys):
        write_jpeg(tmp_path / "coco" / "images" / f"{key}.jpg", 120 + 10 * i, 90, seed=i)
    emb = np.random.default_rng(0).standard_normal((4, 5, 8)).astype(np.float32)
    write_split(tmp_path / "coco" / "train", keys, emb, py2=False)
    ds = build_text_dataset(tmp_path / "coco", "train", sizes=[64], augment=False)
    assert ds.bboxes is None and len(ds) == 4 and ds.class_ids.tolist() == [0, 1, 2, 3]
    item = ds[0]
    img = Image.open(tmp_path / "coco" / "images" / f"{keys[0]}.jpg").convert("RGB")
    expected = to_tensor(img.resize((76, 76), Image.BILINEAR).crop((6, 6, 70, 70)))
    assert torch.equal(item["image"], expected)   # square resize of the whole picture


def test_registered_kind_and_batches(tmp_path, cub, present_keys):
    small_birds(tmp_path, cub, present_keys[:8], sizes=[64])
    cfg = data.defaults("stackgan_text", image_size=64, root=str(tmp_path / "birds"),
                        options={"CUB_DIR": str(cub / "CUB_200_2011"), "WRONG": "shift"})
    ds = data.build(cfg)
    loader = EpochLoader(ds, batch_size=4, seed=0)
    batch = next(loader.epoch(0))
    assert batch["images"][0].shape == (4, 3, 64, 64) and batch["image"].shape == (4, 3, 64, 64)
    assert batch["wrong_images"][0].shape == (4, 3, 64, 64)
    assert batch["embedding"].shape == (4, 8) and len(batch["key"]) == 4
    with pytest.raises(DataError, match="strictly ascending"):
        build_text_dataset(tmp_path / "birds", "train", sizes=[128, 64],
                           cub_dir=cub / "CUB_200_2011")


@pytest.mark.parametrize("resize", ["square", "shorter"])
def test_cached_pictures_give_the_same_items(tmp_path, cub, present_keys, resize):
    """The decoded-picture cache changes where the pixels come from, never what they are."""
    keys = present_keys[:12]
    plain, _ = small_birds(tmp_path, cub, keys, sizes=[32, 64], resize=resize, wrong="resample")
    cached = build_text_dataset(tmp_path / "birds", "train", sizes=[32, 64],
                                cub_dir=cub / "CUB_200_2011", resize=resize, wrong="resample",
                                cache_mb=64)
    assert plain.cached_mb == 0 and 0 < cached.cached_mb < 64
    for index in (0, 5, 11):
        with seeded_rngs(7):
            a = plain[index]
        with seeded_rngs(7):
            b = cached[index]
        assert a["key"] == b["key"]
        for x, y in zip(a["images"] + a["wrong_images"], b["images"] + b["wrong_images"]):
            assert torch.equal(x, y)
    # worker processes read the cache the main process filled
    expected = next(EpochLoader(plain, batch_size=4, seed=3).epoch(0))
    batch = next(EpochLoader(cached, batch_size=4, workers=2, seed=3).epoch(0))
    assert batch["key"] == expected["key"]
    assert torch.equal(batch["image"], expected["image"])


def test_pictures_too_large_for_the_cache_are_read_from_disk(tmp_path, cub, present_keys):
    ds, _ = small_birds(tmp_path, cub, present_keys[:4], sizes=[64])
    assert not ds.cache_pictures(max_mb=0.01)      # 4 pictures of 76 x 76 x 3 need ~0.07 MB
    assert ds.cached_mb == 0
    assert ds.cache_pictures(max_mb=1) and ds.cached_mb > 0
