"""LR-GAN's datasets: MNIST-ONE / MNIST-TWO re-created from the real MNIST, CUB bird crops."""
import pytest
import torch

from common import data
from common.data.cub_crops import square_box
from common.errors import ConfigError, DataError


def mnist_layers(shared_data, kind, size, **options):
    cfg = data.defaults(kind, image_size=size, channels=1, root=str(shared_data / "mnist"),
                        options=options)
    return data.build(cfg)


def test_mnist_one_from_the_real_mnist(shared_data):
    ds = mnist_layers(shared_data, "mnist_one", 32)
    assert len(ds) == 60_000                                    # one image per training digit
    item = ds[7]
    x = item["image"]
    assert x.shape == (1, 32, 32) and -1 <= x.min() and x.max() <= 1
    assert torch.equal(ds[7]["image"], x)                       # a pure function of the index
    # a flat background: the most common value fills most of the image, the digit is white
    values, counts = x.flatten().unique(return_counts=True)
    background = values[counts.argmax()]
    assert counts.max() > 0.5 * x.numel()
    assert background <= 0.6 and x.max() > 0.95                 # grey in [0, 0.8] -> [-1, 0.6]
    ink = (x > background + 0.2).float().mean()
    assert 0.04 < ink < 0.5                                     # one digit, not empty, not all
    from common.data.mnist import load_mnist
    _, labels = load_mnist(shared_data / "mnist", "train")
    assert item["label"] == labels[7]
    other = mnist_layers(shared_data, "mnist_one", 32, SEED=1)
    assert not torch.equal(other[7]["image"], x)                # placement depends on the seed
    assert other[7]["label"] == item["label"]                   # the digit does not


def test_mnist_two_has_two_digits_at_64px(shared_data):
    ds = mnist_layers(shared_data, "mnist_two", 64, LENGTH=100)
    assert len(ds) == 100
    batch = torch.stack([ds[i]["image"] for i in range(20)])
    assert batch.shape == (20, 1, 64, 64)
    assert ds[3]["digits"].shape == (2,)
    # two connected blobs of ink on most images
    from scipy import ndimage
    blobs = []
    for x in batch:
        background = x.flatten().mode().values
        blobs.append(ndimage.label((x[0] > background + 0.3).numpy())[1])
    assert sum(b >= 2 for b in blobs) >= 15


def test_mnist_layers_bad_options(shared_data):
    with pytest.raises(ConfigError, match="SCALE"):
        mnist_layers(shared_data, "mnist_one", 32, SCALE=[0.9, 0.5])
    with pytest.raises(ConfigError, match="BACKGROUND"):
        mnist_layers(shared_data, "mnist_one", 32, BACKGROUND=[0.0, 2.0])
    with pytest.raises(DataError, match="MNIST file"):
        data.build(data.defaults("mnist_one", 32, 1, root=str(shared_data / "cub")))


def test_square_box_stays_square_and_inside():
    assert square_box((10, 20, 40, 20), 200, 100, 1.5) == (0, 0, 60, 60)
    left, top, right, bottom = square_box((150, 30, 40, 60), 200, 100, 1.5)
    assert right - left == bottom - top == 90 and right <= 200 and top >= 0 and bottom <= 100
    assert square_box((0, 0, 300, 80), 300, 100, 1.5) == (100, 0, 200, 100)  # shrunk to fit


def test_cub_crops_from_the_real_cub(shared_data):
    root = str(shared_data / "cub" / "CUB_200_2011")
    with pytest.raises(DataError, match="ALLOW_MISSING"):     # the shared copy is a subset
        data.build(data.defaults("cub_crops", 64, 3, root=root, split="all"))
    ds = data.build(data.defaults("cub_crops", 64, 3, root=root, split="train",
                                  options={"ALLOW_MISSING": True}))
    assert 100 < len(ds) < 543
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["label"] == 0
    assert item["image"].std() > 0.1
