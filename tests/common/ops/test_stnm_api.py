"""Argument checking of the public stnm(): each error names the argument and what was expected."""
import pytest
import torch

from common.ops import stnm, theta_from_lrgan

from . import stnm_cases as cases


@pytest.fixture
def inputs():
    return cases.make_inputs(batch=2, channels=3, size=(5, 6), dtype=torch.float32)


@pytest.mark.parametrize("index, bad, message", [
    (0, torch.zeros(2, 3, 5), r"canvas must be \(B, C, H, W\)"),
    (1, torch.zeros(2, 4, 5, 6), r"fg must be \(B, C, Hf, Wf\) = \(2, 3, Hf, Wf\)"),
    (1, torch.zeros(3, 3, 5, 6), r"fg must be"),
    (2, torch.zeros(2, 3, 5, 6), r"mask must be \(B, 1, Hf, Wf\) = \(2, 1, 5, 6\)"),
    (2, torch.zeros(2, 1, 4, 6), r"mask must be"),
    (3, torch.zeros(2, 3, 2), r"theta must be \(B, 2, 3\) = \(2, 2, 3\)"),
    (3, torch.zeros(1, 2, 3), r"theta must be"),
])
def test_shape_errors(inputs, index, bad, message):
    inputs[index] = bad
    with pytest.raises(ValueError, match=message):
        stnm(*inputs, impl="ref")


def test_type_and_device_errors(inputs):
    with pytest.raises(TypeError, match="fg must be a torch.Tensor"):
        stnm(inputs[0], inputs[1].numpy(), *inputs[2:])
    with pytest.raises(TypeError, match="mask must be a floating-point tensor"):
        stnm(inputs[0], inputs[1], (inputs[2] > 0.5), inputs[3])
    with pytest.raises(ValueError, match="theta is on meta but canvas is on cpu"):
        stnm(*inputs[:3], inputs[3].to("meta"))


def test_option_errors(inputs):
    with pytest.raises(ValueError, match="mask_grad must be one of"):
        stnm(*inputs, mask_grad="partial")
    with pytest.raises(ValueError, match="impl must be one of"):
        stnm(*inputs, impl="cuda")
    with pytest.raises(ValueError, match="pose must be"):
        theta_from_lrgan(torch.zeros(2, 3, 2))


def test_half_precision_inputs_return_their_dtype(inputs):
    out = stnm(*[t.half() for t in inputs], impl="ref")
    assert out.dtype == torch.float16
