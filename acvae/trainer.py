"""The acVAE family as one registered model ("acvae"): config, checks and the trainer per variant.

MODEL.VARIANT picks the model:
  cvae, cgan, cvaegan, crvaegan, acvaegan   attribute-conditioned CelebA faces (wacv19_acVAE);
                                            the last three grow to 128 px with MODEL.STAGE: 2
  mnist_baseline, mnist_conv, mnist_lstm    crVAE's MNIST ablation (crVAE repo)
Defaults are the wacv19 README's acvaegan stage-1 command; cfg/*.yml set each experiment.
"""
from __future__ import annotations

from acvae.sampling import add_sample_args, eval_samples, sample
from common import data
from common.config import require_at_least
from common.errors import ConfigError
from common.models import ModelSpec

NAME = "acvae"
CELEBA_VARIANTS = ("cvae", "cgan", "cvaegan", "crvaegan", "acvaegan")
MNIST_VARIANTS = ("mnist_baseline", "mnist_conv", "mnist_lstm")
GROWING = ("cvaegan", "crvaegan", "acvaegan")

DEFAULTS = {
    "DATA": data.defaults("celeba", image_size=64, root="data/celeba"),
    "MODEL": {
        "VARIANT": "acvaegan",
        "STAGE": 1,                # 1: 64 px; 2: 128 px grown from MODEL.STAGE1_CKPT
        "STAGE1_CKPT": "",         # stage 2: the stage-1 checkpoint or run directory
        "BASE_CHANNELS": 32,       # C (-baseChannels)
        "LATENT_CHANNELS": 64,     # z (-nf): the latent is z x 4 x 4 = 1024 values
        "TIME_STEPS": 8,           # T (-timeStep): channel groups of the recurrent latent
        "ATTR_DIM": 40,            # A (-attrDim)
        "BN_EPS": 1.0e-6,          # -eps (opts default 1e-5; every README command 1e-6)
        "BN_MOMENTUM": 0.9,        # -mom (opts default 0.1; every README command 0.9)
        "CONV_BIAS": True,         # -bias
    },
    "TRAIN": {
        "BATCH_SIZE": 128,
        "EPOCHS": 150,
        "LR": 1.0e-3,              # -LR
        "BETA1": 0.5,              # -beta1: only the D-side modules; all others use 0.9
        "LR_STEP": 60,             # -step: LR *= LR_DECAY after every LR_STEP epochs
        "LR_DECAY": 0.5,           # -decayLR
        "LR_MULT": 1.0,            # -LR_mult: stage 2, for the modules taken from stage 1
        "MAX_ALPHA": 1.0,          # -max_alpha: cap of the stage-2 fade-in
        "ALPHA": 3.0e-4,           # KL weight (cvae, cvaegan, MNIST)
        "ALPHA1": 3.0e-4,          # KL weight of the first 3 of 8 time steps (cr/ac)
        "ALPHA2": 2.0e-4,          # KL weight of the other steps (cr/ac)
        "BETA": 2.5e-3,            # GAN weight on the generator
        "KAPPA": 0.01,             # latent-reconstruction weight on the generator
        "RHO": 0.05,               # attention doubly-stochastic weight (acvaegan)
        "RHO_ENT": 0.05,           # attention entropy weight (acvaegan)
        "MARGIN": 0.1,             # skip the D update when its error rate is below this
        "FAKE_LABEL": 4,           # period of the mixed D batch (one real in four)
        "GRAD_CLIP": 5.0,          # elementwise clamp of the LSTM (and acvae prior) gradients
    },
    "FIX": {                       # reference-code bugs: false = the original's behaviour
        "CVAE_PRIOR_ADAM": False,  # cvae: a real Adam state for the prior (was nil: sign steps)
        "CGAN_SINGLE_D_STEP": False,  # cgan: one D step per iteration (was two, same gradient)
        "GATE_WHOLE_D": False,     # cr/ac: a closed margin gate stops every D-side update
    },
    "VIS": {"N": 64, "SPLIT": "val"},   # the fixed batch of the tick pictures
    "NLL": {                       # MNIST likelihood (scripts/acvae_eval_nll.py)
        "SAMPLES": [5, 100, 10000],
        "BATCH_SIZE": 128,
        "CHUNK": 100,              # importance samples evaluated together per batch
        "STATIC_TEST": "",         # Larochelle's binarized_mnist_test.amat (or .t7)
        "BINARIZE_SEED": 0,        # otherwise: the official test set binarised once, this seed
        "FULL_TEST": False,        # all 10,000 images (the original: floor(10000/B)*B = 9984)
        # model selection during training: after every epoch the EPOCH_SAMPLES-sample NLL;
        # the best epoch is kept as checkpoints/best.pt, which acvae_eval_nll.py scores by default
        "SELECT_ON": "test",       # test (the original; optimistic) | heldout | none
        "EPOCH_SAMPLES": 5,        # -nSample
        "HELDOUT": 10000,          # SELECT_ON heldout: training digits held out to select on
    },
    "RUN": {"SEED": 196, "SAMPLE_EVERY": 1000, "CKPT_EVERY": 1000, "LOG_EVERY": 50},
}
CHOICES = {
    "MODEL.VARIANT": CELEBA_VARIANTS + MNIST_VARIANTS,
    "MODEL.STAGE": (1, 2),
    "MODEL.TIME_STEPS": (2, 4, 8),
    "NLL.SELECT_ON": ("test", "heldout", "none"),
}


