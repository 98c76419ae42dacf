"""Pure-PyTorch STNM: the reference twin that the compiled kernels are tested against.

Built from affine_grid and grid_sample, so it is the definition of the op's
convention (align_corners=True, bilinear, zeros outside) and runs on any device.
"""
import torch
import torch.nn.functional as F


def stnm_ref(
    canvas: torch.Tensor,
    fg: torch.Tensor,
    mask: torch.Tensor,
    theta: torch.Tensor,
    mask_grad: str = "full",
) -> torch.Tensor:
    """Composite the warped foreground onto the canvas; see common.ops.stnm for the contract.

    mask_grad="original" feeds the mask's sampling a detached grid, which is what
    the original LR-GAN kernel's gradient with respect to the pose amounts to.
    """
    grid = F.affine_grid(theta, list(canvas.shape), align_corners=True)
    sample = dict(mode="bilinear", padding_mode="zeros", align_corners=True)
    f = F.grid_sample(fg, grid, **sample)
    m = F.grid_sample(mask, grid if mask_grad == "full" else grid.detach(), **sample)
    return m * f + (1 - m) * canvas
