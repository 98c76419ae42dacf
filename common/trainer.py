"""What a paper's trainer gives the common loop: networks, optimizers and phases.

A trainer says *what* one iteration computes; `common.train.run` says *how* it is driven
(device, precision, distribution, logging, checkpoints). A trainer never opens files, writes logs
or talks to other ranks itself; it may call `common.logging.report(name, value)` anywhere.
"""
from __future__ import annotations

import abc
import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Union

import torch
from torch import nn
from torch.utils.data import Dataset

from common import data

# A phase returns one loss (backpropagated into the parameters of all its optimizers), a dict
# {optimizer name: loss} (each loss reaches only that optimizer's parameters; one forward pass
# can feed several networks this way), or None to skip its update this time (gating).
PhaseLoss = Union[torch.Tensor, dict, None]


@dataclass
class Phase:
    """One update: `fn(batch)` computes the loss, then the named optimizers step."""

    name: str
    fn: Callable[[dict], PhaseLoss]
    optimizers: list[str]
    every: int = 1            # run on iterations where iteration % every == 0


@dataclass
class EpochScore:
    """A number a trainer computes after each epoch (Trainer.epoch_score). The loop reports it
    (stats.jsonl, TensorBoard) and keeps the model that scored best so far as
    checkpoints/best.pt; the best value travels in every checkpoint so a resumed run compares
    against it."""

    name: str                 # the statistic's name, e.g. "nll/test_k5"
    value: float
    lower_is_better: bool = True


@dataclass
class Progress:
    """Counters the loop keeps up to date before each iteration (read-only for trainers)."""

    iteration: int = 0        # iterations done so far
    epoch: int = 0            # current epoch (0-based)
    nimg: int = 0             # real images shown so far, over all ranks
    total: int = 0            # iterations this run will do
    iters_per_epoch: int = 0


class Trainer(abc.ABC):
    """Base of every paper's trainer. Subclasses set the attributes and methods below.

    Required: `name`, `batch_size` (global, over all ranks), `epochs`, `phases()`,
    `generate(n, seed)`. Networks live in `self.nets`, optimizers in `self.optimizers`, LR
    schedulers in `self.schedulers`; all of them go into checkpoints. The rest has defaults.
    """

    name = ""                 # registry name of the model (common.models.ModelSpec.name)
    generator = "G"           # the network that makes images (sampling prefers its EMA twin)
    batch_size = 64
    epochs = 1
    cuda_graphs_safe = False  # the phases launch the same kernels every iteration, with no
                              # host decisions, so RUN.CUDA_GRAPHS may capture them

    def __init__(self, cfg, device: torch.device):
        self.cfg = cfg
        self.device = torch.device(device)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict = {}
        self.ema: dict[str, float] = {}
        self.progress = Progress()

    # ---- to override ------------------------------------------------------------------------
    def dataset(self) -> Dataset:
        """The training set; items are dicts (see common.data). By default the config's DATA
        section through the data-kind registry."""
        return data.build(self.cfg.DATA)

    @abc.abstractmethod
    def phases(self) -> list[Phase]:
        """The updates of one iteration, in order."""

    @abc.abstractmethod
    def generate(self, n: int, seed: int = 0, ema: bool = True) -> torch.Tensor:
        """n images in [-1, 1] from the generator (its EMA twin when `ema`), seeded."""

    def start_fresh(self) -> None:
        """Called once before the first iteration of a new run (not on resume): load
        pretrained parts that the checkpoint will hold afterwards (e.g. a Stage-I generator)."""

    def set_epoch(self, epoch: int) -> None:
        """Called at the start of every epoch (also a resumed one): set epoch-based schedules.

        Must depend only on `epoch` (not on how many times it was called) so resume is exact.
        """

    def snapshot_due(self) -> bool:
        """Whether the loop should also write a numbered snapshot now, after
        `self.progress.iteration` iterations: for schedules RUN.SNAPSHOT_EVERY cannot express
        (e.g. every N epochs, as in StackGAN v1). Must depend only on `self.progress`."""
        return False

    def ema_write_back_due(self) -> bool:
        """Whether the loop should copy every EMA twin's parameters into its live network
        (`add_ema`) before the next iteration's phases, `self.progress.iteration` iterations
        done: StackGAN++'s write-back at its snapshots. Buffers and optimizer states stay as
        they are. It runs after that iteration's checkpoints, which still hold the live network
        of before, so a resume from them writes back the same way. Must depend only on
        `self.progress`. Default: never."""
        return False

    def epoch_score(self) -> EpochScore | None:
        """Called by the loop after every completed epoch, on every rank (the value of rank 0
        counts), under no_grad with RNGs and buffers put back afterwards; set evaluation mode
        yourself. A score makes the loop select checkpoints/best.pt by it; None (the default)
        does nothing. Must depend only on the networks and `self.progress` (resume is exact)."""
        return None

    def snapshot_images(self) -> dict[str, tuple[torch.Tensor, int]]:
        """Pictures for the sample ticks: {name: (images in [-1, 1], images per row)}."""
        return {"fakes": (self.generate(64, seed=self.cfg.RUN.SEED), 8)}

    def synthetic_batch(self, batch_size: int) -> dict:
        """Random tensors shaped like a training batch, on the device (benchmarks, no data).

        The default fits models whose DATA section yields "image" and "label"."""
        d = self.cfg.DATA
        return {"image": torch.rand(batch_size, d.CHANNELS, d.IMAGE_SIZE, d.IMAGE_SIZE,
                                    device=self.device) * 2 - 1,
                "label": torch.zeros(batch_size, dtype=torch.long, device=self.device)}

    def extra_state(self) -> dict:
        """Anything else a checkpoint must hold to continue exactly (tensors, numbers, lists)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # ---- helpers ----------------------------------------------------------------------------
    def add_ema(self, name: str, decay: float) -> nn.Module:
        """Keep an exponential moving average of nets[name] as nets[name + '_ema']."""
        twin = copy.deepcopy(self.nets[name]).requires_grad_(False)
        self.nets[name + "_ema"] = twin
        self.ema[name] = decay
        return twin

    def sampling_net(self, ema: bool = True) -> nn.Module:
        key = self.generator + "_ema"
        return self.nets[key] if ema and key in self.nets else self.nets[self.generator]

    def parameter_count(self, name: str) -> int:
        return sum(p.numel() for p in self.nets[name].parameters())


@torch.no_grad()
def update_ema(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * live for parameters; buffers are copied."""
    e_params = [p for p in ema.parameters()]
    l_params = [p.detach() for p in live.parameters()]
    if e_params:
        torch._foreach_lerp_(e_params, l_params, 1.0 - decay)
    for eb, lb in zip(ema.buffers(), live.buffers()):
        eb.copy_(lb)


@torch.no_grad()
def write_back_ema(trainer: Trainer) -> bool:
    """What the loop does before each iteration: when `trainer.ema_write_back_due()`, the live
    parameters of every network with an EMA twin take the twin's values. True if it copied."""
    if not trainer.ema or not trainer.ema_write_back_due():
        return False
    for name in trainer.ema:
        for live, avg in zip(trainer.nets[name].parameters(),
                             trainer.nets[name + "_ema"].parameters()):
            live.copy_(avg)
    return True


@contextmanager
def preserved_buffers(nets: dict):
    """Sampling must not change training state: BN running statistics are put back after it."""
    saved = {name: [b.detach().clone() for b in net.buffers()] for name, net in nets.items()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, net in nets.items():
                for b, s in zip(net.buffers(), saved[name]):
                    b.copy_(s)
