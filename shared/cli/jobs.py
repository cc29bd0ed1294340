"""`cnnlab submit | jobs | logs | cancel | pull`: the service from the command line (shared.cli.client); no torch."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from shared.cli.client import Client, Json, ServiceError
from shared.lab.settings import settings
from shared.lab.specs import PRESETS, SpecError, parse_assignments

FINISHED = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 1.0  # how often `submit --wait` asks for the job's progress


def connection(p: argparse.ArgumentParser) -> None:
    """--server and --token, defaulting to CNNLAB_SERVER and CNNLAB_TOKEN."""
    p.add_argument("--server", metavar="URL", help="the service (default $CNNLAB_SERVER or http://127.0.0.1:5000)")
    p.add_argument("--token", help="API token, sent as Authorization: Bearer (default $CNNLAB_TOKEN)")


def client(args: argparse.Namespace) -> Client:
    env = settings()
    return Client(args.server or env.server, args.token or env.token)


def add_parsers(sub) -> None:
    """Register the service commands on the main parser's subcommands."""
    sb = sub.add_parser("submit", help="submit a preset (with overrides) to the service; print the job as JSON")
    sb.add_argument("preset", metavar="PRESET", help=f"one of {', '.join(PRESETS)}")
    sb.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a spec field, e.g. --set epochs=2 --set model_args.n_feature=8")
    sb.add_argument("--name")
    sb.add_argument("--priority", type=int, default=0, help="0-9, 9 runs first")
    sb.add_argument("--wait", action="store_true", help="follow the job (a bar on stderr) and print it once finished")
    js = sub.add_parser("jobs", help="list the service's jobs, newest first")
    for flag in ("status", "tag", "preset", "model", "dataset"):
        js.add_argument(f"--{flag}")
    js.add_argument("--archived", action="store_true", help="list archived jobs instead")
    js.add_argument("--limit", type=int, default=20)
    js.add_argument("--json", action="store_true", help="one JSON line per job instead of a table")
    lg = sub.add_parser("logs", help="print a job's log")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    cn = sub.add_parser("cancel", help="cancel a queued or running job")
    pl = sub.add_parser("pull", help="download a job's result JSON and its last checkpoint (sha256 checked)")
    pl.add_argument("--out", type=Path, help="directory (default ./job-ID)")
    for p in (lg, cn, pl):
        p.add_argument("job_id", metavar="ID", type=int)
    for p in (sb, js, lg, cn, pl):
        connection(p)


def run(args: argparse.Namespace) -> int:
    """Run a service command; errors are one line on stderr and exit code 2."""
    command = {"submit": submit, "jobs": list_jobs, "logs": logs, "cancel": cancel, "pull": pull}[args.command]
    try:
        return command(args, client(args))
    except (ServiceError, SpecError, OSError) as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted (the job goes on in the service)", file=sys.stderr)
        return 130


def line(job: Json) -> None:
    print(json.dumps(job), flush=True)


def submit(args: argparse.Namespace, api: Client) -> int:
    job = api.submit(args.preset, parse_assignments(args.overrides), args.name, args.priority)
    if not args.wait:
        line(job)
        return 0
    print(f"job {job['id']}: {api.server}/results/{job['id']}", file=sys.stderr)
    job = follow(api, job)
    line(job)
    return 0 if job["status"] == "succeeded" else 1


def follow(api: Client, job: Json) -> Json:
    """Poll the job until it finishes, drawing its progress as a bar on stderr, and above it why it waits whenever
    that changes (its place, busy workers, the job it waits behind); the finished job."""
    said = None
    with tqdm(total=1.0, file=sys.stderr, unit="", bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        while True:
            p = job.get("progress") or {}
            if job.get("waiting") and job["waiting"] != said:  # a line of its own above the bar: never cut short
                said = job["waiting"]
                bar.write(f"job {job['id']} waits: {said}", file=sys.stderr)
            bar.set_description_str(f"job {job['id']} {phase(job)}", refresh=False)
            bar.update(min(1.0, p.get("fraction") or 0.0) - bar.n)
            if job["status"] in FINISHED:
                break
            time.sleep(POLL_SECONDS)
            job = api.job(job["id"])
    if job["status"] != "succeeded":
        print(f"job {job['id']} {job['status']}{': ' + job['error'] if job.get('error') else ''}", file=sys.stderr)
    return job


def phase(job: Json) -> str:
    """`running: training epoch 1/2, step 30/94`, or the status alone."""
    p = job.get("progress") or {}
    if job["status"] != "running" or not p.get("phase"):
        return job["status"]
    where = f" epoch {p['epoch']}/{p['epochs']}" if p.get("epoch") is not None else ""
    return f"{p['phase']}{where}" + (f", step {p['step']}/{p['steps']}" if p.get("steps") else "")


COLUMNS = ("id", "status", "done", "accuracy", "name", "preset", "model", "dataset", "created", "tags")


def list_jobs(args: argparse.Namespace, api: Client) -> int:
    page = api.jobs(status=args.status, tag=args.tag, preset=args.preset, model=args.model, dataset=args.dataset,
                    archived="true" if args.archived else None, limit=args.limit)
    if args.json:
        for job in page["items"]:
            line(job)
        return 0
    rows = [COLUMNS] + [row(j) for j in page["items"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    print(f"{len(page['items'])} of {page['total']} jobs", file=sys.stderr)
    return 0


def row(job: Json) -> tuple[str, ...]:
    fraction = (job.get("progress") or {}).get("fraction")
    acc = job.get("test_accuracy")
    return (str(job["id"]), job["status"], f"{fraction:.0%}" if fraction is not None else "-",
            f"{acc:.2%}" if acc is not None else "-", job.get("name") or "-", job.get("preset") or "-", job["model"],
            job["dataset"], job["created_at"][:16].replace("T", " "), ",".join(job.get("tags") or []) or "-")


def logs(args: argparse.Namespace, api: Client) -> int:
    for text in api.log(args.job_id, follow=args.follow):
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


def cancel(args: argparse.Namespace, api: Client) -> int:
    line(api.cancel(args.job_id))
    return 0


def pull(args: argparse.Namespace, api: Client) -> int:
    """Write OUT/job-ID.json (the job with its result) and its last checkpoint; print what was written as JSON."""
    job = api.job(args.job_id)
    out = args.out or Path(f"job-{args.job_id}")
    out.mkdir(parents=True, exist_ok=True)
    if job["status"] not in FINISHED:
        print(f"cnnlab: job {args.job_id} is {job['status']}: pulling what it has so far", file=sys.stderr)
    ckpts = api.checkpoints(args.job_id)
    if not ckpts:
        raise ServiceError(404, f"job {args.job_id} has no checkpoint (status {job['status']})")
    last = ckpts[-1]
    path = api.download(last["url"], out / f"job{args.job_id}-epoch{last['epoch']:03d}.pt", last["sha256"])
    result = out / f"job-{args.job_id}.json"
    result.write_text(json.dumps(job, indent=1) + "\n")
    line({"job": args.job_id, "status": job["status"], "result": str(result), "checkpoint": str(path),
          "epoch": last["epoch"], "sha256": last["sha256"]})
    return 0
