"""Custom ops.  See docs/custom_ops.md."""
from .stnm import stnm, theta_from_lrgan
from .stnm_ref import stnm_ref

__all__ = ["stnm", "stnm_ref", "theta_from_lrgan"]
