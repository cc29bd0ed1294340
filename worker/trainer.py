"""The trainer: the child process that trains one job, `python -m worker.trainer JOB_ID [--resume CKPT SHA256]`.

Under torchrun there is one per rank. It trains the job's stored spec and, on rank 0 only, streams progress,
metrics, checkpoints and the result into the database. The job's status is left to the supervisor
(worker/supervisor.py), which owns the lease.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import shutil
import threading
import time
import traceback
from pathlib import Path

import torch

from shared.lab.results import EpochMetrics, EvalPoint, FitResult, PackInfo, ResultDetails, RunInfo
from shared.lab.settings import settings
from shared.lab.specs import Spec
from shared.store import artifacts
from shared.store import reporter as writes
from shared.store.models import utcnow
from shared.train import checkpoint, figures
from shared.train.engine import Reporter, Run, Stopped, fit
from shared.train.packs import fit_pack
from worker.jobfiles import EXIT_STOPPED, UPLOAD_SUFFIX, job_dir


def held(info: RunInfo) -> str:
    """Why the within-epoch subset is smaller than the spec's eval_samples, if it is (the evaluation budget)."""
    asked = min(info.spec.eval_samples, info.data.test_samples)
    if info.eval_subset is None or info.eval_subset >= asked:
        return ""
    return (f" (eval_samples {info.spec.eval_samples:,} held to {info.eval_subset:,} by the evaluation budget: with "
            f"eval_every null the in-training evaluations read at most 5% of the run's training samples; set "
            f"eval_every to evaluate on all {asked:,})")


