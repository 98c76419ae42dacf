"""StackGAN v1 (ICCV 2017; the PyTorch COCO code): model `stackgan_v1`, docs/stackgan.md.

  networks.py  CA net, Stage-I / Stage-II G and D, init, networks_from_config
  config.py    NAME, the original keys and defaults, the additions, check_config
  losses.py    the Stage-I / Stage-II D loss and the G adversarial loss
  weights.py   STAGE1_G / NET_G / NET_D files (original .pth, checkpoint, run dir)
  trainer.py   the trainer: phases, lr halving, epoch snapshots, Stage-I loading
  sampling.py  images from captions: TRAIN.FLAG False files, sample.py, metric batches
  model.py     what the registry holds: build, the hooks, TRAIN.FLAG False
"""
