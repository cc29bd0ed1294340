"""The lab's tables over every run of the lab's recipe: a run counts when its spec is the preset's apart from the seed.

Dataset rule: CIFAR-10 may be the original release (`cifar10`) or the JPEG re-encoding on this machine
(`cifar10-jpeg`); each row is one preset on one dataset and says which, and a claim only compares rows of one
dataset. Anything else that departs from the preset (train_limit, test_limit, epochs, ...) keeps a run out.
Only `device`, `log_every`, `eval_every` and `eval_samples` are ignored: they change where a run trains and how often it
logs and evaluates, not what it learns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shared.lab.specs import canonical, preset_spec
from shared.lab.stats import CellStats, summarize
from shared.lab.studies import get_study
from shared.lab.sweeps import SweepRequest
from shared.store.models import Job, JobStatus
from shared.store.studies import ClaimAnswer, datasets_of, judge, one_per_seed, runnable_dataset
from shared.store.sweeps import create_sweep

JPEG_NOTE = ("cifar10-jpeg is a JPEG (quality 75) re-encoding of CIFAR-10, not the original release the seed used: "
             "accuracies on it can differ from the lab's by a point or so.")
MAX_REPORT_SEEDS = 5
# (title, presets, the lab's printed accuracies, claims as (study, claim index, preset a, preset b))
TABLES = [
    ("FC vs CNN at equal parameters (MNIST)", ["mnist-fc", "mnist-cnn"], {},
     [("fc-vs-cnn", 0, "mnist-cnn", "mnist-fc")]),
    ("Normal vs permuted pixels (MNIST)", ["mnist-fc", "mnist-cnn", "mnist-fc-permuted", "mnist-cnn-permuted"], {},
     [("fc-vs-cnn", 1, "mnist-fc-permuted", "mnist-fc"), ("fc-vs-cnn", 2, "mnist-cnn", "mnist-cnn-permuted")]),
    ("LeNet vs VGG (CIFAR-10)", ["cifar10-lenet", "cifar10-vgg"], {"cifar10-lenet": 0.63, "cifar10-vgg": 0.8287},
     [("lenet-vs-vgg", 0, "cifar10-vgg", "cifar10-lenet")]),
]
PRESETS = list(dict.fromkeys(p for _, presets, _, _ in TABLES for p in presets))


class Row(BaseModel):
    preset: str
    dataset: str
    n: int = Field(description="seeds of the recipe on this dataset, each counted once")
    copies_folded: int = Field(0, description="further succeeded runs of a seed already counted (the same run)")
    seeds: list[int]
    job_ids: list[int]
    test_accuracy: CellStats
    lab_accuracy: float | None = Field(description="the lab document's printed figure, if it gives one")
    vs_seed: float | None = Field(description="mean - the lab's figure, a fraction")


class TableClaim(ClaimAnswer):
    dataset: str


class Table(BaseModel):
    title: str
    rows: list[Row]
    claims: list[TableClaim]
    notes: list[str]
    lab_figures: bool


class Report(BaseModel):
    rule: str
    tables: list[Table]


def recipe(preset: str, dataset: str) -> dict[str, Any]:
    return canonical(preset_spec(preset).model_dump() | {"dataset": dataset})


def matching_jobs(session: Session, statuses=(JobStatus.SUCCEEDED,)) -> dict[tuple[str, str], list[Job]]:
    """(preset, dataset) -> the jobs in `statuses` whose spec is that recipe apart from the seed."""
    wanted = {(p, d): recipe(p, d) for p in PRESETS for d in datasets_of(p)}
    names, models = {d for _, d in wanted}, {t["model"] for t in wanted.values()}
    # Narrowed in SQL first: only jobs of the recipes' datasets and models are validated and compared.
    query = (select(Job).where(Job.status.in_(list(statuses)), Job.dataset.in_(names), Job.model.in_(models))
             .options(selectinload(Job.result)).order_by(Job.id))
    out: dict[tuple[str, str], list[Job]] = {k: [] for k in wanted}
    for job in session.scalars(query):
        spec = canonical(job.spec or {})
        for key, target in wanted.items():
            if spec == target:
                out[key].append(job)
    return out


def _row(preset: str, dataset: str, jobs: list[Job], seed: dict[str, float]) -> Row:
    done, folded = one_per_seed(jobs)
    stats = summarize([j.result.test_accuracy for j in done])
    figure = seed.get(preset)
    return Row(preset=preset, dataset=dataset, n=len(done), copies_folded=folded, seeds=[j.spec["seed"] for j in done],
               job_ids=[j.id for j in done], test_accuracy=stats, lab_accuracy=figure,
               vs_seed=stats.mean - figure if figure is not None and stats.mean is not None else None)


def _datasets(presets: list[str], runs) -> dict[str, list[str]]:
    """Each preset's rows: the datasets it has runs on, else the one its table's other rows use, else its own."""
    used = list(dict.fromkeys(d for p in presets for d in datasets_of(p) if runs[(p, d)]))
    return {p: [d for d in datasets_of(p) if runs[(p, d)]] or [d for d in datasets_of(p) if d in used][:1]
            or [datasets_of(p)[0]] for p in presets}


def _claims(claims, rows: list[Row], runs) -> list[TableClaim]:
    """Each claim once per dataset that either side has rows on (never across datasets); Holm over the table's."""
    family, samples, datasets = [], [], []
    for study, index, a, b in claims:
        claim = get_study(study).claims[index].model_copy(update={"a": a, "b": b})
        for d in dict.fromkeys(r.dataset for r in rows if r.preset in (a, b)):
            family.append(claim)
            samples.append(tuple({j.spec["seed"]: j.result.test_accuracy for j in one_per_seed(runs.get((p, d), []))[0]}
                                 for p in (a, b)))
            datasets.append(d)
    answers = judge(family, samples, reduced=False) if family else []
    return [TableClaim(**c.model_dump(), dataset=d) for c, d in zip(answers, datasets, strict=True)]


