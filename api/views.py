"""View models of the results pages: job rows, one job's view, comparisons and the seed's tables, from stored rows."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api.schemas import JobOut, JobSummary, Metrics
from api.sweepviews import cell_groups
from shared.specs import PRESETS, preset_spec
from shared.store import jobs
from shared.store.jobs import NotFound, get_job
from shared.store.models import ACTIVE, Job, JobStatus, utcnow

CLEAR = 0.02  # "clearly better/worse": at least 2 points of test accuracy
SAME = 0.02  # "about unchanged": within 2 points
MAX_COMPARE = 12


class BadRequest(ValueError):
    """A request the pages cannot answer (bad ids, filters); the message is shown to the user."""


def duration(job: Job) -> float | None:
    """Seconds from start to finish, or to now while running."""
    if job.started_at is None:
        return None
    end = job.finished_at or (utcnow() if job.status == JobStatus.RUNNING else None)
    return (end - job.started_at).total_seconds() if end else None


def job_row(job: Job) -> dict[str, Any]:
    return JobSummary.of(job).model_dump(mode="json") | {"duration": duration(job)}


def job_full(job: Job) -> dict[str, Any]:
    return JobOut.of(job).model_dump(mode="json") | {"duration": duration(job)}


def metrics(session: Session, job_id: int) -> dict[str, Any]:
    return Metrics.of(*jobs.metrics(session, job_id)).model_dump(mode="json")


def active_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE)))


def per_class(confusion: list[list[int]], classes: list[str]) -> list[dict[str, Any]]:
    """Test accuracy of each true class, from the confusion matrix rows."""
    out = []
    for i, row in enumerate(confusion):
        total = sum(row)
        out.append({"class": classes[i] if i < len(classes) else str(i), "correct": row[i], "total": total,
                    "accuracy": row[i] / total if total else None})
    return out


def job_view(session: Session, job_id: int) -> dict[str, Any]:
    """Everything the results page of one job shows."""
    job = get_job(session, job_id)
    view = {"job": job_full(job), "metrics": metrics(session, job_id),
            "checkpoints": [{"epoch": c.epoch, "sha256": c.sha256, "size_bytes": c.size_bytes}
                            for c in job.checkpoints],
            "details": {}, "artifacts": None, "per_class": None, "classes": None}
    if job.result is not None:
        details = job.result.details or {}
        classes = (job.result.data or {}).get("classes") or []
        view |= {"details": details, "artifacts": details.get("artifacts"), "classes": classes}
        if details.get("confusion"):
            view["per_class"] = per_class(details["confusion"], classes)
    return view


def parse_ids(raw: str | None) -> list[int]:
    """`1,2,3` -> [1, 2, 3] (order kept, repeats dropped)."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not parts:
        raise BadRequest("pick the jobs to compare: /compare?ids=1,2,3")
    bad = [p for p in parts if not (p.isascii() and p.isdigit() and int(p) < 2**31)]
    if bad:
        raise BadRequest(f"job ids are whole numbers; got {', '.join(repr(b) for b in bad[:5])}")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if len(ids) > MAX_COMPARE:
        raise BadRequest(f"compare at most {MAX_COMPARE} jobs at once, got {len(ids)}")
    return ids


