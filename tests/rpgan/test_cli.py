"""The command lines end to end on real CelebA faces: filters, training, resume, fixbn, sample,
interpolation."""
import runpy

import numpy as np
import torch
from PIL import Image

from common import checkpoint
from rpgan.projection import load_filters_npz

TINY = ["DATA.IMAGE_SIZE=32", "MODEL.Z_DIM=8", "MODEL.G_WIDTH=16", "MODEL.D_WIDTH=4",
        "PROJ.K=3", "TRAIN.BATCH_SIZE=4", "RUN.WORKERS=0", "RUN.LOG_EVERY=1",
        "RUN.PROGRESS=lines"]


def cell(grid: np.ndarray, index: int, nrow: int, size: int, pad: int = 2) -> np.ndarray:
    """Image `index` of a save_grid picture (padding 2)."""
    r, c = divmod(index, nrow)
    top, left = pad + r * (size + pad), pad + c * (size + pad)
    return grid[top:top + size, left:left + size].astype(int)


def test_train_resume_fixbn_sample_interp(cli, repo, shared_data, tmp_path):
    faces = sorted((shared_data / "celeba" / "img_align_celeba").glob("*.jpg"))
    (tmp_path / "faces.txt").write_text("".join(f"{p}\n" for p in faces))
    cli([repo / "scripts/rpgan_make_filters.py", "filts.npz", "--k", "3", "--seed", "5"], tmp_path)
    train = [repo / "scripts/train_rpgan.py", "--cfg", repo / "cfg/rpgan_face12.yml", "--out",
             "run", "--device", "cpu", "DATA.ROOT=faces.txt", "PROJ.FILTERS=filts.npz", *TINY]
    out = cli([*train, "--max-iters", "2"], tmp_path).stdout   # resume: see test_trainer.py
    assert "it 2/2" in out and "per_d/G_L02" in out
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    state = checkpoint.load(ckpt)
    assert state["counters"]["iteration"] == 2
    assert torch.equal(state["nets"]["D"]["filters"], load_filters_npz(tmp_path / "filts.npz")[0])

    cli([repo / "scripts/rpgan_fixbn.py", "run", "--n", "64"], tmp_path)
    assert int(checkpoint.load(ckpt)["nets"]["G"]["norms.0.population_count"]) == 64
    cli([repo / "scripts/sample.py", "run", "grid.png", "--seed", "2", "--bn", "population"],
        tmp_path)
    cli([repo / "scripts/rpgan_interp.py", "run", "interp.png", "17,33", "150,1", "--seed", "2"],
        tmp_path)
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    rows = np.asarray(Image.open(tmp_path / "interp.png"))
    assert grid.shape == (10 * 34 + 2, 15 * 34 + 2, 3)       # the original's 10 x 15 grid
    assert rows.shape == (2 * 34 + 2, 11 * 34 + 2, 3)        # 2 pairs x 11 steps
    for row, (a, b) in enumerate([(17, 33), (150, 1)]):
        left, right = cell(rows, row * 11, 11, 32), cell(rows, row * 11 + 10, 11, 32)
        assert np.abs(left - cell(grid, a - 1, 15, 32)).max() <= 1
        assert np.abs(right - cell(grid, b - 1, 15, 32)).max() <= 1
    assert np.abs(cell(rows, 5, 11, 32) - cell(grid, 16, 15, 32)).max() > 10  # it moves
    # outputs that cannot be written are one line, and the checkpoint stays as it was
    (tmp_path / "file").write_text("not a folder")
    before = ckpt.read_bytes()
    bad = cli([repo / "scripts/rpgan_interp.py", "run", ".", "17,33"], tmp_path, check=False)
    assert bad.returncode == 2 and "is a folder; expected an output file name" in bad.stderr
    bad = cli([repo / "scripts/rpgan_fixbn.py", "run", "--n", "8", "--out", "file/x.pt"],
              tmp_path, check=False)
    assert bad.returncode == 2 and "file/x.pt: the output file cannot be written here" in bad.stderr
    assert "Traceback" not in bad.stderr and ckpt.read_bytes() == before



def test_interp_names_bad_ids_in_one_line(repo, tmp_path, capsys):
    interp = runpy.run_path(str(repo / "scripts/rpgan_interp.py"), run_name="interp")
    assert interp["main"]([str(tmp_path), "x.png", "1,200"]) == 2
    assert "outside 1..150" in capsys.readouterr().err
