"""torchrun support: one process per device, gradients averaged by one all-reduce per phase.

`python scripts/train_x.py` is a world of size 1. Under `torchrun --nproc_per_node=N` (one or
several machines) the process group is created from torchrun's environment: NCCL on GPUs, gloo
on CPUs. We do not wrap networks in DistributedDataParallel: GAN phases update different
parameter sets, so each phase all-reduces exactly the gradients it is about to step.
"""
from __future__ import annotations

import os
import re
from typing import Iterable

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def check_device(request: str, where: str = "RUN.DEVICE") -> str:
    """`request` if it is auto, cpu, cuda or cuda:N and can be had here; else a ConfigError."""
    from common.errors import ConfigError
    if not isinstance(request, str) or not DEVICE_PATTERN.match(request):
        raise ConfigError(f"{where}: {request!r} is not a device; expected auto, cpu, cuda or "
                          "cuda:N", "RUN.DEVICE")
    if request.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{where}: {request!r} but no CUDA device is available; use cpu",
                              "RUN.DEVICE")
        index = int(request.split(":")[1]) if ":" in request else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{where}: {request!r} but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)", "RUN.DEVICE")
    return request


def resolve_device(request: str, where: str = "--device") -> str:
    """A checked device name, with auto made concrete (cuda where there is one, else cpu)."""
    check_device(request, where)
    if request == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return request


def init(device_request: str = "auto") -> torch.device:
    """Start the process group if torchrun launched us, and pick this process's device."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    check_device(device_request)
    want_cuda = device_request.startswith("cuda") or (device_request == "auto"
                                                        and torch.cuda.is_available())
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    if not want_cuda:
        return torch.device("cpu")
    if distributed:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    device = torch.device(device_request if device_request.startswith("cuda") else "cuda")
    if device.index is not None:
        torch.cuda.set_device(device)
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def broadcast_parameters(modules: Iterable[torch.nn.Module]) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    if world_size() == 1:
        return
    for module in modules:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def all_reduce_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients of `params` over ranks with one flattened all-reduce."""
    if world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def all_gather_objects(obj):
    """List of `obj` from every rank (rank order); [obj] when not distributed."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj):
    if world_size() == 1:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
