"""StackGAN++ configuration: the original keys and defaults, the ganrepro additions, checks.

The config keeps the original key names, so an original yml loads unchanged. The keys that steered
the original's own loop map onto the common loop as follows (see docs/stackgan_v2.md):
  TRAIN.MAX_EPOCH          -> the run length in epochs (RUN.MAX_ITERS > 0 overrides it)
  TRAIN.SNAPSHOT_INTERVAL  -> RUN.SNAPSHOT_EVERY, RUN.CKPT_EVERY and RUN.SAMPLE_EVERY when those
                              are -1 (their default here)
  TRAIN.BATCH_SIZE         -> per process (per GPU, as the original's per-GPU batch); the
                              global batch is BATCH_SIZE x the number of torchrun processes
  WORKERS                  -> RUN.WORKERS when that is -1
  GPU_ID, CUDA             -> accepted and ignored: the device is RUN.DEVICE / --device, several
                              GPUs are torchrun processes (CUDA_VISIBLE_DEVICES picks them)
  TRAIN.NET_G / NET_D      -> weights to start from (original .pth or a ganrepro checkpoint);
                              TRAIN.FLAG False evaluates NET_G
"""
from __future__ import annotations

from common.config import require_at_least
from common.errors import ConfigError
from common.losses import FORMS
from stackgan import text_data

NAME = "stackgan_v2"   # was "stackgan2": common/models.py ALIASES

DEFAULTS = {
    "CONFIG_NAME": "",            # name of the experiment (informational)
    "DATASET_NAME": "birds",      # unconditional data: images in <DATA_DIR>/<DATASET_NAME>_train
    "EMBEDDING_TYPE": "cnn-rnn",  # which caption-embedding file of a text dataset to read
    "DATA_DIR": "",               # dataset root; 'birds' in it turns on the CUB bbox crop
    "GPU_ID": "0",                # accepted and ignored (see the module docstring)
    "CUDA": True,                 # accepted and ignored
    "WORKERS": 6,                 # data loader workers (copied to RUN.WORKERS when that is -1)
    "TREE": {
        "BRANCH_NUM": 3,          # branches and discriminators: 64, 128, 256 (4, 5: 512, 1024)
        "BASE_SIZE": 64,          # first-branch resolution (the networks are built for 64)
    },
    "TEST": {
        "B_EXAMPLE": True,        # evaluation writes grids (True) or single images (False)
        "SAMPLE_NUM": 30000,      # images for unconditional evaluation
        "ALL_BRANCHES": False,    # also write the 64/128 images (the original wrote only 256)
    },
    "TRAIN": {
        "BATCH_SIZE": 64,         # per process (= per GPU)
        "VIS_COUNT": 64,          # images per sample grid
        "MAX_EPOCH": 600,
        "SNAPSHOT_INTERVAL": 2000,  # iterations between snapshots (0 = only at the end)
        "DISCRIMINATOR_LR": 2e-4,
        "GENERATOR_LR": 2e-4,
        "FLAG": True,             # False = evaluate TRAIN.NET_G instead of training
        "NET_G": "",              # generator weights: start from / evaluate
        "NET_D": "",              # discriminator weights: prefix of <prefix>0.pth ... or a .pt
        "COEFF": {
            "KL": 2.0,            # weight of the element-wise-mean KL term
            "UNCOND_LOSS": 0.0,   # lambda_u of the unconditional D head (birds: 1.0)
            "COLOR_LOSS": 0.0,    # alpha of colour consistency (unconditional ymls: 50.0)
        },
        "EMA_DECAY": 0.999,       # moving average of G's parameters (hard-coded originally)
        "EMA_WRITE_BACK": True,   # True: the original's copy of the average into the live G at
                                  # every snapshot | False: the live G never takes the average
        "LOSS": "sigmoid_bce",    # sigmoid_bce: sigmoid + BCELoss (original; its backward damps
                                  # the gradient for logits < -27.6) | logits: BCE with logits
    },
    "GAN": {
        "EMBEDDING_DIM": 128,     # C, the condition size
        "DF_DIM": 64,
        "GF_DIM": 64,
        "Z_DIM": 100,
        "NETWORK_TYPE": "default",  # unused in the original, which has one network type:
                                    # any other value is refused rather than ignored
        "R_NUM": 2,               # residual blocks of the 128 and 256 branches
        "B_CONDITION": False,     # text-conditional (True) or unconditional (False)
    },
    "TEXT": {"DIMENSION": 1024},  # size of the caption embeddings
    "DATASET": {                  # ganrepro additions: where a text dataset's files are
        "BBOX_CROP": "auto",      # auto ('birds' in DATA_DIR, the original rule) | always | never
        "CUB_DIR": "",            # CUB_200_2011 folder (default <DATA_DIR>/CUB_200_2011)
        "IMAGE_DIR": "",          # pictures <key>.jpg (default <CUB_DIR>/images for birds,
                                  # else <DATA_DIR>/images)
        "MISSING_IMAGES": "error",  # error | skip: images listed in filenames.pickle but absent
        "CACHE_MB": 2048,         # decode the training pictures once if they fit in this many MB
                                  # (same pixels; 0 = read every load from disk, the original)
    },
    "RUN": {
        "WORKERS": -1,            # -1 = WORKERS
        "SAMPLE_EVERY": -1,       # -1 = TRAIN.SNAPSHOT_INTERVAL
        "CKPT_EVERY": -1,         # -1 = TRAIN.SNAPSHOT_INTERVAL
        "SNAPSHOT_EVERY": -1,     # -1 = TRAIN.SNAPSHOT_INTERVAL
        "LOG_EVERY": 100,         # the original logged every 100 iterations
    },
}