def check_config(cfg) -> None:
    m, t = cfg.MODEL, cfg.TRAIN
    mnist = m.VARIANT in MNIST_VARIANTS
    kind = "mnist" if mnist else "celeba"
    if cfg.DATA.KIND != kind:
        raise ConfigError(f"MODEL.VARIANT {m.VARIANT} trains on DATA.KIND {kind}, not "
                          f"{cfg.DATA.KIND}", "DATA.KIND")
    size = 28 if mnist else 64 * m.STAGE
    if cfg.DATA.IMAGE_SIZE != size:
        raise ConfigError(f"DATA.IMAGE_SIZE must be {size} for {m.VARIANT} at stage {m.STAGE}, "
                          f"got {cfg.DATA.IMAGE_SIZE}", "DATA.IMAGE_SIZE")
    if cfg.DATA.CHANNELS != (1 if mnist else 3):
        raise ConfigError(f"DATA.CHANNELS must be {1 if mnist else 3} for {m.VARIANT}",
                          "DATA.CHANNELS")
    if m.STAGE == 2 and m.VARIANT not in GROWING:
        raise ConfigError(f"MODEL.STAGE 2 exists for {', '.join(GROWING)}, not {m.VARIANT}",
                          "MODEL.STAGE")
    require_at_least(cfg, 1, "MODEL.BASE_CHANNELS", "MODEL.LATENT_CHANNELS", "TRAIN.EPOCHS",
                     "TRAIN.LR_STEP")
    if m.LATENT_CHANNELS % m.TIME_STEPS or (8 * m.BASE_CHANNELS) % m.TIME_STEPS:
        raise ConfigError(f"MODEL.TIME_STEPS {m.TIME_STEPS} must divide LATENT_CHANNELS and "
                          "8 * BASE_CHANNELS", "MODEL.TIME_STEPS")
    if m.BASE_CHANNELS % 2:
        raise ConfigError("MODEL.BASE_CHANNELS must be even", "MODEL.BASE_CHANNELS")
    if m.ATTR_DIM != 40 and not mnist:
        raise ConfigError("MODEL.ATTR_DIM must be 40 (the CelebA attributes)", "MODEL.ATTR_DIM")
    if t.FAKE_LABEL < 3:
        raise ConfigError("TRAIN.FAKE_LABEL must be at least 3 (real, mismatched, sample and "
                          "reconstruction slots)", "TRAIN.FAKE_LABEL")
    if t.BATCH_SIZE < 2:
        raise ConfigError(f"TRAIN.BATCH_SIZE must be >= 2 (batch norm), got {t.BATCH_SIZE}",
                          "TRAIN.BATCH_SIZE")
    if mnist and min(cfg.NLL.SAMPLES, default=0) < 1:
        raise ConfigError(f"NLL.SAMPLES must be a list of positive counts, got "
                          f"{cfg.NLL.SAMPLES}", "NLL.SAMPLES")
    if mnist:
        require_at_least(cfg, 1, "NLL.BATCH_SIZE", "NLL.CHUNK")
    if mnist and cfg.NLL.SELECT_ON != "none" and cfg.NLL.EPOCH_SAMPLES < 1:
        raise ConfigError("NLL.EPOCH_SAMPLES must be at least 1", "NLL.EPOCH_SAMPLES")
    if mnist and cfg.NLL.SELECT_ON == "heldout" and cfg.NLL.HELDOUT < 1:
        raise ConfigError("NLL.HELDOUT must be at least 1 for NLL.SELECT_ON heldout",
                          "NLL.HELDOUT")
    if cfg.VIS.N < 1:
        raise ConfigError("VIS.N must be positive", "VIS.N")


def build(cfg, device):
    variant = cfg.MODEL.VARIANT
    if variant == "cvae":
        from acvae.train_vae import CVAETrainer as cls
    elif variant == "cvaegan":
        from acvae.train_vae import CVAEGANTrainer as cls
    elif variant == "cgan":
        from acvae.train_cgan import CGANTrainer as cls
    elif variant in ("crvaegan", "acvaegan"):
        from acvae.train_crvae import CRVAEGANTrainer as cls
    else:
        from acvae.train_mnist import MNISTTrainer as cls
    return cls(cfg, device)


SPEC = ModelSpec(NAME, DEFAULTS, build, CHOICES, check_config, add_sample_args=add_sample_args,
                 sample=sample, eval_samples=eval_samples)
