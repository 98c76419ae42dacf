"""StackGAN++ / StackGAN-v2 (TPAMI 2018): model `stackgan_v2`, docs/stackgan_v2.md.

  networks.py    GLU blocks, CA net v2, the tree generator, the branch discriminators, init
  config.py      NAME, the original keys and defaults, the additions, check_config
  losses.py      the branch D losses, the G adversarial loss, colour consistency
  data.py        the multi-size crop, unconditional image folders, the v2 text pairs
  weights.py     TRAIN.NET_G / TRAIN.NET_D files (original .pth, checkpoint, run dir)
  trainer.py     the trainer: phases, EMA and its write-back hook, sample grids
  sampling.py    the seeded generator run, sample.py pictures, metric batches
  evaluation.py  TRAIN.FLAG False: the evaluation images as the original wrote them
  model.py       what the registry holds: build, the hooks, TRAIN.FLAG False
"""
