import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from common.data import EpochLoader
from common.data.loader import EpochSampler
from common.errors import DataError


class RandomItems(Dataset):
    """Each item draws from all three global RNGs, like random crops, flips and captions do."""

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return {"index": torch.tensor(i), "torch": torch.rand(()),
                "python": torch.tensor(random.random()), "numpy": torch.tensor(np.random.rand())}


def keys(sampler, epoch, start_batch=0, epochs=1):
    sampler.set_position(epoch, start_batch, epochs)
    return [i for i, _ in sampler]


def test_epoch_sampler_shards_are_disjoint_and_deterministic():
    ranks = [EpochSampler(50, 4, world=3, rank=r, seed=1) for r in range(3)]
    shares = [keys(s, epoch=2) for s in ranks]
    flat = sum(shares, [])
    assert len(flat) == len(set(flat)) == 48  # 4 batches of 4 per rank; the rest dropped
    again = EpochSampler(50, 4, world=3, rank=0, seed=1)
    assert keys(again, 2) == shares[0]
    assert keys(again, 3) != shares[0]
    assert keys(again, 2, start_batch=3) == shares[0][12:]


def test_sampler_runs_on_across_epochs():
    sampler = EpochSampler(10, 3, seed=2)
    sampler.set_position(epoch=1, start_batch=2)
    stream = iter(sampler)
    got = [next(stream) for _ in range(3 + 9 + 4)]
    assert [e for _, e in got] == [1] * 3 + [2] * 9 + [3] * 4
    assert [i for i, _ in got[3:12]] == keys(EpochSampler(10, 3, seed=2), 2)


def batches(loader, epoch, start=0):
    return [b for b in loader.epoch(epoch, start)]


@pytest.mark.parametrize("workers", [0, 2])
def test_item_randomness_depends_on_seed_epoch_index_only(workers):
    ref = batches(EpochLoader(RandomItems(), 8, seed=5, workers=0), epoch=1)
    loader = EpochLoader(RandomItems(), 8, seed=5, workers=workers)
    torch.manual_seed(123)  # the global RNG state must not matter
    got = batches(loader, epoch=1)
    for a, b in zip(ref, got):
        for key in a:
            assert torch.equal(a[key], b[key])
    resumed = batches(loader, epoch=1, start=3)  # mid-epoch restart sees the same batches
    for a, b in zip(ref[3:], resumed):
        assert torch.equal(a["torch"], b["torch"]) and torch.equal(a["index"], b["index"])
    other_epoch = batches(loader, epoch=2)
    assert not torch.equal(ref[0]["index"], other_epoch[0]["index"])


def test_from_iteration_continues_through_epoch_boundaries():
    loader = EpochLoader(RandomItems(), 8, seed=5)   # 5 batches per epoch
    stream = loader.from_iteration(3)
    got = [next(stream) for _ in range(4)]
    expected = batches(loader, 0, 3) + batches(loader, 1)[:2]
    for a, b in zip(got, expected):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["torch"], b["torch"])


def test_loading_does_not_touch_the_global_rngs():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    batches(EpochLoader(RandomItems(), 8, seed=5), epoch=0)
    assert torch.equal(torch.rand(3), expected)


def test_loader_errors():
    with pytest.raises(DataError, match="fewer than one batch of 64"):
        EpochLoader(RandomItems(), 64, name="dataset RandomItems")
    with pytest.raises(DataError, match="not divisible by the 3 processes"):
        EpochLoader(RandomItems(), 8, world=3)


EXIT_WITH_A_LIVE_WORKER = """
import sys
sys.path.insert(0, {repo!r})
import torch
from torch.utils.data import Dataset
from common.data.loader import EpochLoader
class Items(Dataset):
    def __len__(self):
        return 64
    def __getitem__(self, i):
        return {{"image": torch.zeros(2)}}
batches = EpochLoader(Items(), 8, workers=1).from_iteration(0)
next(batches)
print("exiting", flush=True)
"""


def test_a_process_exits_while_its_loader_worker_still_runs(repo, tmp_path):
    """The workers ignore a process-group SIGTERM (the main process stops the run), but obey the
    one multiprocessing's exit handler sends to workers still running: no hang at exit."""
    import subprocess
    import sys
    script = tmp_path / "exit.py"
    script.write_text(EXIT_WITH_A_LIVE_WORKER.format(repo=str(repo)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "exiting" in done.stdout, done.stderr
