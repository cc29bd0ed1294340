"""Studies: the catalog, one study with its answer, running one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.lab.notify import NotifyRequest
from shared.lab.studies import LISTED_SIZES, Study
from shared.store.studies import MAX_STUDY_SEEDS, StudyAnswer


class StudySizeOut(BaseModel):
    """One size of a study: what it changes, what it cannot show, and its measured cost."""

    name: str
    overrides: dict[str, Any]
    note: str
    minutes_5_seeds: float | None = Field(description="measured estimate, 5 seeds on 2 CPU cores")
    reduced: bool = Field(description="trains less than the lab's recipe: its verdicts say so")


class StudySummary(BaseModel):
    """A study as listed (GET /studies)."""

    name: str
    version: int
    title: str
    question: str
    lab_question: str
    preset: str
    sizes: list[StudySizeOut]

    @classmethod
    def of(cls, study: Study):
        sizes = [StudySizeOut(name=n, overrides=study.base(n), note=study.sizes[n].note, reduced=study.reduced(n),
                              minutes_5_seeds=study.sizes[n].minutes_5_seeds) for n in LISTED_SIZES]
        return cls(name=study.name, version=study.version, title=study.title, question=study.question,
                   lab_question=study.lab_question, preset=study.preset, sizes=sizes)


class StudyList(BaseModel):
    items: list[StudySummary]


class StudyOut(StudySummary):
    """GET /studies/<name>: the study, its cells and claims, and the answer drawn from its runs at one size."""

    lab_answer: str
    cells: dict[str, dict[str, Any]] = Field(description="label -> the cell's values at the answer's size")
    claims: list[dict[str, Any]]
    answer: StudyAnswer


class StudyRun(BaseModel):
    """POST /studies/<name>/run body: seeds are fresh (after the seeds of earlier runs of this size and version)."""

    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(5, ge=1, le=MAX_STUDY_SEEDS)
    # The schema lists the sizes a user picks; the hidden "smoke" size (tests, the bench) is accepted all the same.
    size: str = Field("quick", description="quick | full", json_schema_extra={"enum": list(LISTED_SIZES)})
    priority: int = Field(0, ge=0, le=9)
    notify: NotifyRequest | None = Field(None, description="a webhook that gets one JSON POST when the run ends")