def _table(title: str, presets: list[str], seed: dict[str, float], claims, runs) -> Table:
    rows = [_row(p, d, runs[(p, d)], seed) for p, ds in _datasets(presets, runs).items() for d in ds]
    notes = [JPEG_NOTE] if any(r.dataset == "cifar10-jpeg" for r in rows) else []
    return Table(title=title, rows=rows, claims=_claims(claims, rows, runs), notes=notes, lab_figures=bool(seed))


RULE = ("A run counts when its spec equals the preset's apart from the seed (device, log_every, eval_every and "
        "eval_samples aside), on the full test set; any other override (train_limit, epochs, batch size, ...) keeps "
        "it out. CIFAR-10 rows are per dataset: the original release (cifar10) or the JPEG re-encoding "
        "(cifar10-jpeg), never pooled. Each (recipe, seed) counts once: training is deterministic per seed, so a "
        "job, a sweep, a study and this page's button running one seed are one run (copies folded). Claims: paired "
        "by seed, Holm over each table's claims, tested as one look (the report pools whatever was run).")


def report(session: Session) -> Report:
    runs = matching_jobs(session)
    return Report(rule=RULE, tables=[_table(t, p, s, c, runs) for t, p, s, c in TABLES])


def run_missing(session: Session, seeds: int, presets: list[str], data_root=None) -> list[dict[str, Any]]:
    """Per preset, one sweep of the seeds it lacks up to `seeds` (runs succeeded, queued or running count)."""
    have = matching_jobs(session, (JobStatus.SUCCEEDED, JobStatus.QUEUED, JobStatus.RUNNING))
    out = []
    for preset in presets:
        dataset = runnable_dataset(preset, data_root)
        used = {j.spec["seed"] for j in have[(preset, dataset)]}
        fresh = [s for s in range(seeds + len(used)) if s not in used][:max(0, seeds - len(used))]
        item = {"preset": preset, "dataset": dataset, "had": len(used), "seeds": fresh, "sweep_id": None}
        if fresh:
            overrides = {"dataset": dataset} if dataset != preset_spec(preset).dataset else {}
            request = SweepRequest(name=f"report: {preset}", base={"preset": preset, "overrides": overrides},
                                   seeds=fresh)
            item["sweep_id"] = create_sweep(session, request, data_root=data_root).id
        out.append(item)
    return out
