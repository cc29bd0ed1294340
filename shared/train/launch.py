"""How a run with several ranks is launched: torchrun, one process per rank (imports no torch)."""

from __future__ import annotations

import sys


def torchrun_command(nproc: int, *args: str) -> list[str]:
    """`python -m torch.distributed.run` for `nproc` ranks on this machine, each running `python *args`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]


def gpu_shortfall(requested: str, world_size: int, gpus: int, where: str) -> str | None:
    """Why `world_size` CUDA ranks cannot start where there are `gpus` GPUs (each rank needs its own); None if
    they can. `auto` without a GPU runs CPU ranks (gloo): no shortfall."""
    cuda = requested == "cuda" or (requested == "auto" and gpus > 0)
    if world_size <= 1 or not cuda or world_size <= gpus:
        return None
    return f"world_size {world_size} needs {world_size} GPUs (one per rank); {where} has {gpus}"
