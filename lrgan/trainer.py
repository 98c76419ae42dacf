"""LR-GAN training: the model module the common loop drives (docs/adding_a_model.md).

One iteration is the original's: a D step on a real batch and on one fresh fake batch (each
through D on its own, so BatchNorm sees real-only and fake-only batches), then a G step that
reuses that same fake batch. Non-saturating BCE (TRAIN.LOSS: the original's sigmoid + BCELoss or
BCE with logits, common/losses.py), Adam 2e-4 (0.5, 0.999), batch 64, 1:1 updates.
"""
from __future__ import annotations

import contextlib

import torch

from common import data, losses
from common.errors import ConfigError
from common.logging import report
from common.models import ModelSpec
from common.trainer import Phase, Trainer, preserved_buffers
from lrgan import decompose, init
from lrgan.discriminator import Discriminator
from lrgan.models import SIZES, Generator, Layers, trunk_channels

NAME = "lrgan"
DEFAULTS = {
    "DATA": data.defaults("layered_scenes", image_size=32, channels=3),
    "MODEL": {
        "NZ": 100,                # noise size per step
        "NGF": 64,                # generator width (CUB: 128)
        "NDF": 64,                # discriminator width (CUB: 128)
        "NTIMESTEP": 2,           # 1 background + (NTIMESTEP - 1) foreground steps
        "MAXOBJSCALE": 1.2,       # lower bound of the inverse scale; objects span 1/s of the canvas
        "ROT": 0.1,               # bound of the two off-diagonal pose entries
        "TRANSLATION": 1.0,       # bound of the two translation entries (original HEAD: 1)
        "CHANNEL_FLOOR": 64,      # trunk channels never drop below this (original: 64)
        "BG_NOISE": "raw",        # raw: G_b gets z_0 (the code) | lstm: G_b gets h_0 (the paper)
        "INIT": "legacy",         # legacy: PyTorch 0.2 defaults, BN weights ~ U(0,1) | modern
        "MASK_GRAD": "original",  # STNM grid gradient: original (kernel, no mask term) | full
        "STNM_IMPL": "auto",      # auto | ext | ref
    },
    "TRAIN": {
        "BATCH_SIZE": 64,
        "EPOCHS": 100,
        "LR": 2e-4,
        "BETA1": 0.5,
        "BETA2": 0.999,
        "SAMPLE_BN": "batch",     # batch: BN batch statistics when sampling (original) | running
        "DECOMPOSE_ROWS": 16,     # samples shown in the decomposition grid at each sample tick
        "LOSS": "sigmoid_bce",    # sigmoid_bce: sigmoid + BCELoss (original; its backward damps
                                  # the gradient for logits < -27.6) | logits: BCE with logits
    },
    "RUN": {"SAMPLE_EVERY": 1000, "CKPT_EVERY": 1000, "LOG_EVERY": 100},
}
CHOICES = {
    "MODEL.BG_NOISE": ("raw", "lstm"),
    "MODEL.INIT": init.MODES,
    "MODEL.MASK_GRAD": ("original", "full"),
    "MODEL.STNM_IMPL": ("auto", "ext", "ref"),
    "TRAIN.SAMPLE_BN": ("batch", "running"),
    "TRAIN.LOSS": losses.FORMS,
    "DATA.IMAGE_SIZE": SIZES,
}


def check_config(cfg) -> None:
    m = cfg.MODEL
    positive = {"MODEL.NZ": m.NZ, "MODEL.NGF": m.NGF, "MODEL.NDF": m.NDF,
                "MODEL.NTIMESTEP": m.NTIMESTEP, "MODEL.CHANNEL_FLOOR": m.CHANNEL_FLOOR,
                "MODEL.MAXOBJSCALE": m.MAXOBJSCALE, "TRAIN.BATCH_SIZE": cfg.TRAIN.BATCH_SIZE,
                "TRAIN.EPOCHS": cfg.TRAIN.EPOCHS, "TRAIN.LR": cfg.TRAIN.LR}
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}", key)
    for key in ("ROT", "TRANSLATION"):
        if m[key] < 0:
            raise ConfigError(f"MODEL.{key} must be >= 0, got {m[key]}", f"MODEL.{key}")
    if m.NTIMESTEP > 2:
        size, floor = cfg.DATA.IMAGE_SIZE, m.CHANNEL_FLOOR
        bg = trunk_channels(4 * m.NGF, 2 * m.NGF, size, floor)
        fg = trunk_channels(8 * m.NGF, 4 * m.NGF, size, floor)
        if bg != fg:
            raise ConfigError(
                f"MODEL.NTIMESTEP {m.NTIMESTEP} > 2 needs the background and foreground trunks to "
                f"end with the same channel count (here {bg} and {fg}); with the original's "
                "layer rules that is 64 px with NGF 64 (MNIST-TWO)", "MODEL.NTIMESTEP")


def build_generator(cfg) -> Generator:
    m = cfg.MODEL
    return Generator(cfg.DATA.IMAGE_SIZE, cfg.DATA.CHANNELS, m.NZ, m.NGF, m.NTIMESTEP,
                     m.MAXOBJSCALE, m.ROT, m.TRANSLATION, m.BG_NOISE, m.MASK_GRAD, m.STNM_IMPL,
                     m.CHANNEL_FLOOR)


@contextlib.contextmanager
def batch_statistics(net: torch.nn.Module, enabled: bool):
    """Sample with BatchNorm in batch-statistics mode, as the original did, leaving the net's
    mode and running statistics exactly as they were."""
    if not enabled:
        yield
        return
    was_training = net.training
    with preserved_buffers({"G": net}):
        net.train()
        try:
            yield
        finally:
            net.train(was_training)


