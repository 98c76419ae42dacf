"""Seeds derived from several integers: one function for every independent random stream (data
order, per-item draws, per-rank noise, per-batch samples)."""
from __future__ import annotations

import numpy as np


# what torch.manual_seed accepts (numpy and random get the seed's low 32 bits)
SEED_RANGE = (-2**63, 2**64 - 1)
SEED_RANGE_TEXT = "an integer from -2**63 to 2**64 - 1"


def seed_in_range(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and \
        SEED_RANGE[0] <= value <= SEED_RANGE[1]


def mix(*values: int) -> int:
    """A 63-bit seed from several integers (numpy's SeedSequence mixing of their low 32 bits):
    mix(seed, epoch, index) and mix(seed, epoch, index + 1) give unrelated streams."""
    state = np.random.SeedSequence([v & 0xFFFFFFFF for v in values]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))
