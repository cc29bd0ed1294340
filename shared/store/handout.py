"""The handout: every question of the lab with the answer from the data (its study's verdicts at a size, the
report's tables) and its status; running every quick study with the seeds each needs, in one request."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from shared.lab.handout import QUESTIONS, Question, handout_studies
from shared.lab.studies import Size, get_study
from shared.store import report as reports
from shared.store.models import Sweep
from shared.store.studies import ClaimAnswer, StudyAnswer, answer, run_study

DEFAULT_SEEDS = 5  # a study never run gets the README's 5 seeds; later runs top up or follow `proposed_seeds`
State = Literal["not run", "running", "answered"]


class QuestionStatus(BaseModel):
    state: State
    n: int = Field(description="seeds of the fewest-seeded cell the question's claims compare (succeeded runs)")
    active: int = Field(description="the study's queued + running jobs at this size")
    text: str = Field(description="the status as the page prints it, e.g. 'answered at 5 seeds'")


class QuestionOut(BaseModel):
    """One question: the lab's answer beside the data's (verdicts with their evidence, the report's tables)."""

    section: str
    question: str
    lab_answer: str
    study: str
    study_title: str
    size: str
    status: QuestionStatus
    note: str = Field(description="what this size cannot show (the study's note at the size)")
    pooled: str
    sweep_ids: list[int]
    verdicts: list[ClaimAnswer]
    tables: list[reports.Table]


class PlanItem(BaseModel):
    """What the 'run every quick study' button does for one study."""

    study: str
    seeds: int = Field(description="fresh seeds it queues (0: none)")
    jobs: int = Field(description="jobs that makes (seeds x cells)")
    why: str


class Handout(BaseModel):
    size: str
    questions: list[QuestionOut]
    plan: list[PlanItem] = Field(description="what POST /handout/run would queue now (the quick size)")
    rule: str


def status(a: StudyAnswer, question: Question) -> QuestionStatus:
    """not run / running / answered at n seeds, for this question's cells of the study's answer."""
    cells = {c.label: c for c in a.cells}
    claims = get_study(question.study).claims
    labels = {label for i in question.claims for label in (claims[i].a, claims[i].b)}
    n = min(cells[label].n for label in labels)
    active = sum(r.counts.get("queued", 0) + r.counts.get("running", 0) for r in a.runs)
    if active:
        return QuestionStatus(state="running", n=n, active=active, text=f"running: {active} jobs to go, "
                              f"{n} seed{'' if n == 1 else 's'} in so far")
    if n == 0:
        failed = bool(a.runs)
        return QuestionStatus(state="not run", n=0, active=0, text="not run" + (" (its runs failed)" if failed else ""))
    return QuestionStatus(state="answered", n=n, active=0, text=f"answered at {n} seed{'' if n == 1 else 's'}")


def plan_item(name: str, a: StudyAnswer) -> PlanItem:
    """The seeds one quick study needs: none while it runs or once its shown claims are decided; else 5 for a
    study never run, a top-up to 5 seeds, or what its inconclusive claims need (`proposed_seeds`)."""
    cells = len(a.cells)
    n = min(c.n for c in a.cells)
    if any(r.counts.get("queued", 0) + r.counts.get("running", 0) for r in a.runs):
        seeds, why = 0, "running: wait for its jobs"
    elif n < DEFAULT_SEEDS:
        seeds = DEFAULT_SEEDS - n
        why = "never run" if not a.runs else f"{n} seeds in its fewest-seeded cell: topped up to {DEFAULT_SEEDS}"
    elif any(c.shown and c.verdict == "inconclusive" and c.seeds_needed for c in a.claims):
        seeds, why = a.proposed_seeds, "inconclusive claims: the seeds they need (capped per run)"
    else:
        seeds, why = 0, "answered: every claim this size shows is decided"
    return PlanItem(study=name, seeds=seeds, jobs=seeds * cells, why=why)


RULE = ("Each question's answer from the data is its study's verdicts at the size chosen (every run of that size "
        "and version pooled, one run per seed; docs/studies.md) and, for the lab's own recipes, the report's "
        "tables. 'Run every quick study' queues, per study, the fresh seeds the plan below names.")


def answers(session: Session, size: Size) -> dict[str, StudyAnswer]:
    return {name: answer(session, get_study(name), size) for name in handout_studies()}


def handout(session: Session, size: Size) -> Handout:
    """Every question in the handout's order with its status, verdicts and tables; the quick plan."""
    by_study = answers(session, size)
    quick = by_study if size == "quick" else answers(session, "quick")
    tables = {t.title: t for t in reports.report(session).tables}
    questions = []
    for q in QUESTIONS:
        a = by_study[q.study]
        questions.append(QuestionOut(
            section=q.section, question=q.question, lab_answer=q.lab_answer, study=q.study,
            study_title=get_study(q.study).title, size=size, status=status(a, q), note=a.note, pooled=a.pooled,
            sweep_ids=[r.id for r in a.runs], verdicts=[a.claims[i] for i in q.claims],
            tables=[tables[t] for t in q.tables]))
    return Handout(size=size, questions=questions, plan=[plan_item(n, a) for n, a in quick.items()], rule=RULE)


def run_quick(session: Session, priority: int = 0, data_root=None,
              workers_check=None) -> tuple[list[PlanItem], list[Sweep]]:
    """One sweep per quick study the plan gives seeds (the caller commits, then dispatches; a study the workers
    cannot run refuses them all: `workers_check` as for a sweep)."""
    plan = [plan_item(name, a) for name, a in answers(session, "quick").items()]
    runs = [run_study(session, get_study(p.study), "quick", p.seeds, priority, data_root,
                      workers_check=workers_check) for p in plan if p.seeds]
    return plan, runs
