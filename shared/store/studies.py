"""Studies in the database: a study run is one sweep; its answer pools every run of that size and version.

A claim's verdict compares two cells' runs, one per seed, paired by seed where both have it (the rules:
shared.lab.verdicts), Holm over the study's shown claims, each pooled run one more look.
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
from shared.lab.specs import PRESETS, SpecError, canonical, preset_spec, resolve
from shared.lab.stats import METRICS, CellStats, summarize
from shared.lab.studies import Size, Study
from shared.lab.sweeps import SweepRequest
from shared.lab.verdicts import Claim, ClaimResult, adjust, assess, evidence, level, margin_text, word
from shared.store.jobs import check_runnable
from shared.store.models import Job, JobStatus, Sweep
from shared.store.sweeps import create_sweep, status_counts

MAX_STUDY_SEEDS = 20  # per run: 9 cells x 20 seeds stays far below the sweep cap
METRIC_NAMES = ("test_accuracy", "test_loss", "train_seconds")


class ClaimAnswer(ClaimResult):
    """A claim's verdict in a study's answer: the claim, its test's numbers (ClaimResult) and the sentence."""

    text: str
    a: str
    b: str
    metric: str
    unit: str
    margin_words: str = Field(description="the margin as the sentence prints it, e.g. '±1 point'")
    margin_why: str
    shown: bool = Field(True, description="false: the size cannot show this claim; the verdict is withheld "
                                          "(inconclusive) and the sentence says why")
    sentence: str = Field(description="the verdict worded (shared.lab.verdicts.word), saying when the size is reduced")


class SeedValue(BaseModel):
    """One seed's run of a cell (the first succeeded copy of that seed)."""

    seed: int
    job_id: int
    test_accuracy: float | None
    test_loss: float | None
    train_seconds: float | None


class CellAnswer(BaseModel):
    label: str
    values: dict[str, Any]
    n: int = Field(description="succeeded runs pooled over the study's runs of this size and version")
    seeds: list[int]
    job_ids: list[int]
    sweep_ids: list[int]
    copies_folded: int = Field(0, description="succeeded runs of a seed this cell already had: counted once")
    per_seed: list[SeedValue] = Field(default_factory=list, description="every counted seed's values")
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
    proposed_seeds: int = Field(5, description="seeds for the next run: what the inconclusive claims need (capped)")


def judge(claims: list[Claim], samples: list[tuple[dict[int, float], dict[int, float]]], *, reduced: bool,
          size: Size | None = None, look: int = 1, shown: list[bool] | None = None) -> list[ClaimAnswer]:
    """A family's verdicts (one study's claims; Holm over the shown ones) from each claim's (a, b) seed -> value.

    Values are in the metric's own unit (accuracy a fraction); the verdicts read them in points.
    """
    shown = shown or [True] * len(claims)
    results = []
    for claim, (a, b) in zip(claims, samples, strict=True):
        scale = METRICS[claim.metric]["scale"]
        results.append(assess(claim.expect, claim.margin, {k: v * scale for k, v in a.items()},
                                  {k: v * scale for k, v in b.items()}, look=look))
    adjusted = adjust([r if keep else None for r, keep in zip(results, shown, strict=True)])
    out = []
    for claim, raw, result, keep in zip(claims, results, adjusted, shown, strict=True):
        unit = METRICS[claim.metric]["unit"]
        result = result if keep else raw.model_copy(update={"verdict": "inconclusive", "seeds_needed": None})
        sentence = word(claim, result, reduced, size, unit) if keep else (
            f"Not shown at the {size} size (see the note): no verdict. What this size measures: "
            f"{evidence(result, unit, (claim.a, claim.b))}.")
        out.append(ClaimAnswer(**result.model_dump(), text=claim.text, a=claim.a, b=claim.b, metric=claim.metric,
                               unit=unit, margin_why=claim.margin_why, shown=keep, sentence=sentence,
                               margin_words=("±" if claim.expect == "equal" else "") + margin_text(claim.margin, unit)))
    return out


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


def preset_of(spec: dict[str, Any]) -> str | None:
    """The preset this spec equals apart from the seed (the report's rule, a preset's stand-in dataset allowed), or
    None: a study cell is filed under the preset it is, not under its study's base (fc-vs-cnn's CNN is mnist-cnn)."""
    mine = canonical(spec)
    for name in PRESETS:
        if mine is not None and mine["dataset"] in datasets_of(name) and \
                mine == canonical(preset_spec(name).model_dump() | {"dataset": mine["dataset"]}):
            return name
    return None


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


