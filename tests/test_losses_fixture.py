"""Every model's first iterations at tiny width on the CPU give the recorded losses (a fixture
kept so that a restructuring can show it changed no behaviour).

The configs are the shipped ones with tiny widths, run through each model's training command
line on the real data (StackGAN: a tiny birds folder over real CUB pictures). Re-record after an
intended change with
    GANREPRO_RECORD_LOSSES=1 python -m pytest -q tests/test_losses_fixture.py
"""
import json
import math
import os
from pathlib import Path

import pytest

from common import cli
from tests.common.data.textdata import tiny_birds

FIXTURE = Path(__file__).parent / "fixtures" / "losses.json"
ITERS = 3
RUN = ["--device", "cpu", "--max-iters", str(ITERS), "RUN.LOG_EVERY=1", "RUN.WORKERS=0",
       "RUN.THREADS=1", "RUN.SAMPLE_EVERY=0", "RUN.PROGRESS=lines"]
LRGAN = ["MODEL.NGF=8", "MODEL.NDF=8", "MODEL.CHANNEL_FLOOR=8", "TRAIN.BATCH_SIZE=8"]
CRVAE = ["MODEL.BASE_CHANNELS=4", "MODEL.LATENT_CHANNELS=8", "TRAIN.BATCH_SIZE=8",
         "NLL.SELECT_ON=none"]
FACES = ["DATA.ROOT={data}/celeba", "DATA.OPTIONS.IMAGES=img_align_celeba_89x109",
         "DATA.OPTIONS.MISSING=skip"]
ACVAE = ["MODEL.BASE_CHANNELS=2", "MODEL.LATENT_CHANNELS=8", "TRAIN.BATCH_SIZE=4", "VIS.N=4",
         *FACES]
RPGAN = ["MODEL.G_WIDTH=16", "MODEL.Z_DIM=8", "TRAIN.BATCH_SIZE=8", "MODEL.D_WIDTH=4",
         "DATA.KIND=celeba", "DATA.OPTIONS.CROP=squash", *FACES]
BIRDS = ["DATA_DIR={birds}", "DATASET.CUB_DIR={cub}", "TEXT.DIMENSION=16", "GAN.GF_DIM=4",
         "GAN.DF_DIM=2", "GAN.R_NUM=1", "TRAIN.BATCH_SIZE=2"]
V1 = [*BIRDS, "Z_DIM=10", "GAN.CONDITION_DIM=6"]

# name: (model, config, overrides); a case may name an earlier one's run as {run:NAME}
CASES = {
    "lrgan_mnist_one": ("lrgan", "lrgan_mnist_one", ["DATA.ROOT={data}/mnist", *LRGAN]),
    "lrgan_mnist_one_t1": ("lrgan", "lrgan_mnist_one",
                           ["DATA.ROOT={data}/mnist", "MODEL.NTIMESTEP=1", *LRGAN]),
    "crvae_mnist_baseline": ("acvae", "crvae_mnist_baseline", ["DATA.ROOT={data}/mnist", *CRVAE]),
    "crvae_mnist_conv": ("acvae", "crvae_mnist_conv", ["DATA.ROOT={data}/mnist", *CRVAE]),
    "crvae_mnist_lstm": ("acvae", "crvae_mnist_lstm", ["DATA.ROOT={data}/mnist", *CRVAE]),
    "acvae_celeba64_acvaegan": ("acvae", "acvae_celeba64_acvaegan", ACVAE),
    "acvae_celeba64_cvaegan": ("acvae", "acvae_celeba64_cvaegan", ACVAE),
    "acvae_celeba64_crvaegan": ("acvae", "acvae_celeba64_crvaegan", ACVAE),
    "acvae_celeba64_cvae": ("acvae", "acvae_celeba64_cvae", ACVAE),
    "acvae_celeba64_cgan": ("acvae", "acvae_celeba64_cgan", ACVAE),
    "rpgan_face12": ("rpgan", "rpgan_face12", ["PROJ.K=3", *RPGAN]),
    "rpgan_face1": ("rpgan", "rpgan_face1", RPGAN),
    "stackgan_birds_s1": ("stackgan_v1", "birds_s1", V1),
    "stackgan_birds_s2": ("stackgan_v1", "birds_s2", [*V1, "STAGE1_G={run:stackgan_birds_s1}"]),
    "stackgan2_birds_3stages": ("stackgan_v2", "birds_3stages",
                                [*BIRDS, "GAN.Z_DIM=6", "GAN.EMBEDDING_DIM=4"]),
    "features_mnist": ("feature_net", "features_mnist",
                       ["DATA.ROOT={data}/mnist", "MIX.ROOT={data}/mnist", "NET.WIDTH=4",
                        "TRAIN.BATCH_SIZE=8"]),
}
SCRIPTS = {"feature_net": "common.metrics.feature_net"}  # the others by their registered name


CLOCK = ("time", "img_per_s", "mem_gb")  # the only logged values that may vary between runs


def losses(run_dir: Path) -> list[dict]:
    """Per iteration, every logged value: the phases' losses, their parts, the statistics."""
    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in CLOCK} for row in rows]


@pytest.fixture(scope="module")
def runs(repo, shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("losses")
    birds = tiny_birds(root / "data", shared_data / "cub")
    values = {"data": str(shared_data), "birds": str(birds),
              "cub": str(shared_data / "cub" / "CUB_200_2011")}
    done = {}

    def run(name: str) -> list[dict]:
        if name not in done:
            model, cfg, overrides = CASES[name]
            args = []
            for o in overrides:
                if "{run:" in o:
                    other = o.split("{run:")[1].rstrip("}")
                    run(other)
                    o = o.split("{run:")[0] + str(root / other)
                args.append(o.format(**values))
            argv = ["--cfg", str(repo / "cfg" / f"{cfg}.yml"), "--out", str(root / name),
                    *RUN, *args]
            assert cli.train_main(SCRIPTS.get(model, model), argv) == 0, name
            done[name] = losses(root / name)
        return done[name]
    return run


def test_every_model_gives_the_recorded_losses(runs):
    measured = {name: runs(name) for name in CASES}
    if os.environ.get("GANREPRO_RECORD_LOSSES") == "1":
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"recorded {FIXTURE}")
    recorded = json.loads(FIXTURE.read_text())
    assert sorted(measured) == sorted(recorded)
    for name, rows in measured.items():
        assert len(rows) == ITERS and all(rows), name
        for it, (got, want) in enumerate(zip(rows, recorded[name]), 1):
            assert sorted(got) == sorted(want), (name, it)
            for key, value in got.items():
                # same code, same machine: equal; another CPU's kernels may round differently
                assert math.isclose(value, want[key], rel_tol=1e-5, abs_tol=1e-7), (
                    name, it, key, value, want[key])