class DbReporter(Reporter):
    """Writes what the engine reports from a background thread, so the training loop never waits on the database.

    Writes keep their order and each is sent whole (shared.store.reporter), so a write the database missed can be
    sent again: during an outage the writer retries with backoff (shared.store.db.retry) while training goes on,
    and a bounded buffer holds what waits. Progress goes out at most once a second. `close()` flushes and re-raises
    a failed write. The trained run (`on_done`) stays here for the pages' images.
    """

    BUFFER = 10_000  # writes waiting; when full (a long outage) training pauses rather than drop any

    def __init__(self, job_id: int, min_interval: float = 1.0):
        self.job_id = job_id
        self.min_interval = min_interval
        self.last = 0.0
        self.epochs = 1
        self.keep: int | None = None  # the spec's keep_checkpoints, known at on_start
        self.info: RunInfo | None = None  # set by on_start
        self.run: Run | None = None  # set by on_done: the trained model and its data
        self.phase, self.at, self.started, self.first_step = "loading", (1, 0, 1), time.monotonic(), 0
        self.error: Exception | None = None
        self.pending: queue.Queue = queue.Queue(maxsize=self.BUFFER)
        self.writer = threading.Thread(target=self._write, name="db-reporter", daemon=True)
        self.writer.start()

    def _write(self) -> None:
        while (write := self.pending.get()) is not None:
            if self.error is None:
                try:
                    if callable(write):  # an upload first, then the row that records it
                        write = write()
                    writes.send(write, what=f"job {self.job_id}'s progress")
                except Exception as exc:  # noqa: BLE001 - surfaced by close()
                    self.error = exc

    def close(self) -> None:
        self.pending.put(None)
        self.writer.join()
        if self.error is not None:
            raise self.error

    def _progress(self, **progress) -> None:
        self.pending.put(writes.progress(self.job_id, progress))

    def loading(self, spec: Spec) -> None:
        """Before setup: the data is being loaded (decoded, or found in the cache) and moved to the device."""
        say(f"job {self.job_id}: loading {spec.dataset} and building {spec.model}")
        self._progress(phase="loading", fraction=0.0)

    def on_start(self, info: RunInfo) -> None:
        self.info, self.started = info, time.monotonic()
        self.epochs = info.epochs or info.spec.epochs  # `steps` runs count their epochs from the step budget
        self.keep = info.spec.keep_checkpoints
        self.first_step = info.start_epoch * info.steps_per_epoch  # a resumed attempt's steps start here
        say(f"training {info.spec.model} ({info.params:,} parameters) on {info.environment.device}: "
            f"{self.epochs} epochs of {info.steps_per_epoch} steps, batch {info.spec.batch_size}, "
            f"{info.data.train_samples:,} training / {info.data.test_samples:,} test images"
            + (f", from epoch {info.start_epoch + 1}" if info.start_epoch else ""))
        say(f"evaluating every {info.eval_every:,} samples on the first {info.eval_subset:,} test images, and on the "
            f"whole test set after every epoch{held(info)}" if info.eval_every else "evaluating after every epoch")
        self.phase = "training"
        self._report(info.start_epoch + 1, 0, info.steps_per_epoch)

    def _report(self, epoch: int, step: int, steps: int) -> None:
        """Progress: phase, step x/y in the epoch and the run, a fraction below 1 until done, and an ETA (s)."""
        self.at = (epoch, step, steps)
        done = (epoch - 1) * self.info.steps_per_epoch + step  # `steps` is shorter in a step budget's last epoch
        total = self.info.total_steps or self.epochs * steps
        eta = None
        if done > self.first_step:  # wall time per step so far this attempt, evaluations included
            eta = (time.monotonic() - self.started) / (done - self.first_step) * max(total - done, 0)
        self._progress(phase=self.phase, epoch=epoch, epochs=self.epochs, step=step, steps=steps, global_step=done,
                       total_steps=total, fraction=min(done / total, 0.99), eta_seconds=eta,
                       reported_at=utcnow().isoformat())

    def on_step(self, epoch, step, steps, loss):
        global_step = (epoch - 1) * self.info.steps_per_epoch + step
        if loss is not None:
            n = self.info.train_samples or 0
            seen = (epoch - 1) * n + min(step * self.info.spec.batch_size, n)
            self.pending.put(writes.step_loss(self.job_id, epoch, step, global_step, loss, seen))
        now = time.monotonic()
        self.at, self.phase = (epoch, step, steps), "training"
        if now - self.last >= self.min_interval:
            self.last = now
            self._report(epoch, step, steps)

    def on_phase(self, phase: str) -> None:
        say({"evaluating": "evaluating on the whole test set", "saving": "saving a checkpoint"}.get(phase, phase))
        self.phase = phase
        self._report(*self.at)  # the last step's numbers stand; the phase changes at once (not throttled)

    def on_eval(self, point: EvalPoint) -> None:
        if not point.full:
            say(f"  {point.samples_seen:,} samples (epoch {point.epoch:.2f}): test accuracy "
                f"{point.test_accuracy:.2%}, loss {point.test_loss:.4f} on {point.test_samples:,} test images")
        self.pending.put(writes.eval_point(self.job_id, point))

    def on_epoch(self, metrics: EpochMetrics) -> None:
        say(f"epoch {metrics.epoch}/{self.epochs}: train loss {metrics.train_loss:.4f}, test loss "
            f"{metrics.test_loss:.4f}, test accuracy {metrics.test_accuracy:.2%} ({metrics.seconds:.1f} s, "
            f"{metrics.samples_per_second:,.0f} samples/s)")
        self.pending.put(writes.epoch_metrics(self.job_id, metrics))

    def on_checkpoint(self, epoch, path, sha256):
        """Upload the checkpoint to the artifact store (on the writer thread: training goes on), then record its key:
        a recorded checkpoint is always in the store, whole. The log goes up with it, so a machine that takes the
        job over after this one dies keeps the story up to this checkpoint. The one that falls out of the newest
        `keep_checkpoints` leaves the store and the database too.

        The writer uploads from a hard link made now: the engine prunes the local file `keep_checkpoints` epochs
        later, which can come before a lagging writer reads it (epochs of 0.1 s did: the job failed)."""
        say(f"checkpoint {Path(path).name} (sha256 {sha256[:12]}…)")
        staged = stage_for_upload(Path(path))

        def upload() -> writes.Write:
            try:
                key = artifacts.artifact_key(self.job_id, Path(path).name)
                artifacts.upload(staged, key)
                artifacts.upload_log(self.job_id, Path(path).parent / "log.txt")
                size = staged.stat().st_size
            finally:
                staged.unlink(missing_ok=True)
            pruned = None
            if self.keep is not None and epoch - self.keep >= 1:
                pruned = epoch - self.keep
                artifacts.delete(artifacts.artifact_key(self.job_id, checkpoint.path_for(Path(path).parent, pruned).name))
            return writes.checkpoint_uploaded(self.job_id, epoch, key, sha256, size, prune_through=pruned)

        self.pending.put(upload)

    def on_done(self, run: Run) -> None:
        self.run = run


