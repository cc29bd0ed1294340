"""Start a worker for a set of GPUs (or the CPU): one job at a time on them, N small ones with --per-gpu N, or as
many as its measured memory and utilization allow with --per-gpu auto (worker/admission.py)."""

from __future__ import annotations

import argparse
import os
import socket


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--gpus", help="GPU ids this worker owns, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--queues", help="queues to consume (default: gpu,cpu with --gpus, else cpu)")
    parser.add_argument("--name", help="worker name (default: cnnlab-<gpus|cpu>@<host>)")
    parser.add_argument("--per-gpu", default="1", metavar="N|auto",
                        help="jobs run at once, each in its own slot with its own trainer (default 1); on a GPU "
                             "worker they share its one GPU; auto: up to CNNLAB_AUTO_SLOTS slots, each job admitted "
                             "only when the measured free memory and utilization leave room for it")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    slots = _slots(parser, args.per_gpu)
    if slots > 1 and args.gpus and "," in args.gpus:
        parser.error("--per-gpu shares one GPU between its jobs: start one worker per GPU (--gpus 0, --gpus 1, ...)")
    if slots > 1:  # the slots' trainers share this machine's cores instead of each taking all of them
        os.environ.setdefault("CNNLAB_TRAINER_THREADS", str(max(1, (os.cpu_count() or 1) // slots)))
    queues = args.queues or ("gpu,cpu" if args.gpus else "cpu")
    if args.gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpus
    elif "gpu" not in queues.split(","):
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU worker on a GPU machine must not take GPU 0
    tag = f"gpu{args.gpus.replace(',', '-')}" if args.gpus else "cpu"
    name = args.name or f"cnnlab-{tag}-{os.getpid()}@{socket.gethostname()}"

    from worker.app import app  # after CUDA_VISIBLE_DEVICES is set, for the children to inherit

    # One Celery pool process per slot; each keeps its own warm trainer (worker/warm.py).
    app.worker_main(["worker", "--concurrency", str(slots), "--queues", queues, "--hostname", name,
                     "--loglevel", args.loglevel, "--without-gossip", "--without-mingle"])


def _slots(parser: argparse.ArgumentParser, per_gpu: str) -> int:
    """N, or for `auto` CNNLAB_AUTO_SLOTS with measured admission on (its pool processes inherit CNNLAB_ADMIT)."""
    if per_gpu == "auto":
        from shared.lab.settings import settings  # after parsing: `--help` stays light

        os.environ["CNNLAB_ADMIT"] = "measured"
        return settings().auto_slots
    if not per_gpu.isdigit() or int(per_gpu) < 1:
        parser.error(f"--per-gpu must be a number of at least 1 or auto, got {per_gpu}")
    return int(per_gpu)


if __name__ == "__main__":
    main()