CHOICES = {"TREE.BRANCH_NUM": (1, 2, 3, 4, 5), **text_data.CHOICES, "TRAIN.LOSS": FORMS,
           "GAN.NETWORK_TYPE": ("default",)}


def check_config(cfg) -> None:
    """Rules across keys, then fill the RUN entries that follow the original keys."""
    text_data.check_keys(cfg)
    if cfg.TREE.BASE_SIZE != 64:
        raise ConfigError(f"TREE.BASE_SIZE is {cfg.TREE.BASE_SIZE}; the StackGAN++ networks "
                          "start at 64x64 (the original ignores other values in the models)",
                          "TREE.BASE_SIZE")
    step = 2 ** (cfg.TREE.BRANCH_NUM - 1)
    if cfg.GAN.GF_DIM < step or cfg.GAN.GF_DIM % step:
        raise ConfigError(f"GAN.GF_DIM {cfg.GAN.GF_DIM} must be a multiple of {step} for "
                          f"{cfg.TREE.BRANCH_NUM} branches (each branch halves the width)",
                          "GAN.GF_DIM")
    require_at_least(cfg, 1, "GAN.GF_DIM", "GAN.DF_DIM", "GAN.Z_DIM", "GAN.EMBEDDING_DIM")
    require_at_least(cfg, 0, "GAN.R_NUM", "TRAIN.COEFF.KL", "TRAIN.COEFF.UNCOND_LOSS",
                     "TRAIN.COEFF.COLOR_LOSS", "TRAIN.SNAPSHOT_INTERVAL")
    if cfg.TRAIN.FLAG and cfg.RUN.MAX_ITERS <= 0:  # else RUN.MAX_ITERS sets the length
        require_at_least(cfg, 1, "TRAIN.MAX_EPOCH")  # zero epochs would train nothing
    if cfg.TRAIN.BATCH_SIZE < 2:
        raise ConfigError("TRAIN.BATCH_SIZE must be at least 2 (batch norm needs a batch)",
                          "TRAIN.BATCH_SIZE")
    if cfg.TRAIN.EMA_WRITE_BACK and cfg.TRAIN.SNAPSHOT_INTERVAL == 0:
        raise ConfigError("TRAIN.EMA_WRITE_BACK (on by default, as the original) writes the "
                          "average back at every snapshot, and TRAIN.SNAPSHOT_INTERVAL is 0; set "
                          "an interval > 0 or TRAIN.EMA_WRITE_BACK False", "TRAIN.EMA_WRITE_BACK")
    if cfg.TRAIN.EMA_WRITE_BACK and cfg.RUN.CUDA_GRAPHS:
        raise ConfigError("TRAIN.EMA_WRITE_BACK (on by default, as the original) is decided on the "
                          "host at each snapshot, which a CUDA graph cannot replay; set "
                          "TRAIN.EMA_WRITE_BACK False to use RUN.CUDA_GRAPHS",
                          "TRAIN.EMA_WRITE_BACK")
    if not 0.0 <= cfg.TRAIN.EMA_DECAY < 1.0:
        raise ConfigError(f"TRAIN.EMA_DECAY must be in [0, 1), got {cfg.TRAIN.EMA_DECAY}",
                          "TRAIN.EMA_DECAY")
    apply_original_keys(cfg)


def apply_original_keys(cfg) -> None:
    """RUN entries left at -1 take their value from the original keys (see module docstring)."""
    for key in ("SAMPLE_EVERY", "CKPT_EVERY", "SNAPSHOT_EVERY"):
        if cfg.RUN[key] == -1:
            cfg.RUN[key] = cfg.TRAIN.SNAPSHOT_INTERVAL
    if cfg.RUN.WORKERS == -1:
        cfg.RUN.WORKERS = cfg.WORKERS
    for key in ("SAMPLE_EVERY", "CKPT_EVERY", "SNAPSHOT_EVERY", "WORKERS"):
        if cfg.RUN[key] < 0:
            raise ConfigError(f"RUN.{key} must be >= 0 (or -1 for the original key's value), "
                              f"got {cfg.RUN[key]}", f"RUN.{key}")
