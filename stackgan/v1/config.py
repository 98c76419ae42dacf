"""StackGAN v1 configuration: the original keys and defaults, the ganrepro additions, checks.

The config keeps the original key names, so an original yml loads unchanged. How the original
keys that steer the loop are honoured:
  TRAIN.BATCH_SIZE        per process (per GPU, as the original's per-GPU batch); the global
                          batch is BATCH_SIZE x the torchrun world size
  TRAIN.MAX_EPOCH         the run length (RUN.MAX_ITERS / --max-iters cut it short)
  TRAIN.SNAPSHOT_INTERVAL a numbered checkpoint after every epoch e with e % interval == 0
                          (epoch 0 included, as the original); 0 = none; last.pt always
  TRAIN.LR_DECAY_EPOCH    both learning rates halve at every multiple of it (set_epoch)
  WORKERS                 data loader workers, unless RUN.WORKERS is set (>= 0)
  VIS_COUNT               images per snapshot grid (fixed noise, current batch's captions)
  TRAIN.FLAG: False       sample from NET_G instead of training (stackgan/v1/sampling.py)
  GPU_ID, CUDA            accepted and ignored: the device is RUN.DEVICE / --device / torchrun
  TRAIN.PRETRAINED_*      accepted and ignored (unused by the PyTorch code as well)
Additions (absent from the original config; defaults = the PyTorch code's behaviour):
  GAN.CA_TYPE, GAN.D_TEXT, TRAIN.NUM_EMBEDDING, TRAIN.WRONG   the TF birds variant's switches
  TRAIN.STAGE1_BN         the frozen Stage-I G's BatchNorm in Stage-II: train (original) | eval
  TRAIN.LOSS              sigmoid_bce (original: sigmoid + BCELoss) | logits (common/losses.py)
  DATASET.*               where the pictures are, the CUB crop, images missing on disk
  SAMPLE.*                what TRAIN.FLAG: False samples
"""
from __future__ import annotations

from common.config import require_at_least
from common.errors import ConfigError
from common.losses import FORMS
from stackgan import text_data
from stackgan.v1.networks import CA_TYPES

NAME = "stackgan_v1"   # was "stackgan": common/models.py ALIASES
DEFAULTS = {
    "CONFIG_NAME": "",
    "DATASET_NAME": "birds",
    "EMBEDDING_TYPE": "cnn-rnn",
    "GPU_ID": "0",
    "CUDA": True,
    "WORKERS": 6,
    "NET_G": "",              # G weights to start from (training) or to sample from (FLAG False)
    "NET_D": "",
    "STAGE1_G": "",           # Stage-I generator for Stage-II training (run dir, .pt or .pth)
    "DATA_DIR": "",
    "VIS_COUNT": 64,
    "Z_DIM": 100,
    "IMSIZE": 64,
    "STAGE": 1,
    "TRAIN": {
        "FLAG": True,
        "BATCH_SIZE": 64,
        "MAX_EPOCH": 600,
        "SNAPSHOT_INTERVAL": 50,
        "PRETRAINED_MODEL": "",
        "PRETRAINED_EPOCH": 600,
        "LR_DECAY_EPOCH": 600,
        "DISCRIMINATOR_LR": 2e-4,
        "GENERATOR_LR": 2e-4,
        "COEFF": {"KL": 2.0},
        "NUM_EMBEDDING": 1,        # captions averaged per image (TF birds: 4)
        "WRONG": "batch_shift",    # batch_shift (PyTorch) | dataset (TF: mismatched pictures)
        "STAGE1_BN": "train",
        "LOSS": "sigmoid_bce",     # sigmoid_bce: sigmoid + BCELoss (original; its backward damps
                                   # the gradient for logits < -27.6) | logits: BCE with logits
    },
    "GAN": {
        "CONDITION_DIM": 128,
        "DF_DIM": 64,
        "GF_DIM": 128,
        "R_NUM": 4,
        "CA_TYPE": "relu_logvar",  # relu_logvar (PyTorch) | lrelu_logsigma (TF)
        "D_TEXT": "mu",            # mu (PyTorch: D sees the CA mean) | embedding (TF)
    },
    "TEXT": {"DIMENSION": 1024},
    "DATASET": {
        "IMAGE_DIR": "",           # default <CUB_DIR>/images (birds) or <DATA_DIR>/images
        "CUB_DIR": "",             # default <DATA_DIR>/CUB_200_2011
        "BBOX_CROP": "auto",       # auto (on when DATA_DIR contains 'birds', the original rule)
                                   # | always | never
        "MISSING_IMAGES": "error",  # error | skip (train on the images that exist)
        "TEXT_DIR": "",            # caption text <key>.txt for sample names; default <DATA_DIR>/text
        "CACHE_MB": 2048,          # decode the training pictures once if they fit in this many MB
                                   # (same pixels; 0 = read every load from disk, the original)
    },
    "SAMPLE": {
        "CAPTIONS": "auto",        # auto | test | train | a .t7/.pt/.npz caption file
        "NUM_COPY": 1,             # samples per caption
        "MAX_CAPTIONS": 0,         # 0 = every caption (the original stopped after ~3,000)
        "GRID": True,              # also write grids
    },
    "RUN": {"WORKERS": -1, "LOG_EVERY": 100, "SAMPLE_EVERY": 100},
}
CHOICES = {
    "STAGE": (1, 2),
    "GAN.CA_TYPE": CA_TYPES,
    "GAN.D_TEXT": ("mu", "embedding"),
    "TRAIN.WRONG": ("batch_shift", "dataset"),
    "TRAIN.STAGE1_BN": ("train", "eval"),
    "TRAIN.LOSS": FORMS,
    **text_data.CHOICES,
}
POSITIVE = ("Z_DIM", "VIS_COUNT", "TRAIN.MAX_EPOCH", "TRAIN.LR_DECAY_EPOCH",
            "TRAIN.NUM_EMBEDDING", "GAN.CONDITION_DIM", "GAN.DF_DIM", "GAN.GF_DIM",
            "TEXT.DIMENSION", "SAMPLE.NUM_COPY")


def check_config(cfg) -> None:
    """Rules across keys, then RUN.WORKERS from the original WORKERS unless it is given."""
    text_data.check_keys(cfg)
    require_at_least(cfg, 1, *POSITIVE)
    require_at_least(cfg, 0, "GAN.R_NUM", "TRAIN.SNAPSHOT_INTERVAL", "SAMPLE.MAX_CAPTIONS",
                     "TRAIN.COEFF.KL")
    size = 64 if cfg.STAGE == 1 else 256
    if cfg.IMSIZE != size:
        raise ConfigError(f"IMSIZE is {cfg.IMSIZE}, but Stage-{'I' * cfg.STAGE} networks make "
                          f"{size}x{size} images (IMSIZE: {size})", "IMSIZE")
    multiple = 2 if cfg.STAGE == 1 else 4
    if cfg.GAN.GF_DIM % multiple:
        raise ConfigError(f"GAN.GF_DIM must be a multiple of {multiple} for Stage-"
                          f"{'I' * cfg.STAGE} (its narrowest layer has GF_DIM/{8 // multiple} "
                          "channels)", "GAN.GF_DIM")
    if cfg.TRAIN.BATCH_SIZE < 2:
        raise ConfigError("TRAIN.BATCH_SIZE must be at least 2 (BatchNorm, and the wrong pairs "
                          "shift the batch by one)", "TRAIN.BATCH_SIZE")
    if cfg.RUN.WORKERS < 0:
        cfg.RUN.WORKERS = cfg.WORKERS   # the original key, unless RUN.WORKERS is given
