"""Process-group setup for torchrun-launched ranks; a world of one needs none of it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from shared.lab.specs import SYNC_BN_NEEDS_CUDA
from shared.train.launch import gpu_shortfall


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class DeviceUnavailable(RuntimeError):
    """The spec asks for a device this machine does not have."""


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """The spec's device: auto means CUDA when present; each rank takes its own local GPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("spec asks for device=cuda but this worker has no CUDA device")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def require_gpus(requested: str, world_size: int) -> None:
    """Refuse, before launching anything, more CUDA ranks than this machine has GPUs."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    reason = gpu_shortfall(requested, world_size, gpus, "this machine")
    if reason:
        raise DeviceUnavailable(reason)


def require_cuda_for_sync_bn(device: torch.device) -> None:
    """SyncBatchNorm has no CPU kernel in PyTorch: refuse before any rank starts, with a clear message."""
    if device.type != "cuda":
        raise ValueError(SYNC_BN_NEEDS_CUDA)


def init(device_request: str) -> tuple[World, torch.device]:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_request, local_rank)
    if size == 1:
        return World(), device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # A rank that dies must not leave the others waiting forever in a collective.
    dist.init_process_group(backend, timeout=timedelta(minutes=5))
    return World(dist.get_rank(), size, local_rank, backend), device


def all_sum(values: list[float], world: World, device: torch.device) -> list[float]:
    """Sum floats over ranks (one collective), e.g. loss sums and sample counts."""
    if world.size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather(obj, world: World) -> list:
    """Every rank's `obj`, in rank order (a small picklable value)."""
    if world.size == 1:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def shutdown(world: World, clean: bool = True) -> None:
    """Leave the process group; after a clean run all ranks leave together (gloo aborts a rank whose peer
    tears down its connections while it is still closing its own)."""
    if world.size > 1 and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()
