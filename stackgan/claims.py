"""Measures of the StackGAN claim (cfg/claims/stackgan_stages.yml): are the higher stages' images
no worse than the lower ones', scored by one extractor against the same real birds?

prepare_birds: caption embeddings of the CUB captions (scripts/stackgan_embed_captions.py, char-ngram; the
published char-CNN-RNN pickles are not in the data folder), written once into the claim's folder.
branches: FD of StackGAN++'s 64, 128 and 256 px branch outputs of the same samples (fd_64, ...),
and the gains fd_64 - fd_128 and fd_128 - fd_256 (>= 0: the higher branch is no worse).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common.errors import DataError
from common.metrics import image_sets
from common.reproduce.scoring import NAMES, Measured
from stackgan.v2 import config as v2_config
from stackgan.v2 import sampling as v2_sampling

REPO = Path(__file__).resolve().parents[1]


def prepare_birds(out: Path, data_dir: Path) -> dict:
    """{birds: folder of the embeddings and shortened pickles, cub: CUB_200_2011, text: captions}."""
    cub = data_dir / "cub"
    birds = out / "birds"
    if not (birds / "test" / "char-ngram-embeddings.pickle").is_file():
        cmd = [sys.executable, str(REPO / "scripts" / "stackgan_embed_captions.py"), "--data-dir",
               str(cub / "birds"), "--out", str(birds), "--only-present"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise DataError(f"{cub / 'birds'}: embedding the captions failed: "
                            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return {"birds": str(birds), "cub": str(cub / "CUB_200_2011"), "text": str(cub / "birds" / "text")}


def branches(ctx) -> Measured:
    if ctx.trainer.name != v2_config.NAME:     # the v1 arms have one output each
        return Measured()
    images = v2_sampling.generate_images(ctx.trainer, ctx.budget.n, seed=0)
    evaluator = ctx.evaluator(ctx.recipe.protocol, ("fid",))
    values, records = {}, []
    for branch in images:
        size = branch.shape[-1]
        found = evaluator.run_images(image_sets.from_array(
            branch.float().cpu().numpy(), {"path": f"{ctx.run.arm.name} branch {size} px"}))
        for record in found:
            values[f"{NAMES.get(record['metric'], record['metric'])}_{size}"] = record["value"]
        records.extend(found)
    sizes = [b.shape[-1] for b in images]
    for low, high in zip(sizes, sizes[1:]):
        values[f"fd_gain_{high}"] = values[f"fd_{low}"] - values[f"fd_{high}"]
    return Measured(values=values, records=records)
