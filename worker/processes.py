"""Child processes of a worker slot: started so they die with it, killed as a whole group, measured."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1  # prctl option from <linux/prctl.h>
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when the thread that started it dies, so a killed worker leaves none."""
    parent = os.getpid()

    def arm() -> None:
        # An ignored signal stays ignored across exec, and a Celery pool process ignores SIGTERM while idle
        # (worker/drain.py): the child must die of it, from its parent's death or from kill_group.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would ever send the signal
            os._exit(1)

    return arm


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL the child's whole process group (torchrun ranks, loader workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
            proc.poll()


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MiB (VmRSS: anonymous and file-backed pages); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024  # the kernel reports kB
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in process group `pgid` together, in MiB (a trainer and its ranks and loader
    workers; pages they share are counted once per process, so this errs high)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp
            total += int(fields[21]) * PAGE_BYTES / 2**20  # rss, in pages
    return total


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False
