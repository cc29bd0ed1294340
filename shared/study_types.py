"""What a study is (the catalog itself is shared/studies.py): versioned sweep templates as data.

A study is a preset with overrides, its cells (a product grid, or listed cells where fields go together), the
claims it tests (cell A against cell B on a metric) and how each verdict is worded. `quick` is a size that runs
5 seeds on 2 CPU cores in about 15 minutes (training subsets); `full` is the lab's own recipe. No torch, no DB.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Size = Literal["quick", "full", "smoke"]
LISTED_SIZES: tuple[Size, ...] = ("quick", "full")  # "smoke" is hidden: tests and the bench's --smoke only
Verdict = Literal["holds", "does_not_hold", "inconclusive"]

QUICK_PREFIX = "Quick size (training subsets, see the note): "
SMOKE_PREFIX = "Smoke size (a test-only run on a few hundred images, it shows nothing): "
# The hidden size: the quick size on a few hundred images, 1 epoch (a cell's own epochs kept), to test the plumbing.
SMOKE = {"train_limit": 300, "test_limit": 200, "epochs": 1}


class Claim(BaseModel):
    """One comparison: cell `a` against cell `b` on `metric`, a difference of means over seeds (a - b)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(description="the claim in a sentence, as the lab document makes it")
    a: str = Field(description="label of the first cell")
    b: str = Field(description="label of the second cell")
    metric: Literal["test_accuracy", "test_loss", "train_seconds"] = "test_accuracy"
    expect: Literal["higher", "equal"] = Field(description="higher: a's metric is above b's; equal: within ±margin")
    margin: float = Field(1.0, gt=0, description="in points (percent for accuracy): a smaller difference is none")
    holds: str = Field(description="wording when the data support the claim; {evidence} is the difference ± CI, p, n")
    does_not_hold: str
    inconclusive: str = "Inconclusive: {evidence}; more seeds would tell."


class SizeSpec(BaseModel):
    """Overrides for one size; `cells` replaces some cells' own values at this size (e.g. 'more epochs')."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    overrides: dict[str, Any] = Field(default_factory=dict)
    cells: dict[str, dict[str, Any]] = Field(default_factory=dict)
    note: str = Field("", description="what this size cannot show that the full size does")
    minutes_5_seeds: float | None = Field(None, description="measured estimate, 5 seeds on 2 CPU cores")
    shows_claims: bool = Field(True, description="False: this size cannot show what the claims are about (the note "
                                                 "says why); its verdicts are withheld, the data still shown")


class Study(BaseModel):
    """A named, versioned sweep template: its cells, the claims it tests, and its sizes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    lab_question: str = Field(description="the lab document's section, e.g. 4.1, or 'claims'")
    title: str
    question: str
    seed_answer: str = Field(description="the lab document's answer, summarized in English")
    preset: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = Field(None, description="a product grid (POST /sweeps); None: listed cells")
    cells: dict[str, dict[str, Any]] = Field(description="label -> the cell's values, keyed like a grid's fields")
    claims: list[Claim]
    sizes: dict[Literal["quick", "full"], SizeSpec]

    @model_validator(mode="after")
    def _consistent(self) -> "Study":
        for claim in self.claims:
            for label in (claim.a, claim.b):
                if label not in self.cells:
                    raise ValueError(f"{self.name}: claim cell {label!r} is not one of {', '.join(self.cells)}")
        for size, spec in self.sizes.items():
            if set(spec.cells) - set(self.cells):
                raise ValueError(f"{self.name}: size {size} replaces unknown cells {set(spec.cells) - set(self.cells)}")
        return self

    def size_spec(self, size: Size) -> SizeSpec:
        """The size's overrides; "smoke" is the quick size shrunk to SMOKE (a test-only size, never listed)."""
        if size != "smoke":
            return self.sizes[size]
        quick = self.sizes["quick"]
        return SizeSpec(overrides={**quick.overrides, **SMOKE}, cells=quick.cells, shows_claims=quick.shows_claims,
                        note="A test-only size: a few hundred images, one epoch. Its verdicts mean nothing.")

    def base(self, size: Size) -> dict[str, Any]:
        """The overrides every cell shares at `size` (the study's, then the size's)."""
        return {**self.overrides, **self.size_spec(size).overrides}

    def cell_values(self, size: Size) -> dict[str, dict[str, Any]]:
        """label -> the cell's values at `size`."""
        spec = self.size_spec(size)
        return {label: {**values, **spec.cells.get(label, {})} for label, values in self.cells.items()}

    def cell_overrides(self, size: Size) -> dict[str, dict[str, Any]]:
        """label -> the full overrides of that cell's jobs (with the preset, everything but the seed)."""
        return {label: {**self.base(size), **values} for label, values in self.cell_values(size).items()}

    def reduced(self, size: Size) -> bool:
        """Whether `size` trains less than the lab's recipe (the full size): its verdicts say so."""
        return self.cell_overrides(size) != self.cell_overrides("full")

    def sweep_body(self, size: Size, seeds: int | list[int] = 5) -> dict[str, Any]:
        """A POST /sweeps body: the product grid where the study has one (and the size keeps it), else listed cells."""
        body: dict[str, Any] = {"name": f"{self.name} v{self.version} ({size})",
                                "base": {"preset": self.preset, "overrides": self.base(size)}, "seeds": seeds}
        if self.grid is not None and not self.size_spec(size).cells:
            return body | {"grid": self.grid}
        return body | {"cells": list(self.cell_values(size).values())}


def decide(claim: Claim, low: float | None, high: float | None) -> Verdict:
    """The verdict from the 95% interval [low, high] of a - b, in points; None (one run a side): inconclusive.

    higher: holds when the interval is above 0; does not hold when it stays below +margin (a is not ahead
    by as much as the margin, or is behind). equal: holds inside ±margin; does not hold when the interval
    excludes 0 (and, having failed the first rule, reaches past the margin).
    """
    if low is None or high is None:
        return "inconclusive"
    if claim.expect == "higher":
        return "holds" if low > 0 else "does_not_hold" if high < claim.margin else "inconclusive"
    if -claim.margin < low and high < claim.margin:
        return "holds"
    return "does_not_hold" if low > 0 or high < 0 else "inconclusive"


def word(claim: Claim, verdict: Verdict, evidence: str, reduced: bool, size: Size | None = None) -> str:
    """The sentence for a verdict; one from a reduced size (`Study.reduced`) says so (the smoke size loudest)."""
    text = {"holds": claim.holds, "does_not_hold": claim.does_not_hold, "inconclusive": claim.inconclusive}[verdict]
    text = text.format(evidence=evidence, a=claim.a, b=claim.b)
    if size == "smoke":
        return SMOKE_PREFIX + text
    return QUICK_PREFIX + text if reduced else text


def product(grid: dict[str, list[Any]], label) -> dict[str, dict[str, Any]]:
    """Every combination of a grid's values, labelled by `label(values)`."""
    cells = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    return {label(c): c for c in cells}
