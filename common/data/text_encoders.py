"""Sentence encoders that replace the unobtainable char-CNN-RNN (Reed et al.) embeddings.

Embeddings from these encoders are NOT the published ones: models trained on them, and the
scores of those models, are not comparable with the papers' numbers.

  char-ngram            built in, no weights, deterministic: hashed character n-grams
  sentence-transformer  a sentence-transformers model, when that package is installed

Both return (N, dim) float32 vectors scaled to the L2 norm of a real char-CNN-RNN embedding
(4.61, measured on the CUB example_captions.t7), so the conditioning network sees inputs of
the magnitude it was designed for.
"""
from __future__ import annotations

import re

import numpy as np

REFERENCE_NORM = 4.61
ENCODERS = ("char-ngram", "sentence-transformer")


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial hashes over all 64 bits (uint64 wraps)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _scale_rows(vectors: np.ndarray, norm: float) -> np.ndarray:
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors * (norm / np.maximum(lengths, 1e-12))).astype(np.float32)


class HashedNgramEncoder:
    """Signed feature hashing of the character n-grams of a lower-cased, space-normalised
    sentence (with boundary marks), counts damped by log(1 + count), rows rescaled.

    Deterministic across runs, machines and Python versions (no salted `hash()`).
    """

    name = "char-ngram"

    def __init__(self, dim: int = 1024, ngrams: tuple[int, ...] = (2, 3, 4, 5),
                 norm: float = REFERENCE_NORM):
        if dim < 1 or not ngrams or min(ngrams) < 1:
            raise ValueError(f"bad encoder settings: dim={dim}, ngrams={ngrams}")
        self.dim, self.ngrams, self.norm = dim, tuple(ngrams), norm

    def encode_one(self, text: str) -> np.ndarray:
        codes = np.frombuffer(f"\x02{_normalise(text)}\x03".encode("utf-8"), dtype=np.uint8)
        codes = codes.astype(np.uint64) + np.uint64(1)
        counts = np.zeros(self.dim, dtype=np.float64)
        for n in self.ngrams:
            if len(codes) < n:
                continue
            windows = len(codes) - n + 1
            h = np.full(windows, np.uint64((n * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF))
            for k in range(n):
                h = (h * np.uint64(1099511628211)) ^ codes[k:k + windows]
            h = _mix64(h)
            index = (h % np.uint64(self.dim)).astype(np.int64)
            sign = np.where((h >> np.uint64(63)) == 1, -1.0, 1.0)
            np.add.at(counts, index, sign)
        return np.sign(counts) * np.log1p(np.abs(counts))

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _scale_rows(np.stack([self.encode_one(t) for t in texts]), self.norm)


class SentenceTransformerEncoder:
    """A sentence-transformers model; its output is mapped to `dim` by a fixed random Gaussian
    projection (seed 0) when the model's size differs, then rescaled."""

    name = "sentence-transformer"

    def __init__(self, model_name: str = "all-MiniLM-L6-v2", dim: int = 1024,
                 norm: float = REFERENCE_NORM, device: str | None = None, model=None,
                 batch_size: int = 256):
        if model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ImportError("the sentence-transformer encoder needs the "
                                  "sentence-transformers package (pip install "
                                  "sentence-transformers); or use --encoder char-ngram") from None
            model = SentenceTransformer(model_name, device=device)
        self.model, self.dim, self.norm, self.batch_size = model, dim, norm, batch_size
        self.model_name = model_name
        self._projection: np.ndarray | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self.model.encode(list(texts), batch_size=self.batch_size),
                             dtype=np.float64)
        if vectors.shape[1] != self.dim:
            if self._projection is None or self._projection.shape[0] != vectors.shape[1]:
                rng = np.random.default_rng(0)
                self._projection = rng.standard_normal((vectors.shape[1], self.dim)) \
                    / np.sqrt(vectors.shape[1])
            vectors = vectors @ self._projection
        return _scale_rows(vectors, self.norm)


def get_encoder(name: str, dim: int = 1024, model_name: str = "all-MiniLM-L6-v2",
                device: str | None = None):
    if name == "char-ngram":
        return HashedNgramEncoder(dim)
    if name == "sentence-transformer":
        return SentenceTransformerEncoder(model_name, dim, device=device)
    raise ValueError(f"unknown encoder {name!r}; expected one of {', '.join(ENCODERS)}")
