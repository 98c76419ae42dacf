import numpy as np
import torch
from PIL import Image

from common.images import grid, save_grid, to_uint8


def test_to_uint8_maps_the_value_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4)
    assert to_uint8(x).flatten().tolist() == [0, 128, 255, 255]


def test_grid_layout():
    images = torch.stack([torch.full((1, 2, 3), float(i)) for i in range(5)])
    g = grid(images, nrow=2, padding=1, pad_value=-1)
    assert g.shape == (1, 3 * 3 + 1, 2 * 4 + 1)
    assert g[0, 1, 1] == 0 and g[0, 1, 5] == 1 and g[0, 4, 1] == 2 and g[0, 7, 5] == -1


def test_save_grid_writes_a_png(tmp_path):
    images = torch.linspace(-1, 1, 4 * 3 * 2 * 2).view(4, 3, 2, 2)
    path = save_grid(images, tmp_path / "g.png", nrow=4)
    array = np.asarray(Image.open(path))
    assert array.shape == (2 + 2 * 2, 4 * 4 + 2, 3) and array.dtype == np.uint8
    gray = save_grid(torch.zeros(2, 1, 3, 3), tmp_path / "gray.png")
    assert Image.open(gray).mode == "L"
