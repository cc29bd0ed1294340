"""How a run with several ranks is launched: torchrun, one process per rank (imports no torch)."""

from __future__ import annotations

import sys


def torchrun_command(nproc: int, *args: str) -> list[str]:
    """`python -m torch.distributed.run` for `nproc` ranks on this machine, each running `python *args`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
