"""Images from no checkpoint (evaluate.py --images): folders and arrays are read as uint8 by the
PNG writer's rule, and every malformed set is one clear error line."""
import numpy as np
import pytest
import torch
from PIL import Image

from common.metrics import image_sets
from common.metrics.samples import to_uint8_rgb
from common.metrics.weights import MetricsError


def first_batch(path, n=100, batch_size=100):
    return next(image_sets.load(path).batches(n, batch_size))["image"]


def test_float_arrays_follow_the_png_rule_and_grey_gets_three_channels(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (5, 1, 7, 9)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    got = first_batch(tmp_path / "x.npy")
    assert got.dtype == torch.uint8 and got.shape == (5, 3, 7, 9)
    assert torch.equal(got, to_uint8_rgb(torch.from_numpy(x)))


def test_uint8_arrays_and_folders_give_the_same_images(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (6, 3, 12, 10), dtype=np.uint8)
    np.savez(tmp_path / "x.npz", x)
    (tmp_path / "pngs").mkdir()
    for i, img in enumerate(x):
        Image.fromarray(img.transpose(1, 2, 0)).save(tmp_path / "pngs" / f"{i:03d}.png")
    assert torch.equal(first_batch(tmp_path / "x.npz"), torch.from_numpy(x))
    assert torch.equal(first_batch(tmp_path / "pngs"), torch.from_numpy(x))
    batches = list(image_sets.load(tmp_path / "pngs").batches(5, 2))
    assert [len(b["image"]) for b in batches] == [2, 2, 1]


def _save(tmp_path, name, value):
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, **value)
    else:
        np.save(path, value)
    return path


@pytest.mark.parametrize("name, value, message", [
    ("rank3.npy", np.zeros((4, 8, 8), np.uint8), "expected an array \\(N, C, H, W\\)"),
    ("nhwc.npy", np.zeros((4, 8, 8, 3), np.uint8), "with C 1 or 3, got shape \\(4, 8, 8, 3\\)"),
    ("empty.npy", np.zeros((0, 3, 8, 8), np.uint8), "the set is empty"),
    ("range.npy", np.full((2, 3, 4, 4), 2.0, np.float32), "must lie in \\[-1, 1\\]"),
    ("nan.npy", np.full((2, 3, 4, 4), np.nan, np.float32), "NaN or Inf"),
    ("ints.npy", np.full((2, 3, 4, 4), 300, np.int64), "must lie in \\[0, 255\\]"),
    ("bools.npy", np.ones((2, 3, 4, 4), bool), "must be uint8 or float"),
    ("two.npz", {"a": np.zeros((1, 3, 4, 4)), "b": np.zeros((1, 3, 4, 4))}, "holds a, b"),
])
def test_malformed_arrays_are_clear_errors(tmp_path, name, value, message):
    path = _save(tmp_path, name, value)
    with pytest.raises(MetricsError, match=message) as err:
        image_sets.load(path)
    assert str(path) in str(err.value)


def test_malformed_folders_and_paths_are_clear_errors(tmp_path):
    (tmp_path / "mixed").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "mixed" / "a.png")
    Image.new("RGB", (9, 8)).save(tmp_path / "mixed" / "b.png")
    with pytest.raises(MetricsError, match="b.png: is 9x8.*must all have one size"):
        image_sets.load(tmp_path / "mixed")
    (tmp_path / "none").mkdir()
    with pytest.raises(MetricsError, match="none"):
        image_sets.load(tmp_path / "none")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(MetricsError, match="x.png: not a readable image"):
        image_sets.load(tmp_path / "bad")
    (tmp_path / "t.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(MetricsError, match="t.npy: not a readable .npy array"):
        image_sets.load(tmp_path / "t.npy")
    with pytest.raises(MetricsError, match="no such folder or file"):
        image_sets.load(tmp_path / "missing.npz")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(MetricsError, match="expected a folder of PNG/JPEG images or an .npy"):
        image_sets.load(tmp_path / "x.txt")


@pytest.mark.parametrize("args, message", [
    (["--images", "{tmp}/rank3.npy", "--protocol", "fd_mnist10k", "--features", "{tmp}"],
     "expected an array (N, C, H, W)"),
    (["--images", "{tmp}/ok.npy", "--protocol", "fd_mnist10k"], "pass --features RUN"),
    (["--images", "{tmp}/ok.npy", "--protocol", "fd_mnist10k", "--features", "{tmp}"],
     "not a feature network"),
    (["--images", "{tmp}/ok.npy", "--protocol", "fd_mnist10k", "--n", "9", "--features", "x"],
     "--n 9: "),
])
def test_evaluate_images_bad_input_is_one_line_and_exit_2(tmp_path, repo, capsys, args, message):
    from tests.conftest import load_script
    np.save(tmp_path / "rank3.npy", np.zeros((4, 8, 8), np.uint8))
    np.save(tmp_path / "ok.npy", np.zeros((4, 1, 8, 8), np.uint8))
    evaluate = load_script("evaluate")
    code = evaluate.main([a.format(tmp=tmp_path) for a in args] + ["--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0]
