"""StackGAN v1 (ICCV 2017) and StackGAN++ / v2 (TPAMI 2018).

One subpackage per paper, and next to them what both use:
  v1/             StackGAN v1 (model `stackgan_v1`, docs/stackgan.md)
  v2/             StackGAN++ (model `stackgan_v2`, docs/stackgan_v2.md)
  losses.py       the KL term and the matching-aware real / wrong / fake BCE terms
  conditioning.py the reparameterisation of conditioning augmentation
  layers.py       the 3x3 convolution both networks are built from
  text_data.py    the DATASET config choices and the checked text-image training set
  claims.py       the measures of the stackgan_stages claim (both versions)
Each version's `model.py` is the module the registry (common/models.py) names.
"""
