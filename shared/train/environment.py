"""Where a run ran: torch, the device, the ranks, the host and the code's commit, recorded with every result."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

from shared.lab.results import Environment
from shared.lab.settings import settings
from shared.train import distributed


def environment(device: torch.device, world: distributed.World) -> Environment:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine() or "cpu"
    return Environment(torch=torch.__version__, device=f"{device.type}: {name}", world_size=world.size,
                       devices=distributed.gather(f"{device}@{platform.node()}", world), backend=world.backend,
                       threads=torch.get_num_threads(), python=platform.python_version(), host=platform.node(),
                       commit=code_commit())


def code_commit() -> str | None:
    if settings().commit:
        return settings().commit
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None
