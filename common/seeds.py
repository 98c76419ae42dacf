"""Seeds derived from several integers: one function for every independent random stream (data
order, per-item draws, per-rank noise, per-batch samples)."""
from __future__ import annotations

import numpy as np


def mix(*values: int) -> int:
    """A 63-bit seed from several integers (numpy's SeedSequence mixing of their low 32 bits):
    mix(seed, epoch, index) and mix(seed, epoch, index + 1) give unrelated streams."""
    state = np.random.SeedSequence([v & 0xFFFFFFFF for v in values]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))
