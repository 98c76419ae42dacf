"""common.precision: the modes' autocast dtypes, scaler and float32 regions."""
import torch

from common import precision
from common.config import RUN_CHOICES


def test_modes_are_the_configs_choices_and_say_their_dtype_and_scaler():
    assert RUN_CHOICES["RUN.PRECISION"] == precision.MODES
    cpu = torch.device("cpu")
    for mode, dtype in [("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)]:
        p = precision.Precision(mode, cpu)
        assert p.dtype == dtype and p.scaler.is_enabled() == (mode == "fp16")
        assert precision.graph_safe(mode) == (mode != "fp16")
    with precision.Precision("bf16", cpu).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        with precision.float32_region("cpu"):
            x = precision.upcast(torch.ones(2, 2, dtype=torch.bfloat16))
            assert (x @ x).dtype == torch.float32
    assert precision.upcast(torch.ones(1, dtype=torch.float64)).dtype == torch.float64
