"""The projection bank and the K discriminators evaluated as one network."""
import numpy as np
import pytest
import torch

from common.errors import DataError
from rpgan.models import full_image_discriminator, projected_discriminators
from rpgan.projection import draw_filters, load_filters_npz, save_filters_npz


def write_original_npz(path, filters_tf, stride=2):
    """A filts.npz exactly as the original's rproj.py writes it (np.savez of a dict)."""
    arrays = {"nfilt": len(filters_tf)}
    for i, f in enumerate(filters_tf):
        arrays[f"p{i}"] = f
        arrays[f"s{i}"] = stride
    np.savez(path, **arrays)


def project_nhwc(image_hwc, filt_hwio, stride=2):
    """The original's projection with NHWC semantics: pad (size - stride) / 2, VALID conv."""
    size = filt_hwio.shape[0]
    pad = (size - stride) // 2
    x = np.pad(image_hwc, ((pad, pad), (pad, pad), (0, 0)))
    out_h = (x.shape[0] - size) // stride + 1
    out = np.zeros((out_h, out_h, filt_hwio.shape[3]))
    for i in range(out_h):
        for j in range(out_h):
            patch = x[i * stride:i * stride + size, j * stride:j * stride + size, :]
            out[i, j] = np.tensordot(patch, filt_hwio, axes=([0, 1, 2], [0, 1, 2]))
    return out


def test_drawn_filters_are_unit_norm_seeded_gaussians():
    a, b = draw_filters(12, seed=3), draw_filters(12, seed=3)
    assert a.shape == (12, 3, 8, 8) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, draw_filters(12, seed=4))
    assert torch.allclose(a.flatten(1).norm(dim=1), torch.ones(12), atol=1e-6)
    # same numbers as rproj.py's recipe (float32 normals / norm over kh, kw, c_in)
    raw = np.random.RandomState(3).standard_normal((12, 8, 8, 3, 1)).astype(np.float32)
    first = raw[0] / np.sqrt(np.sum(raw[0] ** 2, axis=(0, 1, 2)))
    assert np.allclose(a[0].permute(1, 2, 0).numpy(), first[..., 0], atol=1e-7)


def test_loads_the_original_filts_npz_layout(tmp_path):
    rng = np.random.RandomState(0)
    tf_filters = []
    for _ in range(5):
        f = rng.normal(size=(8, 8, 3, 1)).astype(np.float32)
        tf_filters.append(f / np.sqrt(np.sum(f * f, axis=(0, 1, 2))))
    path = tmp_path / "K5_dm12.npz"
    write_original_npz(path, tf_filters)
    weight, channels, stride = load_filters_npz(path)
    assert weight.shape == (5, 3, 8, 8) and (channels, stride) == (1, 2)
    # projecting with the loaded bank equals the original's NHWC convolution
    image = rng.uniform(-1, 1, size=(16, 16, 3))
    bank = projected_discriminators(5, 16, 4, weight)
    projected = bank._project(torch.from_numpy(image).permute(2, 0, 1)[None].float(), 0, 5)
    for k in (0, 4):
        expect = project_nhwc(image, tf_filters[k])[..., 0]
        assert np.allclose(projected[0, k].numpy(), expect, atol=1e-5)
    # and our writer round-trips in the same layout
    again = save_filters_npz(tmp_path / "out.bin", weight, 1, 2)
    with np.load(again) as archive:
        assert int(archive["nfilt"]) == 5 and int(archive["s4"]) == 2
        assert np.array_equal(archive["p3"], tf_filters[3])
    assert torch.equal(load_filters_npz(again)[0], weight)


def test_bad_filter_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_filters_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", nfilt=2, p0=np.zeros((8, 8, 3, 1), np.float32), s0=2)
    with pytest.raises(DataError, match="bad.npz.*missing key"):
        load_filters_npz(tmp_path / "bad.npz")
    write_original_npz(tmp_path / "mixed.npz", [np.ones((8, 8, 3, 1), np.float32),
                                                np.ones((6, 6, 3, 1), np.float32)])
    with pytest.raises(DataError, match="mixed.npz: p1"):
        load_filters_npz(tmp_path / "mixed.npz")