def _show(value: Any) -> str:
    """Spec values as JSON (false, null, {"n_feature": 6}), strings bare."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def compare(session: Session, ids: list[int]) -> dict[str, Any]:
    """Jobs side by side: spec rows flagged where they differ, results, and curves to overlay."""
    found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)).options(selectinload(Job.result)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no job {', '.join(map(str, missing))}")
    picked = [found[i] for i in ids]
    fields = list(dict.fromkeys(k for j in picked for k in (j.spec or {})))
    spec_rows = []
    for field in ["preset", *fields]:
        values = [j.preset if field == "preset" else (j.spec or {}).get(field) for j in picked]
        spec_rows.append({"field": field, "values": [_show(v) for v in values],
                          "differs": len({_show(v) for v in values}) > 1})
    series = [{"id": j.id, "label": f"#{j.id} {j.name or j.preset or j.model}", **metrics(session, j.id)}
              for j in picked]
    return {"jobs": [job_full(j) for j in picked], "spec_rows": spec_rows,
            "series": series, "grouping": cell_groups(picked)}


def overrides(job: Job) -> dict[str, Any]:
    """Spec fields where the job departs from its preset (e.g. fewer epochs, another dataset)."""
    if job.preset not in PRESETS:
        return {}
    base = preset_spec(job.preset).model_dump()
    return {k: v for k, v in (job.spec or {}).items() if base.get(k) != v}


def latest_succeeded(session: Session, preset: str) -> Job | None:
    query = (select(Job).where(Job.preset == preset, Job.status == JobStatus.SUCCEEDED)
             .order_by(Job.finished_at.desc(), Job.id.desc()).limit(1).options(selectinload(Job.result)))
    job = session.scalars(query).first()
    return job if job is not None and job.result is not None else None


# The seed's tables: which presets each compares, and the accuracies the seed printed.
SECTIONS = [
    {"title": "FC vs CNN at equal parameters (MNIST)", "presets": ["mnist-fc", "mnist-cnn"], "seed": {}},
    {"title": "Normal vs permuted pixels (MNIST)",
     "presets": ["mnist-fc", "mnist-cnn", "mnist-fc-permuted", "mnist-cnn-permuted"], "seed": {}},
    {"title": "LeNet vs VGG (CIFAR-10)", "presets": ["cifar10-lenet", "cifar10-vgg"],
     "seed": {"cifar10-lenet": 0.63, "cifar10-vgg": 0.8287}},
]

# (section, the seed's claim, presets (a, b), test on accuracy b - a, what "holds" needs)
CONCLUSIONS = [
    (0, "With the same number of parameters (~6.4k), the CNN is clearly more accurate than the FC network.",
     ("mnist-fc", "mnist-cnn"), lambda d: d >= CLEAR, f"CNN ahead by at least {CLEAR * 100:g} points"),
    (1, "Permuting the pixels leaves the FC network about unchanged.",
     ("mnist-fc", "mnist-fc-permuted"), lambda d: abs(d) <= SAME, f"within {SAME * 100:g} points"),
    (1, "Permuting the pixels makes the CNN clearly worse.",
     ("mnist-cnn", "mnist-cnn-permuted"), lambda d: d <= -CLEAR, f"a drop of at least {CLEAR * 100:g} points"),
    (2, "The simplified VGG is clearly more accurate than LeNet (seed: 63% → 82.87%).",
     ("cifar10-lenet", "cifar10-vgg"), lambda d: d >= CLEAR, f"VGG ahead by at least {CLEAR * 100:g} points"),
]


def _row(preset: str, job: Job | None, seed: float | None) -> dict[str, Any]:
    row = {"preset": preset, "job": None, "seed_accuracy": seed}
    if job is not None:
        r = job.result
        row["job"] = {"id": job.id, "name": job.name, "accuracy": r.test_accuracy, "params": r.params,
                      "epochs": r.epochs, "data": r.data or {}, "device": (r.environment or {}).get("device"),
                      "finished_at": job.finished_at.isoformat() if job.finished_at else None, "overrides": overrides(job),
                      "vs_seed": r.test_accuracy - seed if seed is not None else None}
    return row


JPEG_NOTE = ("cifar10-jpeg is a JPEG (quality 75) re-encoding of CIFAR-10, not the original release the seed used: "
             "accuracies on it can differ from the seed's by a point or so.")


def _data_notes(rows: list[dict]) -> list[str]:
    """Say so where a job trained on other data than the seed's (each row also shows its data source)."""
    notes = []
    for row in rows:
        dataset = (row["job"] or {}).get("overrides", {}).get("dataset")
        if dataset is not None:
            note = JPEG_NOTE if dataset == "cifar10-jpeg" else f"{row['preset']} ran on {dataset}, not the seed's data."
            if note not in notes:
                notes.append(note)
    return notes


def seed_report(session: Session) -> list[dict[str, Any]]:
    """The seed's tables filled from the latest succeeded job of each preset, each claim checked."""
    latest = {p: latest_succeeded(session, p) for s in SECTIONS for p in s["presets"]}
    sections = []
    for s in SECTIONS:
        rows = [_row(p, latest[p], s["seed"].get(p)) for p in s["presets"]]
        sections.append({"title": s["title"], "rows": rows, "seed": bool(s["seed"]), "notes": _data_notes(rows),
                         "conclusions": []})
    for index, claim, (a, b), test, needs in CONCLUSIONS:
        missing = [p for p in (a, b) if latest[p] is None]
        item = {"claim": claim, "needs": needs, "presets": (a, b)}
        if missing:
            item |= {"verdict": "not yet run", "evidence": f"no succeeded {' or '.join(missing)} job yet"}
        else:
            acc_a, acc_b = latest[a].result.test_accuracy, latest[b].result.test_accuracy
            d = acc_b - acc_a
            item |= {"verdict": "holds" if test(d) else "does not hold",
                     "evidence": f"{b} {acc_b:.2%} vs {a} {acc_a:.2%} ({d * 100:+.2f} points)"}
        sections[index]["conclusions"].append(item)
    return sections
