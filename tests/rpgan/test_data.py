"""RP-GAN's list file with the original's crop rule (the `random` crop of common.data)."""
import numpy as np
import torch

from common import data
from common.data.transforms import short_side_random_crop, tf_legacy_resize


def test_tf_legacy_bilinear_resize_by_hand():
    x = torch.arange(12, dtype=torch.float32).view(1, 3, 4)   # rows 0..2, columns 0..3
    out = tf_legacy_resize(x, 2, 3)
    # source coordinate = index * in / out, no half-pixel offset: rows 0, 1.5; cols 0, 4/3, 8/3
    rows = np.array([0.0, 1.5])
    cols = np.array([0.0, 4 / 3, 8 / 3])
    expect = rows[:, None] * 4 + cols[None, :]   # x[r, c] = 4 r + c is bilinear itself
    assert np.allclose(out[0].numpy(), expect, atol=1e-5)
    up = tf_legacy_resize(x, 6, 8)   # beyond the last pixel TF clamps (edge replicated)
    assert float(up[0, -1, -1]) == 11.0 and float(up[0, 0, 0]) == 0.0


def test_short_side_plus_one_then_random_crop():
    x = torch.rand(3, 218, 178) * 2 - 1
    torch.manual_seed(0)
    crops = [short_side_random_crop(x, 128) for _ in range(20)]
    assert all(c.shape == (3, 128, 128) for c in crops)
    assert len({c[0, 0, :3].sum().item() for c in crops}) > 1   # the window moves
    # the scaled image is (129 / 178) * (218, 178) -> (157, 129): windows inside it
    full = tf_legacy_resize(x, 157, 129)
    torch.manual_seed(1)
    c = short_side_random_crop(x, 128)
    torch.manual_seed(1)
    top, left = int(torch.randint(30, ())), int(torch.randint(2, ()))
    assert torch.equal(c, full[:, top:top + 128, left:left + 128])


def test_list_file_with_random_crop_on_celeba(shared_data, tmp_path):
    folder = shared_data / "celeba" / "img_align_celeba"
    names = sorted(p.name for p in folder.glob("*.jpg"))[:4]
    lst = tmp_path / "faces.txt"
    lst.write_text("".join(f"{n}\n" for n in names))
    cfg = data.defaults("list_file", image_size=64, root=str(lst),
                        options={"CROP": "random", "BASE_DIR": str(folder)})
    ds = data.build(cfg)
    item = ds[0]
    assert len(ds) == 4 and item["image"].shape == (3, 64, 64)
    assert -1 <= float(item["image"].min()) and float(item["image"].max()) <= 1
