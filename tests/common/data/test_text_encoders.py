"""The caption encoders that stand in for char-CNN-RNN."""
import importlib.util

import numpy as np
import pytest

from common.data.text_encoders import (REFERENCE_NORM, HashedNgramEncoder,
                                       SentenceTransformerEncoder, get_encoder)


def test_hashed_ngrams_are_deterministic_scaled_and_meaningful():
    enc = HashedNgramEncoder(dim=1024)
    texts = ["a small yellow bird with black wings", "A small  yellow bird with black wing.",
             "a large grey bird with a long curved beak", "several horses grazing in a field"]
    v = enc.encode(texts)
    assert v.shape == (4, 1024) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), REFERENCE_NORM, atol=1e-4)
    assert np.array_equal(v, HashedNgramEncoder(dim=1024).encode(texts))   # no salted hash
    # fixed values: the encoder must not change silently (embeddings on disk would go stale)
    nonzero = np.flatnonzero(v[0])
    assert len(nonzero) == 130 and nonzero[:6].tolist() == [15, 23, 36, 41, 59, 73]
    assert np.allclose(v[0, nonzero[:3]], [-0.3827, 0.3827, -0.3827], atol=1e-4)
    cos = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ (v / REFERENCE_NORM).T
    assert cos[0, 1] > 0.9 > cos[0, 2] > cos[0, 3]
    assert enc.encode([]).shape == (0, 1024)


class StubModel:
    """Stands in for a sentence-transformers model: 3-d vectors from the text length."""

    def encode(self, texts, batch_size=32):
        return np.array([[len(t), t.count("a"), 1.0] for t in texts])


def test_sentence_transformer_wrapper_projects_and_scales():
    enc = SentenceTransformerEncoder(dim=16, model=StubModel())
    v = enc.encode(["a cat", "a small dog sat"])
    assert v.shape == (2, 16) and np.allclose(np.linalg.norm(v, axis=1), REFERENCE_NORM, atol=1e-4)
    again = SentenceTransformerEncoder(dim=16, model=StubModel()).encode(["a cat"])
    assert np.allclose(again[0], v[0])                      # fixed projection (seed 0)


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is not None,
                    reason="sentence-transformers is installed: the missing-package error "
                           "cannot be exercised")
def test_sentence_transformer_without_the_package_says_how_to_fix():
    with pytest.raises(ImportError, match="pip install sentence-transformers"):
        get_encoder("sentence-transformer")
