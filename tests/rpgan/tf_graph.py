"""The original RP-GAN TensorFlow graph (ayanc/rpgan rpglib/gen.py, genx.py, disc.py, disc0.py)
re-implemented in numpy with TF's own conventions: NHWC tensors, TF filter layouts, conv2d
'VALID' after an explicit tf.pad, conv2d_transpose 'SAME', tf.nn.moments / batch_normalization
with eps 1e-3. Used to check that the released `.npz` weights import into our networks.

Written from the semantics of the TF ops, not from our PyTorch code, so that a layout mistake in
the importer (or in the networks) shows up as a mismatch.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-3


# ---- the TF ops -------------------------------------------------------------------------------
def pad(x: np.ndarray, p: int) -> np.ndarray:
    """tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])."""
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def conv2d_valid(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """tf.nn.conv2d(x, w, [1, s, s, 1], 'VALID'): x [N, H, W, Ci], w [kh, kw, Ci, Co]."""
    kh, kw, _, co = w.shape
    n, h, wd, _ = x.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, ho, wo, co), x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            out += window @ w[i, j]
    return out


def conv2d_transpose_same(x: np.ndarray, w: np.ndarray, size: int, stride: int) -> np.ndarray:
    """tf.nn.conv2d_transpose(x, w, [N, size, size, Co], [1, s, s, 1], 'SAME'), w [kh, kw, Co,
    Ci]: the adjoint of the 'SAME' conv2d that maps a [N, size, size, Co] tensor to x's shape.

    That convolution pads its input by (total // 2) before and the rest after, with
    total = (H - 1) * s + k - size; its adjoint scatters every input pixel times the filter
    into a (H - 1) * s + k canvas and cuts the same window out of it.
    """
    kh, kw, co, _ = w.shape
    n, h, wd, _ = x.shape
    top = max((h - 1) * stride + kh - size, 0) // 2
    left = max((wd - 1) * stride + kw - size, 0) // 2
    canvas = np.zeros((n, (h - 1) * stride + kh, (wd - 1) * stride + kw, co), x.dtype)
    for i in range(kh):
        for j in range(kw):
            canvas[:, i:i + stride * (h - 1) + 1:stride, j:j + stride * (wd - 1) + 1:stride] += \
                x @ w[i, j].T
    return canvas[:, top:top + size, left:left + size]


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tf.nn.moments(x, [0, 1, 2]): mean and biased variance per channel."""
    mean = x.mean(axis=(0, 1, 2))
    return mean, ((x - mean) ** 2).mean(axis=(0, 1, 2))


def batch_normalization(x, mean, var):
    """tf.nn.batch_normalization(x, mean, var, None, None, 1e-3)."""
    return (x - mean) / np.sqrt(var + EPS)


# ---- the networks -----------------------------------------------------------------------------
def generator_shapes(zlen: int, f1: int, imsz: int, ksz: int = 4) -> dict[str, tuple]:
    """Variable name -> shape of the original G (gen.py's layer loop), without statistics."""
    sz = ksz - ksz % 2
    shapes = {"c1_w": (1, 1, zlen, f1 * sz * sz), "c1_b": (f1,)}
    layer, f, f1 = 2, f1, f1 // 2
    sz *= 2
    while sz <= imsz:
        shapes[f"c{layer}_w"], shapes[f"c{layer}_b"] = (ksz, ksz, f1, f), (f1,)
        layer += 1
        sz *= 2
        f, f1 = f1, (3 if sz == imsz else f1 // 2)
    return shapes


def random_generator(zlen: int, f1: int, imsz: int, rng: np.random.RandomState) -> dict:
    """float32 G variables in the original layout: LeCun-uniform weights, non-zero biases."""
    out = {}
    for name, shape in generator_shapes(zlen, f1, imsz).items():
        if name.endswith("_w"):
            fan_in = shape[2] if name == "c1_w" else shape[0] * shape[1] * shape[3]
            bound = np.sqrt(3.0 / fan_in)
            out[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
        else:
            out[name] = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    return out


def generator(v: dict, z: np.ndarray, imsz: int, population: bool = False,
              record: dict | None = None) -> np.ndarray:
    """G(z) NHWC in (-1, 1); z [N, 1, 1, zlen]. BN with the batch's statistics (gen.py), or with
    the stored `bnm_c<l>_w` / `bnv_c<l>_w` (genx.py loaded from a .bgmodel, `population`).
    `record` receives those statistics of this batch (genx.py with setbn, i.e. fixbn.py)."""
    f1 = v["c1_b"].shape[0]

    def norm(x, layer):
        if population:
            return batch_normalization(x, v[f"bnm_c{layer}_w"], v[f"bnv_c{layer}_w"])
        mean, var = moments(x)
        if record is not None:
            record[f"bnm_c{layer}_w"], record[f"bnv_c{layer}_w"] = mean, var
        return batch_normalization(x, mean, var)

    out = conv2d_valid(z, v["c1_w"], 1).reshape(-1, 4, 4, f1)   # TF reshape: (h, w, c) order
    out = np.maximum(norm(out, 1) + v["c1_b"], 0)
    layer, sz = 2, 8
    while sz <= imsz:
        out = conv2d_transpose_same(out, v[f"c{layer}_w"], sz, 2)
        if sz < imsz:
            out = np.maximum(norm(out, layer) + v[f"c{layer}_b"], 0)
        else:
            out = np.tanh(out + v[f"c{layer}_b"])
        layer, sz = layer + 1, sz * 2
    return out


def discriminator_shapes(in_size: int, in_channels: int, df: int, prefix: str) -> dict:
    """Variable name -> shape of one original D (disc.py / disc0.py): names prefix + j."""
    numl = int(np.log2(in_size))
    shapes = {}
    for j in range(numl):
        f = in_channels if j == 0 else df * 2 ** (j - 1)
        ksz, f1 = (4, df * 2 ** j) if j < numl - 1 else (2, 1)
        shapes[f"{prefix}{j}_w"], shapes[f"{prefix}{j}_b"] = (ksz, ksz, f, f1), (f1,)
    return shapes


def random_variables(shapes: dict, rng: np.random.RandomState) -> dict:
    out = {}
    for name, shape in shapes.items():
        if name.endswith("_w"):
            bound = np.sqrt(3.0 / (shape[0] * shape[1] * shape[2]))
            out[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
        else:
            out[name] = rng.uniform(-0.1, 0.1, shape).astype(np.float32)
    return out


def discriminator_layers(out: np.ndarray, v: dict, prefix: str, numl: int) -> np.ndarray:
    for j in range(numl):
        if j < numl - 1:
            out = conv2d_valid(pad(out, 1), v[f"{prefix}{j}_w"], 2) + v[f"{prefix}{j}_b"]
            out = np.maximum(0.2 * out, out)
        else:
            out = conv2d_valid(out, v[f"{prefix}{j}_w"], 1) + v[f"{prefix}{j}_b"]
    return out.reshape(out.shape[0])


def projected_discriminator(v: dict, k: int, x: np.ndarray, filt: np.ndarray,
                            stride: int) -> np.ndarray:
    """Logits [N] of D_k (disc.py dloss): pad by (f0 - stride) // 2, project, then the layers."""
    p = (filt.shape[0] - stride) // 2
    out = conv2d_valid(pad(x, p) if p else x, filt, stride)
    numl = int(np.log2(x.shape[1] // stride))
    return discriminator_layers(out, v, f"c{k}_", numl)


def full_discriminator(v: dict, x: np.ndarray) -> np.ndarray:
    """Logits [N] of the single-D baseline (disc0.py) on the RGB image."""
    return discriminator_layers(x, v, "c", int(np.log2(x.shape[1])))
