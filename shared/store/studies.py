"""Studies in the database: a study run is one sweep; its answer pools every run of that size and version.

A claim's verdict compares two cells' succeeded runs (Welch, shared.lab.stats.compare) and decides from the 95%
interval of a - b in points (shared.lab.verdicts.decide); the sentence says when the size is reduced.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shared.lab.settings import settings
from shared.lab.specs import SpecError, preset_spec, resolve
from shared.lab.stats import METRICS, CellStats, compare, summarize
from shared.lab.studies import Size, Study
from shared.lab.sweeps import SweepRequest
from shared.lab.verdicts import Claim, Verdict, decide, word
from shared.store.jobs import check_runnable
from shared.store.models import Job, JobStatus, Sweep
from shared.store.sweeps import create_sweep, status_counts

MAX_STUDY_SEEDS = 20  # per run: 9 cells x 20 seeds stays far below the sweep cap


class Evidence(BaseModel):
    """a - b on the claim's metric, in reading units (accuracy in points): Welch's 95% interval, p, n per side."""

    diff: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n_a: int
    n_b: int
    unit: str
    text: str


class ClaimAnswer(BaseModel):
    text: str
    a: str
    b: str
    metric: str
    expect: str
    margin: float
    verdict: Verdict
    shown: bool = Field(True, description="false: the size cannot show this claim; the verdict is withheld "
                                          "(inconclusive) and the sentence says why")
    sentence: str = Field(description="the verdict worded (shared.lab.verdicts.word), saying when the size is reduced")
    evidence: Evidence


class CellAnswer(BaseModel):
    label: str
    values: dict[str, Any]
    n: int = Field(description="succeeded runs pooled over the study's runs of this size and version")
    seeds: list[int]
    job_ids: list[int]
    sweep_ids: list[int]
    test_accuracy: CellStats = Field(description="a fraction")
    test_loss: CellStats
    train_seconds: CellStats


class RunRef(BaseModel):
    id: int
    name: str | None
    seeds: list[int]
    created_at: datetime
    counts: dict[str, int]


class StudyAnswer(BaseModel):
    size: str
    version: int
    dataset: str = Field(description="the dataset of the pooled runs (the newest run's)")
    reduced: bool = Field(description="the size trains less than the lab's recipe (the full size)")
    note: str
    pooled: str = Field(description="which runs the answer pools")
    runs: list[RunRef]
    cells: list[CellAnswer]
    claims: list[ClaimAnswer]


def _p(p: float | None) -> str:
    return "" if p is None else "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def judge(claim: Claim, a: list[float], b: list[float], *, reduced: bool, size: Size | None = None) -> ClaimAnswer:
    """The claim's verdict from the runs of cell a and cell b: Welch on a - b, decided in points."""
    info = METRICS[claim.metric]
    c = compare(b, a, metric=claim.metric, names=(claim.b, claim.a))  # diff = mean(a) - mean(b)
    scale, unit = info["scale"], info["unit"] or ""
    ci = (c.ci95[0] * scale, c.ci95[1] * scale) if c.ci95 else None
    diff = c.diff * scale if c.diff is not None else None
    if ci is None:
        text = c.verdict
    else:
        text = (f"{claim.a} − {claim.b}: {diff:+.2f} ± {(ci[1] - ci[0]) / 2:.2f} {unit} (95% CI), {_p(c.p_value)}, "
                f"n = {c.n_b} and {c.n_a}")
    verdict = decide(claim, *(ci or (None, None)))
    evidence = Evidence(diff=diff, ci95=ci, p_value=c.p_value, n_a=c.n_b, n_b=c.n_a, unit=unit, text=text)
    return ClaimAnswer(text=claim.text, a=claim.a, b=claim.b, metric=claim.metric, expect=claim.expect,
                       margin=claim.margin, verdict=verdict, sentence=word(claim, verdict, text, reduced, size),
                       evidence=evidence)


DATASETS = {"mnist": ("mnist",), "cifar10": ("cifar10", "cifar10-jpeg")}  # a preset's dataset, then stand-ins


def datasets_of(preset: str) -> tuple[str, ...]:
    base = preset_spec(preset).dataset
    return DATASETS.get(base, (base,))


def present(dataset: str, data_root) -> bool:
    """Whether the data is on this machine (check_runnable only checks shapes: builtin sets would be downloaded)."""
    root = Path(data_root or settings().data_dir)
    if dataset == "cifar10":  # torchvision's folder of the original release
        return settings().download or (root / "cifar-10-batches-py").is_dir()
    return dataset == "mnist" or (root / dataset / "train").is_dir()


def runnable_dataset(preset: str, data_root) -> str:
    """The preset's own dataset where it is on this machine, else the first alternative that is (cifar10-jpeg)."""
    for dataset in datasets_of(preset):
        if present(dataset, data_root):
            check_runnable(resolve(preset, {"dataset": dataset}), data_root)
            return dataset
    raise SpecError([{"field": "dataset", "message": f"no dataset of {preset} is on this machine "
                                                     f"({', '.join(datasets_of(preset))})"}])


