"""Tiny acVAE-family trainers and batches for the tests (no data files needed)."""
import torch

from common import models
from common.train import Loop
from common.trainer import Progress

TINY = ["MODEL.BASE_CHANNELS=4", "MODEL.LATENT_CHANNELS=16", "MODEL.TIME_STEPS=8",
        "TRAIN.BATCH_SIZE=8", "VIS.N=4", "RUN.WORKERS=0"]


def config(variant: str, stage: int = 1, extra=()):
    mod = models.module("acvae")
    overrides = [f"MODEL.VARIANT={variant}", f"MODEL.STAGE={stage}", *TINY]
    if variant.startswith("mnist"):
        overrides += ["DATA.KIND=mnist", "DATA.IMAGE_SIZE=28", "DATA.CHANNELS=1",
                      "DATA.ROOT=unused"]
    else:
        overrides += [f"DATA.IMAGE_SIZE={64 * stage}", "DATA.ROOT=unused"]
    return models.load_config(mod, None, overrides + list(extra))


def trainer(variant: str, stage: int = 1, extra=(), seed: int = 0):
    torch.manual_seed(seed)
    return models.module("acvae").build(config(variant, stage, extra), torch.device("cpu"))


def batch(tr, n: int = 8, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    size, ch = tr.size, tr.channels
    out = {"image": torch.rand(n, ch, size, size, generator=g) * 2 - 1}
    if ch == 3:
        out["attributes"] = torch.randint(0, 2, (n, tr.A), generator=g).float() * 2 - 1
    return out


def one_iteration(tr, tmp_path, b=None, iteration: int = 1, iters_per_epoch: int = 5) -> Loop:
    """Run one iteration through the common loop's own phase runner."""
    loop = Loop(tr, tmp_path, None)
    loop.phases = tr.phases()
    loop.finite = {p.name: torch.ones((), dtype=torch.bool) for p in loop.phases}
    loop.progress = tr.progress = Progress(iteration, 0, 0, 100, iters_per_epoch)
    tr.set_epoch(0)
    loop.iteration(b if b is not None else batch(tr))
    return loop


def snapshot(net) -> list:
    return [p.detach().clone() for p in net.parameters()]


def changed(before: list, net) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
