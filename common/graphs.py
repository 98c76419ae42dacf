"""Whole phases as CUDA graphs: forward, backward, gradient averaging and optimizer step.

Small-batch GAN training is bound by kernel launches, not arithmetic. After a few eager warm-up
iterations (lazy optimizer state, cuDNN autotuning, compilation), each phase is captured once
into a CUDA graph sharing one memory pool; an iteration is then: copy the batch into static
buffers and replay the due graphs. The kernels are the eager ones, so fp32 results are those of
the eager loop. Learning rates are baked into a graph, so a change (an epoch schedule) triggers a
new capture.

A trainer opts in with `cuda_graphs_safe = True`: its phases must run the same kernels every
iteration (no `.item()`, no Python decisions on tensor values or on the iteration, no returning
None to skip an update, no new CPU tensors sent to the GPU).
"""
from __future__ import annotations

import torch

from common import logging as log
from common import precision
from common.errors import ConfigError


def _static_copy(tree, device):
    if isinstance(tree, torch.Tensor):
        return torch.empty_like(tree, device=device)
    if isinstance(tree, dict):
        return {k: _static_copy(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_static_copy(v, device) for v in tree)
    return tree


def _fill(static, batch, path="batch"):
    if isinstance(static, torch.Tensor):
        if static.shape != batch.shape:
            raise RuntimeError(f"{path} changed shape from {tuple(static.shape)} to "
                               f"{tuple(batch.shape)}; CUDA graphs need static shapes")
        static.copy_(batch, non_blocking=True)
    elif isinstance(static, dict):
        for k in static:
            _fill(static[k], batch[k], f"{path}[{k!r}]")
    elif isinstance(static, (list, tuple)):
        for i, (s, b) in enumerate(zip(static, batch)):
            _fill(s, b, f"{path}[{i}]")


class PhaseGraphs:
    """Runs a loop's iterations as replays of per-phase CUDA graphs."""

    def __init__(self, loop, warmup: int = 3):
        trainer = loop.trainer
        if loop.device.type != "cuda":
            raise ConfigError("RUN.CUDA_GRAPHS needs a CUDA device", "RUN.CUDA_GRAPHS")
        if not precision.graph_safe(loop.rc.PRECISION):
            raise ConfigError("RUN.CUDA_GRAPHS does not combine with fp16 (its gradient scaler "
                              "decides on the host); use bf16 or fp32", "RUN.CUDA_GRAPHS")
        if not trainer.cuda_graphs_safe:
            raise ConfigError(f"RUN.CUDA_GRAPHS: the {trainer.name} trainer does not declare its "
                              "phases graph-safe (cuda_graphs_safe)", "RUN.CUDA_GRAPHS")
        self.loop, self.warmup, self.warm = loop, warmup, 0
        self.static = None
        self.graphs: dict[str, torch.cuda.CUDAGraph] | None = None
        self.reported: dict[str, list[str]] = {}
        self.stats: log.GraphStats | None = None
        self.captured_hyper = None

    def _hyper(self):
        """Optimizer settings a graph bakes in (a change means: capture again)."""
        return [(k, v) for opt in self.loop.trainer.optimizers.values()
                for g in opt.param_groups for k, v in sorted(g.items()) if k != "params"]

    def iteration(self, batch: dict) -> None:
        if self.static is None:
            self.static = _static_copy(batch, self.loop.device)
        _fill(self.static, batch)
        if self.graphs is not None and self._hyper() != self.captured_hyper:
            self.graphs = None
        if self.graphs is None:
            if self.warm < self.warmup:
                self._eager(self.static)
                self.warm += 1
                return
            self._capture()
        it = self.loop.progress.iteration
        for phase in self.loop.phases:
            if it % phase.every == 0:
                self.graphs[phase.name].replay()
                self.stats.replayed(self.reported[phase.name])
        self.loop.after_phases()

    def _eager(self, batch) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.loop.eager_iteration(batch)
        torch.cuda.current_stream().wait_stream(side)

    def _capture(self) -> None:
        loop = self.loop
        for params in loop.params.values():  # gradients must live at fixed addresses
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        torch.cuda.synchronize()
        if self.stats is not None:
            log.drop_graph_stats(self.stats)
        self.stats = log.GraphStats(log.seen_names(), loop.device)
        graphs, pool = {}, None
        for phase in loop.phases:
            graph = torch.cuda.CUDAGraph()
            log.begin_capture(self.stats)
            try:
                with torch.cuda.graph(graph, pool=pool):
                    loop.run_phase(phase, self.static, set_to_none=False, capturing=True)
            finally:
                self.reported[phase.name] = log.end_capture()
            graphs[phase.name], pool = graph, graph.pool()
        self.graphs, self.captured_hyper = graphs, self._hyper()