def withheld(claim: ClaimAnswer, size: str) -> ClaimAnswer:
    """A claim this size cannot show: no verdict (inconclusive), the data's difference kept as evidence."""
    sentence = (f"Not shown at the {size} size (see the note): no verdict. What this size measures: "
                f"{claim.evidence.text}.")
    return claim.model_copy(update={"verdict": "inconclusive", "shown": False, "sentence": sentence})


def study_runs(session: Session, study: Study, size: Size) -> list[Sweep]:
    """The study's sweeps of this size and version, oldest first."""
    query = select(Sweep).where(Sweep.study == study.name, Sweep.study_version == study.version,
                                Sweep.size == size).order_by(Sweep.id)
    return list(session.scalars(query))


def next_seeds(session: Session, study: Study, size: Size, count: int) -> list[int]:
    """`count` seeds none of the earlier runs of this size and version used, so pooled runs never repeat a seed."""
    used = {s for run in study_runs(session, study, size) for s in run.seeds}
    start = max(used) + 1 if used else 0
    return list(range(start, start + count))


def run_study(session: Session, study: Study, size: Size, seeds: int, priority: int = 0, data_root=None) -> Sweep:
    """Create the study's sweep at `size` with fresh seeds (the caller commits, then dispatches)."""
    body = study.sweep_body(size, next_seeds(session, study, size, seeds)) | {"priority": priority}
    dataset = runnable_dataset(study.preset, data_root)
    if dataset != preset_spec(study.preset).dataset:  # e.g. cifar10-jpeg where the original is not here
        body["base"]["overrides"] = {**body["base"]["overrides"], "dataset": dataset}
    return create_sweep(session, SweepRequest.model_validate(body), data_root=data_root, study=study.name,
                        study_version=study.version, size=size)


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


def _cells(study: Study, size: Size, jobs: list[Job]) -> list[CellAnswer]:
    labels = {_key(v): label for label, v in study.cell_values(size).items()}
    members: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        label = labels.get(_key(job.cell or {}))
        if label is not None:  # a cell an older catalog had: not part of this version's answer
            members[label].append(job)
    out = []
    for label, values in study.cell_values(size).items():
        done = [j for j in members[label] if j.status == JobStatus.SUCCEEDED and j.result is not None]
        stats = {m: summarize([getattr(j.result, m) for j in done]) for m in ("test_accuracy", "test_loss",
                                                                               "train_seconds")}
        out.append(CellAnswer(label=label, values=values, n=len(done), seeds=sorted(j.spec["seed"] for j in done),
                              job_ids=[j.id for j in members[label]],
                              sweep_ids=sorted({j.sweep_id for j in members[label]}), **stats))
    return out


def _metric_values(jobs: list[Job], cell: CellAnswer, metric: str) -> list[float]:
    ids = set(cell.job_ids)
    return [getattr(j.result, metric) for j in jobs
            if j.id in ids and j.status == JobStatus.SUCCEEDED and j.result is not None]


def answer(session: Session, study: Study, size: Size) -> StudyAnswer:
    """The answer drawn from the data: every run of this size and version pooled, per cell and per claim."""
    every = study_runs(session, study, size)
    dataset = every[-1].base.get("dataset") if every else preset_spec(study.preset).dataset
    runs = [r for r in every if r.base.get("dataset") == dataset]  # the newest run's dataset: never pooled across
    jobs = list(session.scalars(select(Job).where(Job.sweep_id.in_([r.id for r in runs]))
                                .options(selectinload(Job.result)).order_by(Job.id))) if runs else []
    cells = _cells(study, size, jobs)
    by_label = {c.label: c for c in cells}
    reduced = study.reduced(size)
    claims = [judge(claim, _metric_values(jobs, by_label[claim.a], claim.metric),
                    _metric_values(jobs, by_label[claim.b], claim.metric), reduced=reduced, size=size)
              for claim in study.claims]
    if not study.size_spec(size).shows_claims:
        claims = [withheld(c, size) for c in claims]
    counts = status_counts(session, [r.id for r in runs])
    refs = [RunRef(id=r.id, name=r.name, seeds=r.seeds, created_at=r.created_at, counts=counts[r.id]) for r in runs]
    pooled = (f"{len(runs)} run{'' if len(runs) == 1 else 's'} of {study.name} v{study.version} at size {size} "
              f"pooled on {dataset} (sweeps {', '.join(f'#{r.id}' for r in runs) or 'none yet'}); other sizes, "
              f"versions and datasets never enter")
    return StudyAnswer(size=size, version=study.version, dataset=dataset, reduced=reduced, note=study.size_spec(size).note,
                       pooled=pooled, runs=refs, cells=cells, claims=claims)
