"""The warm trainer: `python -m worker.serve FD`, one long-lived process that trains the jobs a slot hands it.

It warms up once (torch, the engine, torch._dynamo, the database connection, CUDA when visible), then loops:
receive a job, point fd 1 and 2 at the job's log.txt, train it exactly as `python -m worker.trainer` would,
point them back, report the exit code. The protocol and the supervisor's side are in worker/warm.py.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from worker.jobfiles import job_dir
from worker.warm import Done, Hand, Ready, Size, Sized, Started, receive, send


def warm_up() -> None:
    """Pay once per process what every job would pay: imports, lazy torch state, a database connection."""
    t0 = time.perf_counter()
    # Imported here, inside the clock: paying for them once is what warming up is (the line below says how long).
    import platform

    import torch

    # Every optimizer imports torch._dynamo (~1.1 s) on first use: Optimizer.add_param_group is wrapped by
    # torch._disable_dynamo, and each step() passes through _use_grad_for_differentiable, which imports it
    # to call graph_break(). It cannot be avoided, so it is paid here, before any job.
    import torch._dynamo  # noqa: F401 - imported for its side effect (see above)

    import shared.train.figures  # noqa: F401 - the result's images are drawn after every job
    from shared.store.db import DatabaseError, connect  # loaded here with the rest, before the first job
    from worker import trainer  # (torch: the warm trainer's whole point is to load it once)

    trainer.use_threads()

    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    model(torch.zeros(3, 4)).sum().backward()  # autograd's and the fused optimizer's first-call setup
    opt.step()
    platform.processor()  # cached per process; on Linux it runs `uname -p`
    if torch.cuda.is_available():
        torch.zeros(1, device="cuda")  # the CUDA context (~0.3-1 s) once, not per job
    try:
        connect()  # one pooled connection, kept open
    except DatabaseError as exc:  # an outage now is the job's writes' to wait out (they retry), not a reason to die
        print(f"warm-up: no database connection yet ({str(exc).splitlines()[0]})", file=sys.stderr, flush=True)
    # What is alive now lives as long as the process: keep it out of every later collection. A full collection
    # of torch's objects takes 0.1-0.5 s on 2 CPU cores; frozen, the collections between and during jobs only
    # walk what the jobs made.
    gc.freeze()
    print(f"cnnlab trainer {os.getpid()} warm in {time.perf_counter() - t0:.2f} s", flush=True)


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send this process's fd 1 and 2 (print, tracebacks, C libraries, faulthandler) to `log` for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def train(hand: Hand) -> dict[int, int]:
    """One job (or a pack), as `python -m worker.trainer` runs it; a job that calls sys.exit fails instead of
    ending us. Returns each job's code."""
    from worker import trainer  # loaded, and timed, by warm_up: importing this module stays light

    resume, sha = (Path(hand.resume[0]), hand.resume[1]) if hand.resume else (None, None)
    members = [hand.job_id, *hand.pack]
    try:
        if hand.pack:
            return trainer.run_pack(members)
        return {hand.job_id: trainer.run(hand.job_id, resume, sha)}
    except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from a job: that job failed
        print(f"trainer: job {hand.job_id} raised {type(exc).__name__}: {exc}", file=sys.stderr)
        return dict.fromkeys(members, 1)


def sized(spec: dict, ask: int = 0) -> Sized:
    """The memory a job needs here (shared.train.memory.job_need); an empty answer if it cannot be sized."""
    from shared.lab.settings import settings  # these three: loaded by warm_up (the trainer's imports) already;
    from shared.lab.specs import Spec  # importing this module stays light
    from shared.train.memory import job_need

    try:
        shared, member = job_need(Spec.stored(spec), settings().data_dir)
    except Exception as exc:  # noqa: BLE001 - missing data, a model it lacks: the job runs alone and fails there
        print(f"trainer: cannot size a job: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return Sized(ask=ask)
    return Sized(ask=ask, shared_bytes=shared, member_bytes=member)


def tidy() -> None:
    """Between jobs: free what the last one left (its tensors, the CUDA cache), so the next starts lean."""
    gc.collect()
    import torch  # loaded by warm_up already: a lookup

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def serve(conn: Connection) -> None:
    """Train the jobs that arrive until the supervisor closes the connection."""
    warm_up()
    try:
        send(conn, Ready(pid=os.getpid()))
    except OSError:  # the supervisor went away while this trainer warmed up (a worker shutting down)
        return
    while True:
        try:
            hand = receive(conn)
        except (EOFError, OSError):  # closed or reset by the supervisor: no more jobs, exit quietly
            return
        if isinstance(hand, Size):
            send(conn, sized(hand.spec, hand.ask))
            continue
        if not isinstance(hand, Hand):
            raise TypeError(f"expected a job, got {hand!r}")
        with output_to(job_dir(hand.job_id) / "log.txt"):  # a pack's output: its first job's log
            send(conn, Started(job_id=hand.job_id))
            codes = train(hand)
        tidy()
        send(conn, Done(job_id=hand.job_id, code=codes[hand.job_id], codes=codes))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    faulthandler.enable()  # a crash writes the Python stack to fd 2: the job's log while a job runs
    from worker.trainer import log_to_stderr  # after faulthandler is on: a crash while torch loads shows its stack

    log_to_stderr()  # logging's handler writes to fd 2 too: the job's log while a job runs
    serve(Connection(int(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
