"""Claims and the rules that turn numbers into a verdict on one (no torch, no database).

A claim compares cell `a` against cell `b` of a study on one metric; `decide` reads the verdict off the
interval of a - b and `word` says it in a sentence.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["holds", "does_not_hold", "inconclusive"]

QUICK_PREFIX = "Quick size (training subsets, see the note): "
SMOKE_PREFIX = "Smoke size (a test-only run on a few hundred images, it shows nothing): "


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


def word(claim: Claim, verdict: Verdict, evidence: str, reduced: bool, size: str | None = None) -> str:
    """The sentence for a verdict; one from a reduced size (`Study.reduced`) says so (the smoke size loudest)."""
    text = {"holds": claim.holds, "does_not_hold": claim.does_not_hold, "inconclusive": claim.inconclusive}[verdict]
    text = text.format(evidence=evidence, a=claim.a, b=claim.b)
    if size == "smoke":
        return SMOKE_PREFIX + text
    return QUICK_PREFIX + text if reduced else text
