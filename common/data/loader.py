"""Reproducible data order: which items an epoch holds, and each item's random draws.

The order of epoch e is a permutation seeded by (seed, e); each rank takes its share. Item i of
epoch e is loaded with the torch/python/numpy RNGs seeded by (seed, e, i), so random crops,
flips or caption choices do not depend on worker count, and a resumed run can start in the
middle of an epoch and see exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
import random
import re
import signal
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from common.errors import DataError
from common.seeds import mix


@contextmanager
def seeded_rngs(seed: int):
    """Seed torch (CPU), python and numpy RNGs inside the block; restore them afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed would also
                                                    # queue (slow) seeding of every CUDA device
        random.seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SeededItems(Dataset):
    """Wraps a dataset so that key (index, epoch) loads item `index` under its own seed.

    A dataset whose items draw no random numbers may say so with `uses_rng = False`, which
    saves seeding and restoring three generators per item.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed
        self.seeded = getattr(dataset, "uses_rng", True)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, epoch = key
        if not self.seeded:
            return self.dataset[index]
        with seeded_rngs(mix(self.seed, epoch, index)):
            return self.dataset[index]


class EpochSampler(Sampler):
    """Yields (index, epoch) keys of one rank's share of the data, epoch after epoch.

    Iteration starts at a given (epoch, batch) and runs on through the following epochs
    without a break, so workers keep loading across epoch boundaries (with `epochs` set, it
    stops after that many epochs)."""

    def __init__(self, size: int, batch_per_rank: int, world: int = 1, rank: int = 0,
                 seed: int = 0, shuffle: bool = True):
        self.size, self.batch, self.world, self.rank = size, batch_per_rank, world, rank
        self.seed, self.shuffle = seed, shuffle
        self.epoch = self.start_batch = 0
        self.epochs: int | None = None

    @property
    def batches_per_epoch(self) -> int:
        return self.size // (self.batch * self.world)

    def set_position(self, epoch: int, start_batch: int = 0, epochs: int | None = None) -> None:
        self.epoch, self.start_batch, self.epochs = epoch, start_batch, epochs

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """This rank's indices for a whole epoch (the incomplete last batch is dropped)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(mix(self.seed, epoch, 0x5EED))
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.arange(self.size)
        used = order[:self.batches_per_epoch * self.batch * self.world]
        return used[self.rank::self.world]

    def __iter__(self):
        epoch, start = self.epoch, self.start_batch * self.batch
        while self.epochs is None or epoch < self.epoch + self.epochs:
            for i in self.epoch_indices(epoch)[start:].tolist():
                yield (i, epoch)
            epoch, start = epoch + 1, 0


_parent_exiting = None  # a shared byte, set when this (main) process runs its exit handlers


def _exit_flag():
    """The flag the workers read; made once, before the first workers start."""
    global _parent_exiting
    if _parent_exiting is None:
        _parent_exiting = multiprocessing.RawValue("b", 0)
        # registered after multiprocessing's own exit handler, so it runs before that one
        # terminates the (daemonic) workers
        atexit.register(lambda: setattr(_parent_exiting, "value", 1))
    return _parent_exiting


def _leave_stops_to_the_main_process(parent_exiting, worker_id: int) -> None:
    """Loader workers leave SIGINT/SIGTERM to the main process: a signal sent to the whole
    process group (Ctrl-C, `kill -- -PGID`, a job scheduler) would otherwise kill the workers
    first, and the main process would die on a dead worker instead of saving a checkpoint.
    The main process ends its workers itself; a SIGTERM from its exit handlers (which
    terminate the workers still running) is obeyed."""
    def on_sigterm(signum, frame):
        if parent_exiting.value:
            os._exit(0)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)


# PyTorch's words when a worker is gone: from its SIGCHLD handler ("is killed by signal: Killed.")
# and from the batch wait ("exited unexpectedly"); either may reach the main thread at any moment
_DEAD_WORKER = re.compile(r"DataLoader worker \(pids?(?:\(s\))? [\d, ]+\) "
                          r"(?:is killed by signal: .*|exited unexpectedly.*)")