def run_study(session: Session, study: Study, size: Size, seeds: int, priority: int = 0, data_root=None,
              notify: dict | None = None, workers_check=None) -> Sweep:
    """Create the study's sweep at `size` with fresh seeds (the caller commits, then dispatches); `notify`: the
    webhook its run's end is POSTed to; `workers_check` as for a sweep (shared/store/sweeps.py)."""
    body = study.sweep_body(size, next_seeds(session, study, size, seeds)) | {"priority": priority, "notify": notify}
    dataset = runnable_dataset(study.preset, data_root)
    if dataset != preset_spec(study.preset).dataset:  # e.g. cifar10-jpeg where the original is not here
        body["base"]["overrides"] = {**body["base"]["overrides"], "dataset": dataset}
    sweep = create_sweep(session, SweepRequest.model_validate(body), data_root=data_root, study=study.name,
                         study_version=study.version, size=size, workers_check=workers_check)
    for job in sweep.jobs:  # each job carries the preset its cell equals (or none), not the study's base preset
        job.preset = preset_of(job.spec)
    return sweep


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


def one_per_seed(jobs: list[Job]) -> tuple[list[Job], int]:
    """The first succeeded run of each seed, and how many copies were folded (training is deterministic per
    (spec, seed): a job, a sweep, a study and the report running one seed are one run, counted once)."""
    first: dict[int, Job] = {}
    done = [j for j in jobs if j.status == JobStatus.SUCCEEDED and j.result is not None]
    for job in done:
        first.setdefault(job.spec["seed"], job)
    return sorted(first.values(), key=lambda j: j.spec["seed"]), len(done) - len(first)


def _cell(label: str, values: dict[str, Any], members: list[Job]) -> CellAnswer:
    """One cell from its jobs (every job here has the cell's spec, so one seed twice is a copy)."""
    done, folded = one_per_seed(members)
    stats = {m: summarize([getattr(j.result, m) for j in done]) for m in METRIC_NAMES}
    per_seed = [SeedValue(seed=j.spec["seed"], job_id=j.id, **{m: getattr(j.result, m) for m in METRIC_NAMES})
                for j in done]
    return CellAnswer(label=label, values=values, n=len(done), seeds=[j.spec["seed"] for j in done],
                      job_ids=[j.id for j in members], sweep_ids=sorted({j.sweep_id for j in members}),
                      copies_folded=folded, per_seed=per_seed, **stats)


def _cells(study: Study, size: Size, jobs: list[Job]) -> list[CellAnswer]:
    labels = {_key(v): label for label, v in study.cell_values(size).items()}
    members: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        label = labels.get(_key(job.cell or {}))
        if label is not None:  # a cell an older catalog had: not part of this version's answer
            members[label].append(job)
    return [_cell(label, values, members[label]) for label, values in study.cell_values(size).items()]


def seed_values(cell: CellAnswer, metric: str) -> dict[int, float]:
    """seed -> the cell's value of `metric` at that seed."""
    return {v.seed: getattr(v, metric) for v in cell.per_seed if getattr(v, metric) is not None}


def proposed_seeds(claims: list[ClaimAnswer], cells: dict[str, CellAnswer]) -> int:
    """Fresh seeds for the next run: enough for the inconclusive shown claims' `seeds_needed`, 1..MAX_STUDY_SEEDS."""
    short = [c.seeds_needed - min(cells[c.a].n, cells[c.b].n) for c in claims if c.shown and c.seeds_needed]
    return min(MAX_STUDY_SEEDS, max([1, *short])) if short else 5


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
    samples = [(seed_values(by_label[c.a], c.metric), seed_values(by_label[c.b], c.metric)) for c in study.claims]
    look = max(1, len({j.sweep_id for j in jobs if j.status == JobStatus.SUCCEEDED}))  # each pooled run is a look
    claims = judge(study.claims, samples, reduced=reduced, size=size, look=look, shown=study.shown(size))
    counts = status_counts(session, [r.id for r in runs])
    refs = [RunRef(id=r.id, name=r.name, seeds=r.seeds, created_at=r.created_at, counts=counts[r.id]) for r in runs]
    folded = sum(c.copies_folded for c in cells)
    pooled = (f"{len(runs)} run{'' if len(runs) == 1 else 's'} of {study.name} v{study.version} at size {size} "
              f"pooled on {dataset} (sweeps {', '.join(f'#{r.id}' for r in runs) or 'none yet'}); other sizes, "
              f"versions and datasets never enter; each seed counted once"
              + (f" ({folded} cop{'y' if folded == 1 else 'ies'} of a seed folded)" if folded else "")
              + f"; verdicts at look {look} (one-sided level {level(look):.3g})")
    return StudyAnswer(size=size, version=study.version, dataset=dataset, reduced=reduced,
                       note=study.size_spec(size).note, pooled=pooled, runs=refs, cells=cells, claims=claims,
                       proposed_seeds=proposed_seeds(claims, by_label))
