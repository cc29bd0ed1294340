"""The supervisor: what a worker does with a job id. Claim it, train it in a trainer process, keep the lease, end it.

A job with one rank goes to this slot's warm trainer (worker/warm.py); a job with several ranks, or any job
when warm trainers are off, gets a fresh process as before (torchrun for several ranks).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from shared.settings import settings
from shared.specs import Spec
from shared.store import jobs
from shared.store.db import retry, session_scope
from shared.store.models import JobStatus
from shared.train.launch import torchrun_command
from worker import warm
from worker.jobfiles import EXIT_STOPPED, START_MARK, job_dir
from worker.processes import die_with_parent, kill_group

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 2.0
# Signals that come from outside the job (the kernel's OOM killer sends SIGKILL): its run is retried. A crash of
# its own (SIGSEGV, SIGABRT, SIGFPE, ...) is the code's, like a Python exception: the job fails.
INFRA_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGHUP}


class Attempt(Protocol):
    """A job being trained somewhere: a fresh process or a warm trainer."""

    def wait(self, timeout: float | None) -> int | None: ...  # its exit code once done, else None
    def kill(self) -> None: ...


class FreshProcess:
    """A trainer process started for this one job (torchrun for several ranks)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        kill_group(self.proc)


def trainer_command(job_id: int, world_size: int, resume: list[str]) -> list[str]:
    """A fresh interpreter (never CUDA in the Celery process); torchrun when the job wants several ranks."""
    args = ["-m", "worker.trainer", str(job_id), *(["--resume", *resume] if resume else [])]
    return [sys.executable, *args] if world_size == 1 else torchrun_command(world_size, *args)


def run_job(job_id: int, worker: str) -> str:
    """Run job `job_id` if this worker wins the claim; returns the job's final status or 'skipped'."""
    claimed = retry(lambda s: _claim(s, job_id, worker), what=f"claiming job {job_id}")
    if claimed is None:  # a duplicate delivery, a cancelled job, or another worker holds a live lease
        return "skipped"
    spec, resume, attempt, mates = claimed
    log.info("job %s started (attempt %s, %s%s)", job_id, attempt, worker,
             f", resuming from {Path(resume[0]).name}" if resume else "")
    if mates:
        return _run_pack(job_id, mates, worker, attempt)
    out = _prepare(job_id)
    if spec.world_size == 1 and settings().warm_trainers:
        rc, owned, cancelled = _train_warm(job_id, worker, out, resume)
    else:
        rc, owned, cancelled = _train_fresh(job_id, worker, out, spec.world_size, resume)
    if not owned:
        return "lost"
    return _end(job_id, worker, rc, cancelled, out, attempt)


def _end(job_id: int, worker: str, rc: int, cancelled: bool, out: Path, attempt: int) -> str:
    """Record how the job's attempt ended; a trainer killed from outside queues the job again instead."""
    if -rc in INFRA_SIGNALS and not cancelled and attempt < settings().max_attempts:
        # Killed from outside (the OOM killer, an operator): infrastructure, not the job's code. Queue it
        # again; the dispatcher sends it and the next claim resumes from the newest intact checkpoint.
        log.warning("job %s: trainer killed by signal %s on attempt %s; queued again", job_id, -rc, attempt)
        retry(lambda s: jobs.release(s, job_id, worker), what=f"releasing job {job_id}")
        return "requeued"
    status, error = _outcome(rc, cancelled, out)
    retry(lambda s: jobs.finish(s, job_id, worker, status, error), what=f"ending job {job_id}")
    log.info("job %s %s (attempt %s, %s)", job_id, status, attempt, worker)
    return status


def _run_pack(job_id: int, mates: list[int], worker: str, attempt: int) -> str:
    """Train a sweep cell's seeds as one pack in this slot's warm trainer; end each job by its own outcome."""
    members = {j: _prepare(j) for j in (job_id, *mates)}
    log.info("job %s trains with its cell mates %s as one pack", job_id, mates)
    trainer = warm.slot_trainer()
    rc, owned, cancelled, codes = 1, False, set(), {}
    try:
        trainer.hand(job_id, [], pack=mates)
        rc, owned, cancelled = _watch(trainer, members, worker)
        codes = trainer.codes
    except OSError as exc:
        log.warning("could not hand pack %s to trainer %s: %s", list(members), trainer.proc.pid, exc)
        rc, owned = trainer.wait(0) or 1, True
    finally:
        warm.after_job(reusable=rc == 0 and owned and not cancelled and not any(codes.values()))
    if not owned:
        return "lost"
    ends = {j: _end(j, worker, codes.get(j, rc), j in cancelled, out, attempt) for j, out in members.items()}
    return ends[job_id]


def _outcome(rc: int, cancelled: bool, out: Path) -> tuple[JobStatus, str | None]:
    if rc == 0:
        return JobStatus.SUCCEEDED, None
    if cancelled or rc == EXIT_STOPPED:
        return JobStatus.CANCELLED, None
    return JobStatus.FAILED, _error_text(out, rc)


def _claim(s, job_id: int, worker: str) -> tuple[Spec, list[str], int, list[int]] | None:
    """Take the job; its spec, the checkpoint to resume from ([path, sha256], or [] to start over), its attempt,
    and the cell mates claimed with it to train as one pack (see `packing`).

    Safe to retry: a claim whose commit landed before the connection broke is found as ours."""
    job = jobs.claim(s, job_id, worker) or jobs.held_by(s, job_id, worker)
    if job is None:
        return None
    ckpt = _resume_point(jobs.checkpoints_newest_first(s, job_id))
    # A retry resumes from the last intact checkpoint of the lost attempt, so finished epochs are not redone.
    jobs.discard_after(s, job_id, ckpt.epoch if ckpt else 0)
    spec = Spec.model_validate(job.spec)
    mates = [] if ckpt or not packing(spec) else jobs.claim_cell_mates(s, job, worker, settings().pack_max - 1)
    return spec, ([ckpt.path, ckpt.sha256] if ckpt else []), job.attempts, [m.id for m in mates]