def stage_for_upload(path: Path) -> Path:
    """A second name for the checkpoint (`.epoch-003.pt.upload`) that pruning leaves alone; a copy where the
    filesystem has no hard links."""
    staged = path.with_name(f".{path.name}{UPLOAD_SUFFIX}")
    staged.unlink(missing_ok=True)  # left by an attempt that died before its upload
    try:
        os.link(path, staged)
    except OSError:
        shutil.copyfile(path, staged)
    return staged


def say(message: str) -> None:
    """One line of the job's log (the trainer's stdout is the job's log.txt), stamped in UTC."""
    print(f"{utcnow():%Y-%m-%d %H:%M:%S} {message}", flush=True)


def use_threads() -> None:
    """torch's CPU threads for this process (CNNLAB_TRAINER_THREADS). Trainers that share a machine's cores must
    not each start one thread per core: 16 trainers of 2 threads on 2 cores spun so much that jobs ran 5x slower
    (bench/fleet.py, measured)."""
    threads = settings().trainer_threads
    if threads:
        torch.set_num_threads(threads)


def log_to_stderr() -> None:
    """Warnings (Python's and the engine's log records) go to stderr, which is the job's log, stamped like `say`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")
    logging.Formatter.converter = time.gmtime  # UTC, as `say` writes
    logging.captureWarnings(True)


def details(result: FitResult, run: Run | None, pack: PackInfo | None = None) -> ResultDetails:
    """The stored details of `result`, with the pages' images drawn from the trained `run` (no reload)."""
    out = ResultDetails(confusion=result.confusion, misclassified=result.misclassified, history=result.history,
                        pack=pack, tta=result.tta)
    try:  # the pages' images are extras: failing to draw them must never fail the job
        if run is None:
            raise RuntimeError("the engine handed over no trained model to draw from")
        out.artifacts = figures.of_run(run, result.misclassified)
    except Exception as exc:  # noqa: BLE001
        out.artifacts_error = f"{type(exc).__name__}: {exc}"
    return out


def save_result(job_id: int, result: FitResult, run: Run | None, pack: PackInfo | None = None) -> None:
    """Draw the pages' images and store the result (rank 0), the job's progress 'saving' meanwhile."""
    say("drawing the pages' images and saving the result")
    writes.set_progress(job_id, {"phase": "saving", "epoch": result.epochs, "epochs": result.epochs, "fraction": 0.99})
    stored = details(result, run, pack)
    done = {"phase": "done", "epoch": result.epochs, "epochs": result.epochs, "fraction": 1.0}
    writes.save_result(job_id, result, stored, done)
    say(f"done: test accuracy {result.test_accuracy:.2%}, test loss {result.test_loss:.4f}")


def train_job(job_id: int, resume: Path | None, resume_sha256: str | None, rank: int) -> None:
    """Train the job's spec; rank 0 reports to the database and stores the result."""
    spec = writes.job_specs([job_id])[job_id]
    out = job_dir(job_id)
    reporter = DbReporter(job_id) if rank == 0 else None
    if reporter is not None:
        reporter.loading(spec)
    try:
        result = fit(spec, data_root=settings().data_dir, out_dir=out, resume=resume, resume_sha256=resume_sha256,
                     reporter=reporter, should_stop=(out / "stop").exists)
    finally:  # what was reported is stored, also when the run stops or fails
        if reporter is not None:
            reporter.close()
    if result is not None:
        save_result(job_id, result, reporter.run)


