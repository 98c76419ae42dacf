"""Caption files: the real Lua example_captions.t7 and the modern .pt / .npz forms."""
import numpy as np
import pytest

from common.data.t7captions import read_caption_file, write_caption_file
from common.errors import DataError


def test_real_example_captions_t7(shared_data):
    folder = shared_data / "cub" / "birds" / "example_captions"
    captions = read_caption_file(folder / "example_captions.t7")
    assert captions.texts == [(folder / "example_captions.txt").read_text().strip()]
    assert captions.embeddings.shape == (1, 1024) and captions.embeddings.dtype == np.float32
    assert abs(float(np.linalg.norm(captions.embeddings)) - 4.6146) < 1e-3


def test_truncated_t7_is_a_clear_error(shared_data, tmp_path):
    raw = (shared_data / "cub" / "birds" / "example_captions" / "example_captions.t7").read_bytes()
    (tmp_path / "val_captions.t7").write_bytes(raw[:2000])
    with pytest.raises(DataError, match="val_captions.t7: not a readable Torch7 file"):
        read_caption_file(tmp_path / "val_captions.t7")


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_modern_caption_files_round_trip(tmp_path, suffix):
    texts = ["a red bird", "ein Vogel mit grünem Kopf"]
    emb = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    path = write_caption_file(tmp_path / f"c{suffix}", texts, emb)
    back = read_caption_file(path)
    assert back.texts == texts and np.array_equal(back.embeddings, emb)


def test_caption_file_errors(tmp_path):
    with pytest.raises(DataError, match="caption file not found"):
        read_caption_file(tmp_path / "none.t7")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="unknown caption file type"):
        read_caption_file(tmp_path / "x.txt")
    np.savez(tmp_path / "m.npz", raw_txt=np.array(["a", "b", "c"]), fea_txt=np.ones((2, 4)))
    with pytest.raises(DataError, match="3 sentences in raw_txt but 2 embeddings"):
        read_caption_file(tmp_path / "m.npz")