def dead_worker(err: BaseException) -> str | None:
    """PyTorch's one-line report of a dead loader worker, or None for any other error."""
    found = _DEAD_WORKER.search(str(err)) if isinstance(err, RuntimeError) else None
    # PyTorch goes on with advice of its own ("... unexpectedly. Rerunning with ..."): one sentence
    return found[0].split(". ")[0].rstrip(". ") if found else None


class EpochLoader:
    """A DataLoader over an EpochSampler: `loader.epoch(e, start_batch)` iterates one epoch."""

    def __init__(self, dataset: Dataset, batch_size: int, world: int = 1, rank: int = 0,
                 seed: int = 0, workers: int = 0, pin_memory: bool = False, shuffle: bool = True,
                 name: str = "dataset"):
        if batch_size % world:
            raise DataError(f"batch size {batch_size} is not divisible by the {world} processes")
        per_rank = batch_size // world
        if len(dataset) < batch_size:
            raise DataError(f"{name}: {len(dataset)} items, fewer than one batch of "
                            f"{batch_size}")
        self.sampler = EpochSampler(len(dataset), per_rank, world, rank, seed, shuffle)
        self.loader = DataLoader(SeededItems(dataset, seed), batch_size=per_rank,
                                 sampler=self.sampler, num_workers=workers,
                                 pin_memory=pin_memory, persistent_workers=workers > 0,
                                 prefetch_factor=4 if workers > 0 else None,
                                 worker_init_fn=functools.partial(
                                     _leave_stops_to_the_main_process, _exit_flag())
                                 if workers > 0 else None,
                                 generator=torch.Generator().manual_seed(seed))

    @property
    def batches_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch

    def epoch(self, epoch: int, start_batch: int = 0):
        """The batches of one epoch, from `start_batch` on."""
        self.sampler.set_position(epoch, start_batch, epochs=1)
        return iter(self.loader)

    def from_iteration(self, iteration: int):
        """Batches without end, from the `iteration`-th batch of the run on (across epochs)."""
        epoch, start = divmod(iteration, self.batches_per_epoch)
        self.sampler.set_position(epoch, start)
        return iter(self.loader)


class DevicePrefetcher:
    """Iterates batches already on the GPU: batch i+1 is copied on a side stream while the
    caller computes on batch i (pinned host memory makes the copy asynchronous)."""

    def __init__(self, batches, device: torch.device, channels_last: bool = False):
        self.batches, self.device, self.channels_last = iter(batches), device, channels_last
        self.stream = torch.cuda.Stream(device)
        self.next = self._load()

    def _load(self):
        try:
            batch = next(self.batches)
        except StopIteration:
            return None
        with torch.cuda.stream(self.stream):
            return to_device(batch, self.device, self.channels_last)

    def __iter__(self):
        return self

    def __next__(self):
        if self.next is None:
            raise StopIteration
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(self.stream)
        batch = self.next
        _record(batch, current)  # the side stream's allocations are now used on this stream
        self.next = self._load()
        return batch


def _record(tree, stream) -> None:
    if isinstance(tree, torch.Tensor):
        tree.record_stream(stream)
    elif isinstance(tree, dict):
        for v in tree.values():
            _record(v, stream)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            _record(v, stream)


def device_batches(batches, device: torch.device, channels_last: bool = False):
    """Batches moved to `device`: prefetched on a side stream on CUDA, copied on the CPU."""
    if device.type == "cuda":
        return DevicePrefetcher(batches, device, channels_last)
    return (to_device(b, device, channels_last) for b in batches)


def to_device(batch, device: torch.device, channels_last: bool = False):
    """Move a (nested) batch to the device; 4-d float tensors optionally to channels_last."""
    if isinstance(batch, torch.Tensor):
        out = batch.to(device, non_blocking=True)
        if channels_last and out.dim() == 4 and out.is_floating_point():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch
