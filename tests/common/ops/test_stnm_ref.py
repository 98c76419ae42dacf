"""The pure-PyTorch reference against hand-written per-pixel loops (spec sections 2.3-2.6).

The reference is what the kernels are tested against, so it is itself checked
against an independent, literal transcription of the original kernel.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from common.ops import stnm, stnm_ref, theta_from_lrgan

from . import stnm_cases as cases


def _footprint(theta_b, i, j, size, src_size):
    """Source position of output pixel (i, j): floor, fractions and the normalised position."""
    (h, w), (hf, wf) = size, src_size
    xn = -1 + 2 * j / (w - 1) if w > 1 else 0.0
    yn = -1 + 2 * i / (h - 1) if h > 1 else 0.0
    gx = theta_b[0][0] * xn + theta_b[0][1] * yn + theta_b[0][2]
    gy = theta_b[1][0] * xn + theta_b[1][1] * yn + theta_b[1][2]
    x, y = (gx + 1) * (wf - 1) / 2, (gy + 1) * (hf - 1) / 2
    x0, y0 = math.floor(x), math.floor(y)
    return x0, y0, x - x0, y - y0, xn, yn


def _taps(x0, y0, ax, ay, src_size):
    """(y, x, weight, inside) for TL, TR, BL, BR."""
    hf, wf = src_size
    corners = [(y0, x0, (1 - ax) * (1 - ay)), (y0, x0 + 1, ax * (1 - ay)),
               (y0 + 1, x0, (1 - ax) * ay), (y0 + 1, x0 + 1, ax * ay)]
    return [(y, x, w, 0 <= y < hf and 0 <= x < wf) for y, x, w in corners]


def naive_forward(canvas, fg, mask, theta):
    batch, _, h, w = canvas.shape
    src = tuple(fg.shape[2:])
    out = canvas.clone()
    for b in range(batch):
        for i in range(h):
            for j in range(w):
                x0, y0, ax, ay, _, _ = _footprint(theta[b].tolist(), i, j, (h, w), src)
                taps = _taps(x0, y0, ax, ay, src)
                m = sum(wt * mask[b, 0, y, x] for y, x, wt, inside in taps if inside)
                f = sum(wt * fg[b, :, y, x] for y, x, wt, inside in taps if inside)
                out[b, :, i, j] = m * f + (1 - m) * canvas[b, :, i, j]
    return out


def naive_original_backward(g, canvas, fg, mask, theta):
    """The original LR-GAN kernel's backward, transcribed from spec section 2.4."""
    batch, _, h, w = canvas.shape
    hf, wf = fg.shape[2:]
    d_canvas, d_fg = torch.zeros_like(canvas), torch.zeros_like(fg)
    d_mask, d_theta = torch.zeros_like(mask), torch.zeros_like(theta)
    for b in range(batch):
        for i in range(h):
            for j in range(w):
                x0, y0, ax, ay, xn, yn = _footprint(theta[b].tolist(), i, j, (h, w), (hf, wf))
                taps = _taps(x0, y0, ax, ay, (hf, wf))
                m = sum(wt * mask[b, 0, y, x] for y, x, wt, inside in taps if inside)
                v = sum(wt * fg[b, :, y, x] for y, x, wt, inside in taps if inside)
                gc = g[b, :, i, j]
                d_canvas[b, :, i, j] = gc * (1 - m)
                d = []
                for y, x, wt, inside in taps:
                    if inside:
                        d_fg[b, :, y, x] += wt * gc * m
                        d_mask[b, 0, y, x] += wt * (gc * (v - canvas[b, :, i, j])).sum()
                    d.append((fg[b, :, y, x] * gc * m).sum() if inside else 0.0)
                tl, tr, bl, br = d
                dy = (1 - ax) * (bl - tl) + ax * (br - tr)
                dx = (1 - ay) * (tr - tl) + ay * (br - bl)
                gx, gy = dx * (wf - 1) / 2, dy * (hf - 1) / 2
                d_theta[b, 0] += gx * torch.tensor([xn, yn, 1.0], dtype=theta.dtype)
                d_theta[b, 1] += gy * torch.tensor([xn, yn, 1.0], dtype=theta.dtype)
    return d_canvas, d_fg, d_mask, d_theta


