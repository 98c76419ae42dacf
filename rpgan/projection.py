"""Random projection filters, and K discriminators evaluated together as one batched network.

A projection P_k is a fixed convolution of the RGB image with one random filter (8x8, stride 2,
padding 3, 3 -> 1 channel, each filter a unit-norm Gaussian draw). The filters are data: they
live in a buffer, are saved in every checkpoint and are never drawn again on resume.

`DiscriminatorBank` holds K independent DCGAN-style discriminators and evaluates all of them in
one call. Layer j of all of them is one parameter [K, kh * kw * C_in, C_out]: per discriminator
the original's TensorFlow layout [kh, kw, C_in, C_out], flattened (3-d, so that channels_last
conversions of the module leave it alone). Two equivalent paths compute it:
  bmm:     im2col on channels-last activations, then one batched matmul over K per layer
           (the K discriminators are the batch dimension of a single GEMM);
  grouped: one grouped convolution (groups=K) per layer, K folded into the channels.
Both give the same numbers as K separate networks (tests/rpgan/test_projection.py); the
benchmark (benchmarks/rpgan_d.py) compares them with a Python loop over K modules.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from common.data.npfiles import load_failure
from common.errors import DataError

IMPLS = ("bmm", "grouped")


# ---- the filters ----------------------------------------------------------------------------
def draw_filters(k: int, seed: int, size: int = 8, channels: int = 1) -> torch.Tensor:
    """K unit-norm Gaussian filters as a conv weight [K * channels, 3, size, size].

    Drawn like the original's rproj.py (float32 normals in [size, size, 3, channels] blocks,
    each output filter divided by its L2 norm), but from numpy's RandomState(seed), so the same
    seed always gives the same bank (scripts/rpgan_make_filters.py writes it as a filts.npz).
    """
    draws = np.random.RandomState(seed).standard_normal((k, size, size, 3, channels))
    draws = draws.astype(np.float32)
    draws /= np.sqrt(np.sum(draws * draws, axis=(1, 2, 3), keepdims=True))
    return tf_filters_to_torch(draws)


def tf_filters_to_torch(filters: np.ndarray) -> torch.Tensor:
    """[K, kh, kw, 3, C] (TF layout per filter) -> conv weight [K * C, 3, kh, kw]."""
    k, kh, kw, cin, c = filters.shape
    return torch.from_numpy(np.ascontiguousarray(
        filters.transpose(0, 4, 3, 1, 2).reshape(k * c, cin, kh, kw)))


def load_filters_npz(path: str | Path) -> tuple[torch.Tensor, int, int]:
    """(conv weight [K * C, 3, s, s], channels C, stride) from a filts.npz of the original:
    `nfilt`, then `p{i}` [s, s, 3, C] float32 and `s{i}` (the stride) for i < nfilt."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: projection filter file not found (make one with "
                        "scripts/rpgan_make_filters.py or use the original's filts/K*_dm12.npz)")
    try:
        archive = np.load(path)
        count = int(archive["nfilt"])
        filters = [np.asarray(archive[f"p{i}"], dtype=np.float32) for i in range(count)]
        strides = [int(archive[f"s{i}"]) for i in range(count)]
    except KeyError as err:
        raise DataError(f"{path}: not a filts.npz (missing key {err}; expected nfilt, p0.., "
                        "s0..)") from None
    except Exception as err:  # truncated or corrupt archives fail in many types
        raise DataError(f"{path}: not a readable .npz file ({load_failure(path, err)})") from None
    if count < 1:
        raise DataError(f"{path}: nfilt is {count}; expected at least one filter")
    first = filters[0].shape
    if len(first) != 4 or first[0] != first[1] or first[2] != 3:
        raise DataError(f"{path}: p0 has shape {first}; expected [size, size, 3, channels]")
    for i, (f, s) in enumerate(zip(filters, strides)):
        if f.shape != first or s != strides[0]:
            raise DataError(f"{path}: p{i} has shape {f.shape} and stride {s}, but p0 has "
                            f"{first} and {strides[0]}; all filters must match")
    return tf_filters_to_torch(np.stack(filters)), first[3], strides[0]


