"""RP-GAN (Neyshabur, Bhojanapalli & Chakrabarti, 2017): one generator against K discriminators,
each seeing only a fixed random projection of the image. Registry name "rpgan".

One iteration, as the original train.py:
  G step: fresh z ~ U(-1, 1); loss = mean over k of the non-saturating loss
          mean_b softplus(-D_k(P_k(G(z)))); one Adam step on G (the D bank is not updated).
  D step: a new z, fakes from the just-updated G (detached), one real batch; loss = sum over k
          of 1/2 (mean_b softplus(-D_k(real)) + mean_b softplus(D_k(fake))). The K parameter
          blocks are disjoint and Adam acts element-wise with a step count shared by all of
          them, so one Adam over the bank equals the original's K separate Adams (proved in
          tests/rpgan/test_trainer.py).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from common import data
from common.config import require_at_least
from common import logging as log
from common.errors import ConfigError, DataError
from common.models import ModelSpec
from common.trainer import Phase, Trainer
from rpgan import sampling
from rpgan.models import Generator, full_image_discriminator, projected_discriminators
from rpgan.projection import IMPLS, draw_filters, load_filters_npz

NAME = "rpgan"
DEFAULTS = {
    "DATA": data.defaults("list_file", image_size=64, root="data/faces.txt",
                          options={"CROP": "center"}),
    "MODEL": {
        "Z_DIM": 100,            # zlen: latent size (dog12: 200)
        "G_WIDTH": 1024,         # f1: generator channels at 4x4 (dog12: 2048)
        "D_WIDTH": 128,          # df: channels of each discriminator's first layer
        "D_TYPE": "projected",   # projected (RP-GAN) | full (the single-D baseline, face1)
    },
    "PROJ": {
        "K": 48,                 # number of projections = number of discriminators
        "FILTERS": "",           # filts.npz of the original (exact reproduction); "" = draw
        "SEED": 0,               # seed of the drawn filters (scripts/rpgan_make_filters.py --seed)
        "SIZE": 8,               # filter size
        "STRIDE": 2,             # projection stride (padding (SIZE - STRIDE) / 2)
        "CHANNELS": 1,           # output channels of each projection
    },
    "TRAIN": {
        "BATCH_SIZE": 64,
        "LR": 2e-4,              # Adam, TF defaults otherwise
        "BETA1": 0.5,
        "BETA2": 0.999,
        "EPS": 1e-8,
        "D_IMPL": "bmm",         # bmm | grouped: how the K discriminators are batched
        "D_CHUNKS": 1,           # >1: evaluate K in chunks, recomputed in backward (less memory)
        "PER_D_STATS": True,     # report each discriminator's losses (per_d/*)
    },
    "RUN": {"MAX_ITERS": 100000, "CKPT_EVERY": 1000, "SAMPLE_EVERY": 1000},
}
CHOICES = {"MODEL.D_TYPE": ("projected", "full"), "TRAIN.D_IMPL": IMPLS}


def _power_of_two(n: int) -> bool:
    return n >= 1 and 2 ** int(math.log2(n)) == n


def check_config(cfg) -> None:
    size, p, t = cfg.DATA.IMAGE_SIZE, cfg.PROJ, cfg.TRAIN
    if cfg.DATA.CHANNELS != 3:
        raise ConfigError("DATA.CHANNELS must be 3 (RGB images)", "DATA.CHANNELS")
    if not _power_of_two(size) or size < 8:
        raise ConfigError(f"DATA.IMAGE_SIZE must be a power of two >= 8, got {size}",
                          "DATA.IMAGE_SIZE")
    if cfg.RUN.MAX_ITERS <= 0:
        raise ConfigError("RUN.MAX_ITERS must be positive (the paper trains 100000 iterations)",
                          "RUN.MAX_ITERS")
    if t.BATCH_SIZE < 2:
        raise ConfigError("TRAIN.BATCH_SIZE must be >= 2 (batch norm)", "TRAIN.BATCH_SIZE")
    require_at_least(cfg, 1, "PROJ.K", "MODEL.Z_DIM", "MODEL.G_WIDTH", "MODEL.D_WIDTH")
    if not 1 <= t.D_CHUNKS <= p.K:
        raise ConfigError(f"TRAIN.D_CHUNKS must be in 1..PROJ.K, got {t.D_CHUNKS}",
                          "TRAIN.D_CHUNKS")
    if cfg.MODEL.D_TYPE == "full":
        if p.K != 1:
            raise ConfigError("MODEL.D_TYPE full is the single-discriminator baseline: set "
                              f"PROJ.K to 1 (got {p.K})", "PROJ.K")
        return
    require_at_least(cfg, 1, "PROJ.CHANNELS", "PROJ.STRIDE")  # the projections' own keys
    if not 0 <= p.SEED < 2**32:  # numpy's RandomState draws the bank
        raise ConfigError(f"PROJ.SEED must be an integer from 0 to 2**32 - 1, got {p.SEED}",
                          "PROJ.SEED")
    if p.SIZE < p.STRIDE or (p.SIZE - p.STRIDE) % 2:
        raise ConfigError(f"PROJ.SIZE - PROJ.STRIDE must be even and >= 0 (got {p.SIZE}, "
                          f"{p.STRIDE})", "PROJ.SIZE")
    if size % p.STRIDE or not _power_of_two(size // p.STRIDE) or size // p.STRIDE < 4:
        raise ConfigError(f"DATA.IMAGE_SIZE / PROJ.STRIDE must be a power of two >= 4 (got "
                          f"{size} / {p.STRIDE})", "PROJ.STRIDE")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RPGANTrainer(Trainer):
    name = NAME
    cuda_graphs_safe = True  # the same kernels every iteration

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        m, p, t = cfg.MODEL, cfg.PROJ, cfg.TRAIN
        size = cfg.DATA.IMAGE_SIZE
        self.batch_size, self.z_dim, self.k = t.BATCH_SIZE, m.Z_DIM, p.K
        self.projected = m.D_TYPE == "projected"
        with torch.device(self.device):   # allocate and initialise on the device directly
            self.nets["G"] = Generator(m.Z_DIM, m.G_WIDTH, size)
            if self.projected:
                filters = draw_filters(p.K, p.SEED, p.SIZE, p.CHANNELS)
                bank = projected_discriminators(p.K, size, m.D_WIDTH, filters, p.CHANNELS,
                                                p.STRIDE, t.D_IMPL, t.D_CHUNKS)
            else:
                bank = full_image_discriminator(size, m.D_WIDTH, t.D_IMPL)
        self.nets["D"] = bank.to(self.device)
        self.filters_source = {"seed": p.SEED} if self.projected else {}
        fused = self.device.type == "cuda"   # one kernel for the 529 M weights of face48
        for name in ("G", "D"):
            self.optimizers[name] = torch.optim.Adam(
                self.nets[name].parameters(), t.LR, betas=(t.BETA1, t.BETA2), eps=t.EPS,
                fused=fused)

    # ---- data and fresh start ---------------------------------------------------------------
    def start_fresh(self) -> None:
        """Load the projection bank of PROJ.FILTERS (once: a resumed run keeps the
        checkpoint's filters)."""
        p = self.cfg.PROJ
        if not (self.projected and p.FILTERS):
            return
        path = Path(p.FILTERS).expanduser()
        filters, channels, stride = load_filters_npz(path)
        if filters.shape[0] != p.K * p.CHANNELS or (channels, stride) != (p.CHANNELS, p.STRIDE) \
                or filters.shape[-1] != p.SIZE:
            raise DataError(f"{path}: holds {filters.shape[0] // channels} filters of size "
                            f"{filters.shape[-1]}, {channels} channel(s), stride {stride}; the "
                            f"config asks for PROJ.K={p.K}, SIZE={p.SIZE}, "
                            f"CHANNELS={p.CHANNELS}, STRIDE={p.STRIDE}")
        self.nets["D"].set_filters(filters.to(self.device))
        self.filters_source = {"file": str(path), "sha256": _sha256(path)}
        log.log(f"projection filters: {p.K} from {path}")

    def extra_state(self) -> dict:
        return {"filters_source": dict(self.filters_source)}

    def load_extra_state(self, state: dict) -> None:
        self.filters_source = dict(state.get("filters_source", {}))
        # Training goes on: population statistics of the old weights would be stale.
        self.nets["G"].clear_population_statistics()

    # ---- one iteration ----------------------------------------------------------------------
    def phases(self):
        return [Phase("G", self.g_step, ["G"]), Phase("D", self.d_step, ["D"])]

    def noise(self, n: int) -> torch.Tensor:
        return torch.rand(n, self.z_dim, device=self.device) * 2 - 1

    def g_step(self, batch: dict):
        logits = self.nets["D"](self.nets["G"](self.noise(batch["image"].shape[0]))).float()
        per_d = F.softplus(-logits).mean(0)          # -log sigmoid(D_k): non-saturating
        self._report_per_d("G", per_d)
        # Only G's parameters get gradients: the bank's weight gradients are never computed.
        return {"G": per_d.mean()}

    def d_step(self, batch: dict):
        real = batch["image"]
        with torch.no_grad():
            fake = self.nets["G"](self.noise(real.shape[0]))
        logits = self.nets["D"](torch.cat([real, fake.to(real.dtype)])).float()
        b = real.shape[0]
        per_d = 0.5 * (F.softplus(-logits[:b]).mean(0) + F.softplus(logits[b:]).mean(0))
        self._report_per_d("D", per_d)
        log.report("loss/D_mean", per_d.mean())   # the original's printed D loss
        return per_d.sum()

    def _report_per_d(self, phase: str, per_d: torch.Tensor) -> None:
        if self.cfg.TRAIN.PER_D_STATS and self.k > 1:
            for k, value in enumerate(per_d.detach().unbind()):
                log.report(f"per_d/{phase}_L{k:02d}", value)

    # ---- pictures -----------------------------------------------------------------------------
    def generate(self, n: int, seed: int = 0, ema: bool = True,
                 population: bool = False) -> torch.Tensor:
        """n images of the seeded numpy latent pool (batch statistics over groups of 150)."""
        z = sampling.noise_pool(seed, n, self.z_dim)
        return sampling.render(self.nets["G"], z, population)


def build(cfg, device):
    return RPGANTrainer(cfg, device)


# ---- scripts/sample.py hooks ------------------------------------------------------------------
def add_sample_args(parser) -> None:
    parser.set_defaults(n=sampling.POOL, nrow=sampling.GRID_COLS)
    parser.add_argument("--bn", choices=("auto", "batch", "population"), default="auto",
                        help="batch norm with each batch's statistics (the original's "
                             "sample.py on a .gmodel, groups of 150) or with the stored "
                             "population statistics (scripts/rpgan_fixbn.py, or an import with "
                             "--bgmodel); auto: population where the checkpoint has them")


def uses_population(trainer: RPGANTrainer, bn: str) -> bool:
    """--bn auto: the fixed statistics once they exist (rpgan_fixbn.py, or a .bgmodel import)."""
    return bn == "population" or (bn == "auto" and
                                  trainer.nets["G"].has_population_statistics())


def sample(trainer: RPGANTrainer, args) -> dict:
    images = trainer.generate(args.n, args.seed, population=uses_population(trainer, args.bn))
    return {"samples": (images, args.nrow)}


def load_generator(run_or_ckpt, device: str = "cpu"):
    """(generator, checkpoint state, path) of an RP-GAN checkpoint or run directory, without
    building the discriminators (the tools only need G)."""
    from common import checkpoint, dist, models
    from common.errors import CheckpointError
    device = dist.resolve_device(device, "--device")
    path = checkpoint.resolve(run_or_ckpt)
    state = checkpoint.load(path)
    if state["model"] != NAME:
        raise CheckpointError(f"{path}: is a {state['model']!r} checkpoint, not {NAME!r}")
    cfg = models.load_config(models.module(NAME), state["config"], [], str(path))
    with torch.device(device):
        generator = Generator(cfg.MODEL.Z_DIM, cfg.MODEL.G_WIDTH, cfg.DATA.IMAGE_SIZE)
    try:
        generator.load_state_dict(state["nets"]["G"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"{path}: generator weights do not fit its config "
                              f"({str(err).splitlines()[0]})") from None
    return generator.to(device).eval(), state, path


SPEC = ModelSpec(NAME, DEFAULTS, build, CHOICES, check_config,
                 add_sample_args=add_sample_args, sample=sample)
