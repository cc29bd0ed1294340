"""The trainer's use of the machine, sampled by its supervisor: CPU % and resident memory of the trainer's processes
(psutil), and on GPUs the devices' utilization and the memory the trainer holds (NVML, nvidia-ml-py)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass

import psutil
import pynvml

from shared.lab.results import SystemSample
from shared.lab.settings import settings

log = logging.getLogger(__name__)
_nvml: bool | None = None  # whether NVML initialized in this process (None: not tried yet)


def _gpus() -> list:
    """Handles of the GPUs this worker slot uses (CUDA_VISIBLE_DEVICES' ids); none without NVML or a GPU."""
    global _nvml
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if not visible.strip():
        return []
    if _nvml is None:
        try:
            pynvml.nvmlInit()
            _nvml = True
        except pynvml.NVMLError as exc:
            log.info("no GPU metrics: %s", exc)
            _nvml = False
    if not _nvml:
        return []
    handles = []
    for ident in visible.split(","):
        with contextlib.suppress(pynvml.NVMLError, ValueError):
            ident = ident.strip()
            handles.append(pynvml.nvmlDeviceGetHandleByUUID(ident) if ident.startswith("GPU-")
                           else pynvml.nvmlDeviceGetHandleByIndex(int(ident)))
    return handles


class Sampler:
    """Samples one attempt's trainer (process `pid` and its descendants) every CNNLAB_SYSTEM_SAMPLE_SECONDS."""

    def __init__(self, pid: int, attempt: int):
        self.attempt, self.start = attempt, time.monotonic()
        self.root = psutil.Process(pid) if psutil.pid_exists(pid) else None
        self.seen: dict[int, psutil.Process] = {}  # kept between samples: cpu_percent measures since the last call
        self.due = self.start + settings().system_sample_seconds
        self.gpus = _gpus()
        self._processes()  # starts each process's CPU count, so the first sample covers a whole interval

    def due_sample(self) -> SystemSample | None:
        """A sample if one is due (the first a full interval in, so CPU % covers it), else None."""
        now = time.monotonic()
        if now < self.due or self.root is None:
            return None
        self.due = now + settings().system_sample_seconds
        return self.sample(now)

    def sample(self, now: float) -> SystemSample | None:
        cpu, rss, pids = 0.0, 0.0, set()
        for proc in self._processes():
            try:
                cpu += proc.cpu_percent(None)  # % of one core since this process's previous call
                rss += proc.memory_info().rss / 2**20
                pids.add(proc.pid)
            except psutil.Error:
                continue
        if not pids:
            return None
        gpu_percent, gpu_mb = self._gpu(pids)
        return SystemSample(seconds=round(now - self.start, 2), attempt=self.attempt, cpu_percent=round(cpu, 1),
                            rss_mb=round(rss, 1), gpu_percent=gpu_percent, gpu_memory_mb=gpu_mb,
                            load_1m=round(os.getloadavg()[0], 2))

    def _processes(self) -> list[psutil.Process]:
        """The trainer and its descendants (ranks, loader workers), the same Process objects as last time."""
        try:
            current = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []
        for proc in current:
            if proc.pid not in self.seen:
                self.seen[proc.pid] = proc
                with contextlib.suppress(psutil.Error):
                    proc.cpu_percent(None)  # the first call only starts the count
        return [self.seen[p.pid] for p in current]

    def _gpu(self, pids: set[int]) -> tuple[float | None, float | None]:
        """Mean utilization of this slot's GPUs, and the memory the trainer's processes hold on them (MiB)."""
        if not self.gpus:
            return None, None
        util, held = [], 0.0
        for handle in self.gpus:
            with contextlib.suppress(pynvml.NVMLError):
                util.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if proc.pid in pids and proc.usedGpuMemory:
                        held += proc.usedGpuMemory / 2**20
        return (sum(util) / len(util) if util else None), round(held, 1)


def gpu_count() -> int:
    """The GPUs this worker has, without torch: the visible ones NVML knows (every one when CUDA_VISIBLE_DEVICES is
    unset); 0 on a CPU worker or without a driver."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return len(_gpus())
    try:
        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError:
        return 0


@dataclass(frozen=True)
class Measured:
    """The device's state now, as admission reads it."""

    device: str  # "GPU" or "CPU", for the words
    free_gb: float  # memory free for another job (GiB)
    busy_percent: float | None  # utilization now; None if it cannot be read


def measure(cpu_interval: float = 0.2) -> Measured:
    """This worker's device now: its GPU by NVML, else this machine's available memory and all cores' CPU % over
    `cpu_interval` seconds (psutil)."""
    gpus = _gpus()
    if gpus:
        return _gpu_state(gpus[0])
    return Measured("CPU", psutil.virtual_memory().available / 2**30, psutil.cpu_percent(interval=cpu_interval))


def _gpu_state(handle) -> Measured:
    """NVML's free memory and utilization (the share of the last sample period a kernel ran) of one GPU."""
    free = pynvml.nvmlDeviceGetMemoryInfo(handle).free / 2**30
    try:
        busy = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except pynvml.NVMLError:
        busy = None
    return Measured("GPU", free, busy)