def independent_logits(bank, x):
    return torch.cat([bank.discriminator(k)(x) for k in range(bank.k)], dim=1)


@pytest.mark.parametrize("impl", ["bmm", "grouped"])
@pytest.mark.parametrize("k", [1, 3, 12])
def test_batched_equals_independent_discriminators(k, impl):
    torch.manual_seed(k)
    bank = projected_discriminators(k, 32, 4, draw_filters(k, seed=1), impl=impl).double()
    singles = [bank.discriminator(i).double() for i in range(k)]
    x = torch.randn(5, 3, 32, 32, dtype=torch.double, requires_grad=True)
    out = bank(x)
    ref = torch.cat([net(x) for net in singles], dim=1)
    assert out.shape == (5, k)
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)
    # gradients: every weight block, and the image (what the generator receives)
    weights = torch.randn(5, k, dtype=torch.double)
    grad_x, = torch.autograd.grad((out * weights).sum(), x, retain_graph=True)
    (out * weights).sum().backward()
    grad_x_ref, = torch.autograd.grad((ref * weights).sum(), x, retain_graph=True)
    (ref * weights).sum().backward()
    assert torch.allclose(grad_x, grad_x_ref, atol=1e-12)
    for j, (w, b, layer) in enumerate(zip(bank.weights, bank.biases, bank.layers)):
        for i, net in enumerate(singles):
            conv = [m for m in net if isinstance(m, torch.nn.Conv2d)][1 + j]
            assert torch.allclose(bank.conv_weight(w.grad[i], layer), conv.weight.grad,
                                  atol=1e-12)
            assert torch.allclose(b.grad[i], conv.bias.grad, atol=1e-12)
    assert bank.filters.grad is None   # the projections are fixed


def test_chunked_bank_and_full_image_baseline_match_the_reference():
    torch.manual_seed(0)
    bank = projected_discriminators(5, 32, 4, draw_filters(5, 0)).double()
    x = torch.randn(3, 3, 32, 32, dtype=torch.double, requires_grad=True)
    whole = bank(x)
    g_whole = torch.autograd.grad(whole.sum(), [x, *bank.parameters()])
    bank.chunks = 2
    chunked = bank(x)
    g_chunked = torch.autograd.grad(chunked.sum(), [x, *bank.parameters()])
    assert torch.allclose(whole, chunked, atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(g_whole, g_chunked))
    baseline = full_image_discriminator(32, 4).double()
    for impl in ("bmm", "grouped"):
        baseline.impl = impl
        assert torch.allclose(baseline(x), independent_logits(baseline, x), atol=1e-12)


def test_filters_are_a_buffer_saved_with_the_weights():
    bank = projected_discriminators(3, 16, 4, draw_filters(3, 7))
    state = bank.state_dict()
    assert torch.equal(state["filters"], draw_filters(3, 7))
    other = projected_discriminators(3, 16, 4, draw_filters(3, 8))
    other.load_state_dict(state)
    assert torch.equal(other.filters, draw_filters(3, 7))
    assert "filters" not in dict(bank.named_parameters())


@pytest.mark.parametrize("mode", ["d", "g"])
@pytest.mark.parametrize("projected", [True, False])
def test_flop_count_matches_the_independent_networks(mode, projected):
    """The arithmetic the benchmark divides by is what K plain networks really do."""
    from torch.utils.flop_counter import FlopCounterMode
    k = 3 if projected else 1
    bank = (projected_discriminators(k, 32, 4, draw_filters(k, 0)) if projected
            else full_image_discriminator(32, 4))
    singles = [bank.discriminator(i) for i in range(k)]
    for net in singles:
        for param in net.parameters():
            if param.requires_grad:
                param.requires_grad_(mode == "d")
    x = torch.randn(2, 3, 32, 32, requires_grad=mode == "g")
    counter = FlopCounterMode(display=False)
    with counter:
        torch.cat([net(x) for net in singles], dim=1).sum().backward()
    expected = bank.matmul_flops(2, 32, weight_grads=mode == "d", input_grad=mode == "g")
    assert counter.get_total_flops() == expected