def concat_layers(parts: list[Layers]) -> Layers:
    """Join the Layers of consecutive chunks of samples."""
    def join(lists):
        return [torch.cat(items) for items in zip(*lists)]
    return Layers(final=torch.cat([p.final for p in parts]),
                  canvases=join([p.canvases for p in parts]), fgs=join([p.fgs for p in parts]),
                  masks=join([p.masks for p in parts]), poses=join([p.poses for p in parts]),
                  thetas=join([p.thetas for p in parts]))


class LRGANTrainer(Trainer):
    name = NAME
    cuda_graphs_safe = True  # the same kernels every iteration (the STNM op included)

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.batch_size, self.epochs = cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.EPOCHS
        self.nz, self.steps = cfg.MODEL.NZ, cfg.MODEL.NTIMESTEP
        self.nets["G"] = init.initialise(build_generator(cfg), cfg.MODEL.INIT).to(device)
        self.nets["D"] = init.initialise(
            Discriminator(cfg.DATA.IMAGE_SIZE, cfg.DATA.CHANNELS, cfg.MODEL.NDF),
            cfg.MODEL.INIT).to(device)
        t = cfg.TRAIN
        for name in ("D", "G"):
            self.optimizers[name] = torch.optim.Adam(self.nets[name].parameters(), t.LR,
                                                     betas=(t.BETA1, t.BETA2))
        self._fake = None

    def phases(self):
        return [Phase("D", self.d_step, ["D"]), Phase("G", self.g_step, ["G"])]

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(self.steps, n, self.nz, generator=generator, device=self.device)

    # ---- the two phases -------------------------------------------------------------------
    def d_step(self, batch):
        real = batch["image"]
        layers = self.nets["G"](self.noise(real.shape[0]))
        self._fake = layers.final
        d_real = self.nets["D"](real)
        d_fake = self.nets["D"](layers.final.detach())
        form = self.cfg.TRAIN.LOSS
        loss = losses.bce(d_real, 1.0, form) + losses.bce(d_fake, 0.0, form)
        report("D/real", torch.sigmoid(d_real.detach()).mean())
        report("D/fake", torch.sigmoid(d_fake.detach()).mean())
        self.report_layers(layers)
        return loss

    def g_step(self, batch):
        fake, self._fake = self._fake, None   # the D step's fakes, as in the original
        d_fake = self.nets["D"](fake)
        return losses.bce(d_fake, 1.0, self.cfg.TRAIN.LOSS)

    @staticmethod
    def report_layers(layers: Layers) -> None:
        """Per-step mask coverage and pose: a collapse to all-background (mask -> 0) or
        all-foreground (mask -> 1) shows here first; nothing in the loss prevents either
        (docs/lrgan.md, "Training on the paper's datasets")."""
        for t, (mask, pose) in enumerate(zip(layers.masks, layers.poses), start=1):
            pose = pose.detach()
            report(f"layers/mask{t}", mask.detach().mean())
            report(f"layers/scale{t}", pose[:, 0::4].mean())  # x_s, y_s (slices: no host copy)
            report(f"layers/shift{t}", pose[:, 2::3].abs().mean())  # x_t, y_t

    # ---- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def generate_layers(self, n: int, seed: int = 0) -> Layers:
        """All layers of n samples from seeded noise, in chunks of the training batch size."""
        g = torch.Generator(device=self.device).manual_seed(seed)
        z = self.noise(n, g)
        net = self.sampling_net()
        parts = []
        with batch_statistics(net, self.cfg.TRAIN.SAMPLE_BN == "batch"):
            for start in range(0, n, self.batch_size):
                parts.append(net(z[:, start:start + self.batch_size]))
        return parts[0] if len(parts) == 1 else concat_layers(parts)

    def generate(self, n: int, seed: int = 0, ema: bool = True) -> torch.Tensor:
        return self.generate_layers(n, seed).final

    def snapshot_images(self):
        layers = self.generate_layers(64, self.cfg.RUN.SEED)
        pictures = {"fakes": (layers.final, 8)}
        if self.steps > 1:
            pictures["decomposition"] = decompose.decomposition(
                layers, self.cfg.TRAIN.DECOMPOSE_ROWS, self.cfg.MODEL.STNM_IMPL)
        return pictures


def build(cfg, device):
    return LRGANTrainer(cfg, device)


# ---- scripts/sample.py hooks ------------------------------------------------------------------
def add_sample_args(parser) -> None:
    g = parser.add_argument_group("LR-GAN")
    g.add_argument("--decompose", type=int, nargs="?", const=16, default=0, metavar="ROWS",
                   help="also write the layer decomposition of the first ROWS samples (default "
                        "16): background, then per step fg, mask, warped fg, warped mask, canvas")
    g.add_argument("--layers", action="store_true",
                   help="also write one grid per layer (background, fg_t, mask_t, warped, "
                        "canvas_t), the paper's side-by-side figure")


def sample(trainer: LRGANTrainer, args) -> dict:
    layers = trainer.generate_layers(args.n, args.seed)
    pictures = {"samples": (layers.final, args.nrow)}
    if args.decompose and trainer.steps > 1:
        pictures["decomposition"] = decompose.decomposition(layers, args.decompose,
                                                            trainer.cfg.MODEL.STNM_IMPL)
    if args.layers:
        for name, images in decompose.layer_images(layers, trainer.cfg.MODEL.STNM_IMPL).items():
            pictures[name] = (images, args.nrow)
    return pictures


SPEC = ModelSpec(NAME, DEFAULTS, build, CHOICES, check_config,
                 add_sample_args=add_sample_args, sample=sample)