@pytest.mark.parametrize("pose", [cases.ROTATE_SCALE, cases.SHRINK, cases.ENLARGE, cases.PARTLY_OFF])
def test_ref_matches_per_pixel_loop(pose):
    inputs = cases.make_inputs(batch=2, channels=3, size=(5, 6), theta=pose)
    cases.assert_close(stnm_ref(*inputs), naive_forward(*inputs), torch.float64, "forward")


def test_ref_with_a_source_of_another_size():
    inputs = cases.make_inputs(batch=2, channels=2, size=(5, 6), src_size=(4, 8))
    cases.assert_close(stnm_ref(*inputs), naive_forward(*inputs), torch.float64, "forward")


def test_original_mode_matches_the_original_kernel_formulas():
    inputs = cases.make_inputs(batch=2, channels=3, size=(5, 6), theta=cases.PARTLY_OFF)
    _, got = cases.grads(lambda *t: stnm_ref(*t, mask_grad="original"), inputs)
    g = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = naive_original_backward(g, *inputs)
    for name, a, e in zip(("canvas", "fg", "mask", "theta"), got, expected):
        cases.assert_close(a, e, torch.float64, f"d{name}")


def test_modes_differ_only_in_the_theta_gradient():
    inputs = cases.make_inputs(theta=cases.PARTLY_OFF)
    out_full, full = cases.grads(lambda *t: stnm_ref(*t, mask_grad="full"), inputs)
    out_orig, orig = cases.grads(lambda *t: stnm_ref(*t, mask_grad="original"), inputs)
    torch.testing.assert_close(out_full, out_orig, atol=0, rtol=0)
    for a, b in zip(full[:3], orig[:3]):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert (full[3] - orig[3]).abs().max() > 1e-3  # the mask path matters


def test_lrgan_pose_maps_to_theta():
    """LR-GAN's (y, x)-ordered grid equals affine_grid(theta_from_lrgan(T)) with x, y swapped."""
    gen = torch.Generator().manual_seed(0)
    pose = torch.tensor([[1.3, 0.2, -0.4], [0.1, 1.6, 0.7]]) + 0.1 * torch.randn(4, 2, 3, generator=gen)
    h, w = 6, 9
    y = torch.linspace(-1, 1, h).view(h, 1).expand(h, w)
    x = torch.linspace(-1, 1, w).view(1, w).expand(h, w)
    base = torch.stack([y, x, torch.ones(h, w)], dim=-1)  # (y, x, 1), as in LR-GAN
    lrgan_grid = torch.einsum("hwl,bkl->bhwk", base, pose)  # channels (row, column)
    grid = F.affine_grid(theta_from_lrgan(pose), [4, 1, h, w], align_corners=True)
    torch.testing.assert_close(grid, lrgan_grid.flip(-1), atol=1e-6, rtol=0)


def test_theta_from_lrgan_layout():
    pose = torch.arange(6.0).view(1, 2, 3)  # [[x_s, x_r, x_t], [y_r, y_s, y_t]]
    assert theta_from_lrgan(pose).tolist() == [[[4.0, 3.0, 5.0], [1.0, 0.0, 2.0]]]


def test_mask_zero_returns_canvas():
    canvas, fg, mask, theta = cases.make_inputs(mask=0.0)
    torch.testing.assert_close(stnm(canvas, fg, mask, theta, impl="ref"), canvas, atol=0, rtol=0)


def test_mask_one_at_identity_returns_fg():
    canvas, fg, mask, theta = cases.make_inputs(mask=1.0, theta=cases.IDENTITY, jitter=0.0)
    torch.testing.assert_close(stnm(canvas, fg, mask, theta, impl="ref"), fg, atol=1e-12, rtol=0)


def test_off_canvas_pose_returns_canvas_with_zero_gradients():
    inputs = cases.make_inputs(theta=cases.OFF_CANVAS)
    out, (d_canvas, d_fg, d_mask, d_theta) = cases.grads(lambda *t: stnm_ref(*t), inputs)
    torch.testing.assert_close(out, inputs[0], atol=0, rtol=0)
    for name, grad in (("fg", d_fg), ("mask", d_mask), ("theta", d_theta)):
        assert grad.abs().max() == 0, name
