"""scripts/stackgan_embed_captions.py on the real CUB captions and the COCO example captions."""
import importlib.util

import numpy as np
import pytest

from common.data.t7captions import read_caption_file
from common.data.text import build_text_dataset
from common.data.text_encoders import HashedNgramEncoder
from common.data.text_files import load_captions, load_class_ids, load_embeddings, load_filenames


@pytest.fixture(scope="module")
def embed(repo):
    spec = importlib.util.spec_from_file_location(
        "stackgan_embed_captions", repo / "scripts" / "stackgan_embed_captions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cub_split_mode_on_real_captions(embed, shared_data, tmp_path, capsys):
    birds = shared_data / "cub" / "birds"
    out = tmp_path / "birds"
    assert embed(["--data-dir", str(birds), "--out", str(out)]) == 2    # captions are missing
    assert "8580 of 8855 caption files" in capsys.readouterr().err
    assert embed(["--data-dir", str(birds), "--out", str(out), "--only-present"]) == 0
    for split, count in (("train", 275), ("test", 268)):
        names = load_filenames(out / split)
        emb = load_embeddings(out / split, "char-ngram", len(names))
        assert len(names) == count and emb.shape == (count, 10, 1024)
        assert load_class_ids(out / split, count).tolist() == [int(k[:3]) for k in names]
        first = load_captions(birds / "text" / f"{names[0]}.txt")[3]
        assert np.allclose(emb[0, 3], HashedNgramEncoder().encode([first])[0], atol=1e-6)
    ds = build_text_dataset(out, "test", [64], "char-ngram",
                            cub_dir=shared_data / "cub" / "CUB_200_2011")
    assert len(ds) == 268 and ds.skipped == 0
    # the shortened lists may not overwrite the original split files
    assert embed(["--data-dir", str(birds), "--only-present"]) == 2
    assert "new folder" in capsys.readouterr().err


def test_coco_caption_file_mode(embed, shared_data, tmp_path):
    source = shared_data / "coco" / "example_captions.txt"
    assert embed(["--captions", str(source), "--out", str(tmp_path / "coco.npz")]) == 0
    captions = read_caption_file(tmp_path / "coco.npz")
    assert captions.texts == load_captions(source) and len(captions) == 6
    assert captions.embeddings.shape == (6, 1024)