def save_filters_npz(path: str | Path, weight: torch.Tensor, channels: int, stride: int) -> Path:
    """Write a conv weight [K * C, 3, s, s] as a filts.npz in the original's layout."""
    w = weight.detach().cpu().numpy().astype(np.float32)
    k = w.shape[0] // channels
    blocks = w.reshape(k, channels, 3, w.shape[2], w.shape[3]).transpose(0, 3, 4, 2, 1)
    arrays = {"nfilt": np.int64(k)}
    for i in range(k):
        arrays[f"p{i}"] = np.ascontiguousarray(blocks[i])
        arrays[f"s{i}"] = np.int64(stride)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object: np.savez would append .npz to other names
        np.savez(f, **arrays)
    return path


# ---- the batched discriminators ---------------------------------------------------------------
class Layer:
    """One convolution of every discriminator: kernel, stride, padding, channels, activation."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, act: bool):
        self.cin, self.cout, self.kernel = cin, cout, kernel
        self.stride, self.padding, self.act = stride, padding, act


def conv_bmm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, layer: Layer):
    """x [K, B, H, W, C] channels-last -> [K, B, Ho, Wo, Cout] with one batched GEMM.

    im2col puts (kh, kw, C) innermost, the order of the weight [K, kh*kw*C, Cout], so the copy
    reads contiguous channel runs.
    """
    k, b, h, w, c = x.shape
    x = x.reshape(k * b, h, w, c)
    if layer.padding:
        p = layer.padding
        x = F.pad(x, (0, 0, p, p, p, p))
    cols = x.unfold(1, layer.kernel, layer.stride).unfold(2, layer.kernel, layer.stride)
    ho, wo = cols.shape[1], cols.shape[2]
    cols = cols.permute(0, 1, 2, 4, 5, 3).reshape(k, b * ho * wo, layer.kernel ** 2 * c)
    out = torch.baddbmm(bias.unsqueeze(1), cols, weight)
    if layer.act:
        out = F.leaky_relu(out, 0.2, inplace=True)
    return out.view(k, b, ho, wo, layer.cout)


def conv_grouped(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, layer: Layer):
    """x [B, K*C, H, W] -> [B, K*Cout, Ho, Wo]: one grouped convolution, block k is D_k."""
    k, size = weight.shape[0], layer.kernel
    w = weight.view(k, size, size, layer.cin, layer.cout).permute(0, 4, 3, 1, 2)
    w = w.contiguous().view(k * layer.cout, layer.cin, size, size)
    if x.is_contiguous(memory_format=torch.channels_last):
        w = w.contiguous(memory_format=torch.channels_last)
    out = F.conv2d(x, w, bias.reshape(-1), layer.stride, layer.padding, groups=k)
    return F.leaky_relu(out, 0.2, inplace=True) if layer.act else out


class DiscriminatorBank(nn.Module):
    """K discriminators with their own weights, evaluated together: x [B, 3, H, W] -> [B, K].

    With `filters` (a conv weight [K * C, 3, s, s]) discriminator k sees only projection k of
    the image (C channels at stride s); without, K must be 1 and it sees the full image (the
    single-discriminator baseline). `layers` lists the convolutions of one discriminator.
    """

    def __init__(self, k: int, layers: list[Layer], filters: torch.Tensor | None = None,
                 stride: int = 2, impl: str = "bmm", chunks: int = 1):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"unknown discriminator implementation {impl!r}; expected {IMPLS}")
        if filters is None and k != 1:
            raise ValueError("without projection filters the bank holds one discriminator")
        self.k, self.layers, self.impl, self.chunks = k, layers, impl, max(1, min(chunks, k))
        self.stride = stride
        self.projected = filters is not None
        if self.projected:
            if filters.shape[0] != k * layers[0].cin or filters.shape[1] != 3:
                raise ValueError(f"filters of shape {tuple(filters.shape)} do not fit K={k} "
                                 f"projections of {layers[0].cin} channel(s)")
            self.register_buffer("filters", filters.detach().clone().float())
            self.padding = (filters.shape[-1] - stride) // 2
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(k, l.kernel ** 2 * l.cin, l.cout)) for l in layers)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(k, l.cout)) for l in layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """LeCun-uniform, U(+-sqrt(3 / fan_in)) with fan_in = kh * kw * C_in; biases 0.
        Each discriminator gets its own draw."""
        with torch.no_grad():
            for w, b, layer in zip(self.weights, self.biases, self.layers):
                bound = math.sqrt(3.0 / (layer.kernel ** 2 * layer.cin))
                w.uniform_(-bound, bound)
                b.zero_()

    def set_filters(self, filters: torch.Tensor) -> None:
        """Replace the projection bank (e.g. with a loaded filts.npz) in place."""
        if filters.shape != self.filters.shape:
            raise DataError(f"projection filters of shape {tuple(filters.shape)} do not fit the "
                            f"bank's {tuple(self.filters.shape)}")
        self.filters.copy_(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.chunks == 1:
            return self.evaluate(x, 0, self.k)
        # For small GPUs: K in chunks, each recomputed in backward instead of kept.
        bounds = np.linspace(0, self.k, self.chunks + 1).round().astype(int)
        return torch.cat([checkpoint(self.evaluate, x, int(lo), int(hi), use_reentrant=False)
                          for lo, hi in zip(bounds[:-1], bounds[1:])], dim=1)

    def evaluate(self, x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Logits [B, hi - lo] of discriminators lo..hi-1."""
        if self.impl == "bmm":
            return self._bmm(x, lo, hi)
        return self._grouped(x, lo, hi)

    def _project(self, x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        c = self.layers[0].cin
        return F.conv2d(x, self.filters[lo * c:hi * c].to(x.dtype), stride=self.stride,
                        padding=self.padding)

    def _bmm(self, x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        k, b = hi - lo, x.shape[0]
        if self.projected:
            p = self._project(x, lo, hi)
            h = p.view(b, k, self.layers[0].cin, *p.shape[2:]).permute(1, 0, 3, 4, 2)
        else:
            h = x.permute(0, 2, 3, 1).unsqueeze(0)
        for w, bias, layer in zip(self.weights, self.biases, self.layers):
            h = conv_bmm(h, w[lo:hi], bias[lo:hi], layer)
        return h.reshape(k, b).t()

    def _grouped(self, x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        h = self._project(x, lo, hi) if self.projected else x
        for w, bias, layer in zip(self.weights, self.biases, self.layers):
            h = conv_grouped(h, w[lo:hi], bias[lo:hi], layer)
        return h.reshape(x.shape[0], hi - lo)

    def matmul_flops(self, batch: int, image_size: int, weight_grads: bool, input_grad: bool) -> int:
        """Multiply-add FLOPs (2 per MAC) of the convolutions of one forward + backward.

        The projection's filters are fixed: its backward runs only with `input_grad`. Layer 1's
        input grad is needed only to go on to the image (`input_grad`); each later layer's is
        needed whenever anything upstream takes a gradient. This is the count that any
        implementation must do, so time / count is its arithmetic rate.
        """
        size, total = image_size, 0
        if self.projected:
            size //= self.stride
            proj_macs = size * size * self.filters.shape[-1] ** 2 * 3 * self.filters.shape[0]
            total += proj_macs * (2 if input_grad else 1)
        for j, layer in enumerate(self.layers):
            size = (size + 2 * layer.padding - layer.kernel) // layer.stride + 1
            macs = self.k * size * size * layer.kernel ** 2 * layer.cin * layer.cout
            grad_in = input_grad or (weight_grads and j > 0)
            total += macs * (1 + int(weight_grads) + int(grad_in))
        return 2 * batch * total

    # ---- the reference: one ordinary network per discriminator ------------------------------
    @staticmethod
    def conv_weight(weight: torch.Tensor, layer: Layer) -> torch.Tensor:
        """One discriminator's block [kh*kw*C_in, C_out] as a Conv2d weight [C_out, C_in, kh,
        kw]."""
        return weight.view(layer.kernel, layer.kernel, layer.cin, layer.cout).permute(3, 2, 0, 1)

    def discriminator(self, index: int) -> nn.Sequential:
        """A standalone copy of discriminator `index` (its projection, then plain Conv2d
        layers): the original's per-k network, for tests and the benchmark's loop."""
        modules: list[nn.Module] = []
        if self.projected:
            c = self.layers[0].cin
            proj = nn.Conv2d(3, c, self.filters.shape[-1], self.stride, self.padding, bias=False)
            proj.weight.data.copy_(self.filters[index * c:(index + 1) * c])
            modules.append(proj.requires_grad_(False))
        for w, b, layer in zip(self.weights, self.biases, self.layers):
            conv = nn.Conv2d(layer.cin, layer.cout, layer.kernel, layer.stride, layer.padding)
            conv.weight.data.copy_(self.conv_weight(w[index].detach(), layer))
            conv.bias.data.copy_(b[index].detach())
            modules.append(conv)
            if layer.act:
                modules.append(nn.LeakyReLU(0.2))
        modules.append(nn.Flatten())
        return nn.Sequential(*modules).to(self.weights[0].device, self.weights[0].dtype)
