"""`report(name, value)` from anywhere; the loop flushes means to the console, stats.jsonl and tb/.

Values may be tensors on the device: they are kept as tensors and only turned into numbers at a
flush, so reporting costs no device synchronisation per iteration. Only rank 0 writes.
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from common import dist

_values: dict[str, list] = defaultdict(list)
_sinks: "Sinks | None" = None
_seen: set[str] = set()


class GraphStats:
    """Statistics reported inside CUDA graphs. A replay runs no Python, so a report cannot
    append a new tensor each time: during the capture it adds into a fixed accumulator instead,
    and the owner counts the replays (see common/graphs.py)."""

    def __init__(self, names, device):
        self.sums = {name: torch.zeros((), device=device) for name in names}
        self.counts: dict[str, int] = defaultdict(int)

    def replayed(self, names: list[str]) -> None:
        for name in names:
            self.counts[name] += 1


_graph_stats: list[GraphStats] = []
_capturing: tuple[GraphStats, list[str]] | None = None


def report(name: str, value) -> None:
    """Record one value of a named statistic; the next flush writes the mean."""
    if isinstance(value, torch.Tensor):
        value = value.detach().float().mean()
    if _capturing is not None:
        stats, names = _capturing
        if name not in stats.sums:
            raise RuntimeError(f"report({name!r}) inside a CUDA graph capture was not seen during "
                               "the eager warm-up iterations")
        stats.sums[name].add_(value)
        names.append(name)
        return
    _seen.add(name)
    _values[name].append(value)


def seen_names() -> set[str]:
    return set(_seen)


def begin_capture(stats: GraphStats) -> None:
    """Reports made until end_capture() add into `stats` (whose sums exist outside the graph)."""
    global _capturing
    if stats not in _graph_stats:
        _graph_stats.append(stats)
    _capturing = (stats, [])


def end_capture() -> list[str]:
    """The names reported during the capture; each replay of that graph counts once for them."""
    global _capturing
    names = _capturing[1] if _capturing else []
    _capturing = None
    return names


def drop_graph_stats(stats: GraphStats) -> None:
    """Fold what `stats` holds into the next flush and stop reading it (graphs recaptured)."""
    _fold(stats)
    if stats in _graph_stats:
        _graph_stats.remove(stats)


def _fold(stats: GraphStats) -> None:
    for name, count in stats.counts.items():
        if count:
            _values[name].append(stats.sums[name] / count)
            stats.sums[name].zero_()
    stats.counts.clear()


def collect() -> dict[str, float]:
    """Means of everything reported since the last call, as plain floats; clears the buffer."""
    out: dict[str, float] = {}
    for stats in _graph_stats:  # each graph accumulator adds its mean as one value
        _fold(stats)
    tensors = {k: v for k, v in _values.items() if any(isinstance(x, torch.Tensor) for x in v)}
    if tensors:
        names = sorted(tensors)
        means = torch.stack([torch.stack([torch.as_tensor(x, dtype=torch.float32,
                                                          device=_device_of(tensors[n]))
                                          for x in tensors[n]]).mean() for n in names])
        out.update(zip(names, means.cpu().tolist()))  # one synchronisation for all of them
    for name, values in _values.items():
        if name not in tensors:
            out[name] = float(sum(values) / len(values))
    _values.clear()
    return out


def _device_of(values: list) -> torch.device:
    return next(x.device for x in values if isinstance(x, torch.Tensor))


class Sinks:
    """The run directory's log.txt, stats.jsonl and TensorBoard writer (rank 0 only)."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = dist.is_main()
        self.log_file = self.stats_file = self.tb = None
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = open(self.run_dir / "log.txt", "a", buffering=1)
        self.stats_file = open(self.run_dir / "stats.jsonl", "a", buffering=1)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(self.run_dir / "tb"))
            except ImportError:  # tensorboard is a requirement, but stay usable without it
                self.tb = None

    def close(self) -> None:
        for f in (self.log_file, self.stats_file):
            if f is not None:
                f.close()
        if self.tb is not None:
            self.tb.close()


_held: list[str] | None = None


def hold() -> None:
    """Keep the lines logged from now on until open_sinks() writes them into log.txt (a run
    directory is written only after its inputs are validated)."""
    global _held
    _held = []
    _values.clear()  # a run that ended in an error may have left values of its own


def open_sinks(run_dir: Path, tensorboard: bool = True) -> Sinks:
    global _sinks, _held
    _sinks = Sinks(run_dir, tensorboard)
    if _sinks.log_file is not None:
        _sinks.log_file.writelines(line + "\n" for line in _held or [])
    _held = None
    return _sinks


def close_sinks() -> None:
    global _sinks, _held
    if _sinks is not None:
        _sinks.close()
    _sinks, _held = None, None


def log(message: str, console: bool = True) -> None:
    """Print a line (rank 0) and append it to log.txt."""
    if not dist.is_main():
        return
    if console:
        print(message, flush=True)
    if _sinks is not None and _sinks.log_file is not None:
        _sinks.log_file.write(message + "\n")
    elif _held is not None:
        _held.append(message)


def write_stats(stats: dict[str, float], step: int, extra: dict | None = None) -> None:
    """One stats.jsonl row and TensorBoard scalars for the values of a flush."""
    if _sinks is None or not _sinks.enabled:
        return
    row = {"iteration": step, "time": round(time.time(), 3), **(extra or {}), **stats}
    _sinks.stats_file.write(json.dumps(row) + "\n")
    if _sinks.tb is not None:
        for name, value in stats.items():
            _sinks.tb.add_scalar(name, value, step)
        _sinks.tb.flush()


def warn(message: str) -> None:
    if dist.is_main():
        print(f"warning: {message}", file=sys.stderr, flush=True)