def packing(spec: Spec) -> bool:
    """Whether this worker trains a sweep cell's seeds as one pack: a warm trainer, one rank, and
    CNNLAB_PACK_SEEDS (`gpu`: on GPU workers, where stacked seeds pay; `always`; `never`)."""
    mode = settings().pack_seeds
    on_gpu = bool(os.environ.get("CUDA_VISIBLE_DEVICES"))  # python -m worker sets it: GPU ids, or "" for CPUs
    return settings().warm_trainers and spec.world_size == 1 and (mode == "always" or (mode == "gpu" and on_gpu))


def _resume_point(checkpoints: list) -> object | None:
    """The newest checkpoint whose file is here and intact; a missing or corrupt one is skipped, not fatal."""
    for ckpt in checkpoints:
        path = Path(ckpt.path)
        if not path.is_file():  # another machine's disk (no shared CNNLAB_CHECKPOINT_DIR)
            continue
        with open(path, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() == ckpt.sha256:
                return ckpt
        log.warning("checkpoint %s is corrupt (sha256 differs): resuming from an earlier one", path)
    return None


def _prepare(job_id: int) -> Path:
    """The job's directory without a previous attempt's stop, error and pid files; the attempt's mark in its log."""
    out = job_dir(job_id)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [out / "stop", *out.glob("error-rank*.txt"), *out.glob("rank*.pid")]:
        stale.unlink(missing_ok=True)
    with open(out / "log.txt", "ab") as logfile:
        logfile.write(f"{START_MARK}\n".encode())
    return out


def _train_fresh(job_id: int, worker: str, out: Path, world_size: int, resume: list[str]) -> tuple[int, bool, bool]:
    with open(out / "log.txt", "ab") as logfile:
        proc = subprocess.Popen(trainer_command(job_id, world_size, resume), stdout=logfile,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())
        try:
            rc, owned, cancelled = _watch(FreshProcess(proc), {job_id: out}, worker)
            return rc, owned, bool(cancelled)
        finally:
            kill_group(proc)  # sweep any rank or loader process left behind, also if watching failed


def _train_warm(job_id: int, worker: str, out: Path, resume: list[str]) -> tuple[int, bool, bool]:
    """Hand the job to this slot's warm trainer; keep that trainer only if the job ended cleanly."""
    trainer = warm.slot_trainer()
    rc, owned, cancelled = 1, False, False
    try:
        trainer.hand(job_id, resume)
        rc, owned, stopped = _watch(trainer, {job_id: out}, worker)
        cancelled = bool(stopped)
    except OSError as exc:  # the trainer died before the job reached it (it was checked alive just before)
        log.warning("could not hand job %s to trainer %s: %s", job_id, trainer.proc.pid, exc)
        rc, owned = trainer.wait(0) or 1, True
    finally:  # also when watching failed (a database outage): a trainer in an unknown state is not reused
        warm.after_job(reusable=rc == 0 and owned and not cancelled)
    return rc, owned, cancelled


def _watch(attempt: Attempt, members: dict[int, Path], worker: str) -> tuple[int, bool, set[int]]:
    """Heartbeat while the jobs train (one, or a pack, the first leading); pass on each job's cancel.

    Returns (exit code, the first job still owned, the jobs whose cancel was seen)."""
    first, cancel_at, renewed = next(iter(members)), {}, time.monotonic()
    while True:
        rc = attempt.wait(HEARTBEAT_SECONDS)
        if rc is not None:
            return rc, True, set(cancel_at)
        try:
            with session_scope() as s:
                beats = {j: jobs.heartbeat(s, j, worker) for j in members}
            renewed = time.monotonic()
        except SQLAlchemyError as exc:  # a database blip: keep training, unless the lease runs out meanwhile
            log.warning("heartbeat of job %s failed: %s", first, exc)
            beats = {j: (time.monotonic() - renewed < jobs.lease_seconds(), False) for j in members}
        if not beats[first][0]:  # our lease was taken over (or lapsed): stop at once, the new owner runs the job
            attempt.kill()
            return attempt.wait(None) or 1, False, set()
        for j, (_, cancel) in beats.items():
            if cancel and j not in cancel_at:
                cancel_at[j] = time.monotonic()
                (members[j] / "stop").touch()  # every rank (or pack member) polls its file at step boundaries
        if len(cancel_at) == len(members) and time.monotonic() - max(cancel_at.values()) > settings().stop_grace_seconds:
            attempt.kill()  # a hung run: the next wait() sees it gone


def _error_text(out: Path, rc: int) -> str:
    """The ranks' one-line errors, with torchrun's note of a rank that died without one; else the log's tail."""
    lines = [f.read_text().strip()[:2000] for f in sorted(out.glob("error-rank*.txt"))]
    log = (out / "log.txt").read_text(errors="replace").splitlines() if (out / "log.txt").exists() else []
    attempt = log[len(log) - log[::-1].index(START_MARK):] if START_MARK in log else log
    lines += [ln.strip() for ln in attempt if "exitcode" in ln][-4:]  # torchrun's note of each failed rank
    if not lines:
        lines = [ln for ln in attempt if ln.strip()][-20:]
    return f"training process exited with code {rc}" + (":\n" + "\n".join(lines) if lines else "")