def run(job_id: int, resume: Path | None = None, resume_sha256: str | None = None) -> int:
    """Train job `job_id`; returns the process exit code (0 done, EXIT_STOPPED cancelled, 1 failed)."""
    rank = int(os.environ.get("RANK", "0"))  # set by torchrun
    out = job_dir(job_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.pid").write_text(str(os.getpid()))  # lets operators (and tests) find each rank
    try:
        train_job(job_id, resume, resume_sha256, rank)
        return 0
    except Stopped:
        return EXIT_STOPPED
    except Exception as exc:  # noqa: BLE001 - every failure becomes the job's error text
        traceback.print_exc()  # the full story goes to the job's log
        who = f"rank {rank}: " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        (out / f"error-rank{rank}.txt").write_text(f"{who}{type(exc).__name__}: {exc}")
        return 1


def run_pack(job_ids: list[int]) -> dict[int, int]:
    """Train jobs that differ only in per-member fields (seed, lr, ...: shared.lab.packs) as one pack
    (shared.train.packs); returns each job's exit code."""
    started = utcnow()
    specs = writes.job_specs(job_ids)
    for j in job_ids:
        job_dir(j).mkdir(parents=True, exist_ok=True)
        (job_dir(j) / "rank0.pid").write_text(str(os.getpid()))
        if j != job_ids[0]:
            with open(job_dir(j) / "log.txt", "a") as f:
                f.write(f"trained as one pack with jobs {job_ids}: the pack's output is in job {job_ids[0]}'s log\n")
    print(f"trainer: jobs {job_ids} (seeds {[specs[j].seed for j in job_ids]}) train as one pack", flush=True)
    reporters = [DbReporter(j) for j in job_ids]
    try:
        outcomes = fit_pack([specs[j] for j in job_ids], data_root=settings().data_dir,
                            out_dirs=[job_dir(j) for j in job_ids], reporters=reporters,
                            should_stop=[(job_dir(j) / "stop").exists for j in job_ids])
    except Exception as exc:  # noqa: BLE001 - what fails before training fails every member
        outcomes = [exc] * len(job_ids)
    pack = PackInfo(jobs=job_ids, started_at=started.isoformat(), finished_at=utcnow().isoformat())
    return {j: _member_code(j, r, outcome, pack) for j, r, outcome in zip(job_ids, reporters, outcomes, strict=True)}


def _member_code(job_id: int, reporter: DbReporter, outcome: FitResult | BaseException, pack: PackInfo) -> int:
    """Store one pack member's result (or its error) as `run` would; its exit code."""
    try:
        reporter.close()
        if isinstance(outcome, BaseException):
            raise outcome
        save_result(job_id, outcome, reporter.run, pack.model_copy(update={"train_seconds": outcome.train_seconds}))
        return 0
    except Stopped:
        return EXIT_STOPPED
    except Exception as exc:  # noqa: BLE001 - every failure becomes the job's error text
        traceback.print_exception(exc)
        (job_dir(job_id) / "error-rank0.txt").write_text(f"{type(exc).__name__}: {exc}")
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.trainer", description=__doc__.splitlines()[0])
    parser.add_argument("job_id", type=int)
    parser.add_argument("--resume", nargs=2, metavar=("CKPT", "SHA256"), help="continue from this checkpoint")
    args = parser.parse_args(argv)
    log_to_stderr()
    use_threads()
    resume, sha = (Path(args.resume[0]), args.resume[1]) if args.resume else (None, None)
    return run(args.job_id, resume, sha)


if __name__ == "__main__":
    raise SystemExit(main())
