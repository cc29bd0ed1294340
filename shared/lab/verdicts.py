"""Claims and the rules that turn numbers into a verdict on one (no torch, no database).

A claim compares cell `a` against cell `b` of a study on one metric (a − b, in points for accuracy).
The rules (docs/studies.md states them):
- *higher*: one-sided test of a − b > 0; holds when the Holm-adjusted p is under the look's level (alone: the
  interval's lower bound above 0); reversed when the interval lies below 0; does not hold when it lies below
  +margin; else inconclusive.
- *equal*: two one-sided tests (TOST) against ±margin; holds when the adjusted TOST p is under the level (alone:
  the interval inside ±margin); does not hold only when the interval lies entirely outside ±margin.
- Looks: the k-th pooled run of a study is tested at one-sided level ALPHA / 2^k (alpha-spending: 2.5%, 1.25%,
  ... sum to under 5% over any number of looks); the interval shown is the two-sided (1 − 2·level) one.
- Paired by seed where both cells share seeds (the unpaired estimate beside it), Welch otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from shared.lab.stats import POWER, estimate, hedges_g, holm, mde, seeds_needed

Verdict = Literal["holds", "does_not_hold", "reversed", "inconclusive"]
Expect = Literal["higher", "equal"]
ALPHA = 0.05  # false holds per study, over all its claims and all its looks
QUICK_PREFIX = "Quick size (training subsets, see the note): "
SMOKE_PREFIX = "Smoke size (a test-only run on a few hundred images, it shows nothing): "
MARGIN_WHY = ("a reseed alone moves one cell's mean test accuracy by 0.3–3 points here, so a smaller difference "
              "is no finding a reader could act on")


class Claim(BaseModel):
    """One comparison: cell `a` against cell `b` on `metric`, a difference of means over seeds (a - b)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(description="the claim in a sentence, as the lab document makes it")
    a: str = Field(description="label of the first cell")
    b: str = Field(description="label of the second cell")
    metric: Literal["test_accuracy", "test_loss", "train_seconds"] = "test_accuracy"
    expect: Expect = Field(description="higher: a's metric is above b's; equal: within ±margin")
    margin: float = Field(1.0, gt=0, description="in points (percent for accuracy): a smaller difference is none")
    margin_why: str = Field(MARGIN_WHY, description="why this margin")
    seeds_hint: int | None = Field(None, description="seeds per cell the claim needs, where more than one run "
                                                     "allows: said up front")
    holds: str = Field(description="wording when the data support the claim; {evidence}: the difference, CI, p, n")
    does_not_hold: str
    reversed: str = "Reversed: {b} is ahead of {a}, against the claim: {evidence}."
    inconclusive: str = "Inconclusive: {evidence}."


class Unpaired(BaseModel):
    """The unpaired (Welch) estimate beside a paired one, for reference."""

    diff: float
    ci: tuple[float, float]
    p_value: float


class ClaimResult(BaseModel):
    """A claim's verdict with everything it rests on; differences in the caller's unit (points for accuracy)."""

    verdict: Verdict
    expect: Expect
    margin: float
    diff: float | None
    ci: tuple[float, float] | None = Field(description="two-sided (1 − 2·alpha) interval of a − b")
    ci_level: float = Field(description="the interval's coverage, e.g. 0.95")
    alpha: float = Field(description="the one-sided level of this look")
    look: int = Field(description="1: the first run; each further pooled run is one more look")
    p_value: float | None = Field(description="the claim's test: one-sided for higher, TOST for equal")
    p_adjusted: float | None = Field(description="Holm-adjusted over the study's claims; the verdict uses it")
    paired: bool
    n_a: int
    n_b: int
    n_paired: int | None = Field(None, description="paired: the seeds both cells have (the test's n)")
    unpaired: Unpaired | None = Field(None, description="Welch's estimate beside a paired one")
    hedges_g: float | None
    mde_points: float | None = Field(description="minimum detectable effect at 80% power for this n and spread")
    seeds_needed: int | None = Field(description="inconclusive: about how many seeds per cell would resolve it")
    spread: float | None = Field(description="per-seed sd behind the interval (of the differences when paired)")


def level(look: int) -> float:
    """The one-sided level of look `look` (1-based): ALPHA / 2^look, so the levels of all looks sum under ALPHA."""
    return ALPHA / 2 ** max(1, look)


def claim_p(expect: str, diff, se, df, margin: float):
    """The claim's p (vectorized): higher: H0 a − b ≤ 0; equal (TOST): the larger of H0 ≤ −margin and ≥ +margin."""
    diff, se = np.asarray(diff, float), np.asarray(se, float)
    with np.errstate(divide="ignore", invalid="ignore"):  # se 0: the difference is exact, t is ±inf
        def above(h):  # p of H0: true diff <= h
            return np.where(se > 0, stats.t.sf((diff - h) / se, df), np.where(diff > h, 0.0, 1.0))
        if expect == "higher":
            return above(0.0)
        below = np.where(se > 0, stats.t.cdf((diff - margin) / se, df), np.where(diff < margin, 0.0, 1.0))
        return np.maximum(above(-margin), below)


def decide(expect: str, low, high, p_adjusted, alpha: float, margin: float):
    """The verdict (vectorized) from the look's interval [low, high] and the Holm-adjusted p."""
    low, high, p = np.asarray(low, float), np.asarray(high, float), np.asarray(p_adjusted, float)
    if expect == "higher":
        conditions = [p < alpha, high < 0, high < margin]
        return np.select(conditions, ["holds", "reversed", "does_not_hold"], "inconclusive")
    return np.select([p < alpha, (low > margin) | (high < -margin)], ["holds", "does_not_hold"], "inconclusive")


def _samples(a, b, paired: bool | None) -> tuple[list[float], list[float], bool]:
    """Paired samples on the seeds both sides have (mappings seed -> value), or positionally when asked."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        common = sorted(set(a) & set(b))
        if paired is not False and len(common) >= 2:
            return [a[s] for s in common], [b[s] for s in common], True
        return list(a.values()), list(b.values()), False
    return list(a), list(b), bool(paired)


def assess(expect: Expect, margin: float, a: Mapping[int, float] | Sequence[float],
           b: Mapping[int, float] | Sequence[float], *, paired: bool | None = None, look: int = 1) -> ClaimResult:
    """One claim alone (its own family: p_adjusted = p_value); `adjust` applies Holm over a study's claims."""
    alpha = level(look)
    xa, xb, is_paired = _samples(a, b, paired)
    all_a = list(a.values()) if isinstance(a, Mapping) else list(a)
    all_b = list(b.values()) if isinstance(b, Mapping) else list(b)
    est = estimate(xa, xb, paired=is_paired, alpha=alpha)
    base = dict(expect=expect, margin=margin, ci_level=1 - 2 * alpha, alpha=alpha, look=look, paired=is_paired,
                n_a=len(all_a), n_b=len(all_b), hedges_g=hedges_g(all_a, all_b))
    if est is None:
        diff = math.fsum(all_a) / len(all_a) - math.fsum(all_b) / len(all_b) if all_a and all_b else None
        return ClaimResult(verdict="inconclusive", diff=diff, ci=None, p_value=None, p_adjusted=None,
                           mde_points=None, seeds_needed=None, spread=None, **base)
    p = float(claim_p(expect, est.diff, est.se, est.df, margin))
    result = ClaimResult(verdict="inconclusive", diff=est.diff, ci=est.ci, p_value=p, p_adjusted=p,
                         n_paired=est.n_a if is_paired else None,
                         unpaired=_unpaired(expect, margin, all_a, all_b, alpha) if is_paired else None,
                         mde_points=mde(est.se, est.df, alpha) if est.se > 0 else 0.0, seeds_needed=None,
                         spread=est.spread, **base)
    return _decided(result)


def _unpaired(expect: Expect, margin: float, a: list[float], b: list[float], alpha: float) -> Unpaired | None:
    est = estimate(a, b, paired=False, alpha=alpha)
    return None if est is None else Unpaired(diff=est.diff, ci=est.ci,
                                             p_value=float(claim_p(expect, est.diff, est.se, est.df, margin)))


def _decided(result: ClaimResult) -> ClaimResult:
    """The verdict from the result's interval and adjusted p; when inconclusive, the seeds that would resolve it."""
    verdict = str(decide(result.expect, *result.ci, result.p_adjusted, result.alpha, result.margin))
    needed = None
    if verdict == "inconclusive" and result.spread:
        # equal: both one-sided tests must pass at a true difference of 0, so each gets half the miss rate
        power = POWER if result.expect == "higher" else 1 - (1 - POWER) / 2
        needed = seeds_needed(result.spread, result.margin, level(result.look + 1), paired=result.paired,
                              power=power)
    return result.model_copy(update={"verdict": verdict, "seeds_needed": needed})


def adjust(results: list[ClaimResult | None]) -> list[ClaimResult | None]:
    """Holm's correction over one study's claims (those with a p; None: a withheld claim, outside the family)."""
    tested = [i for i, r in enumerate(results) if r is not None and r.p_value is not None]
    out = list(results)
    if tested:
        for i, p in zip(tested, holm([results[i].p_value for i in tested]), strict=True):
            out[i] = _decided(results[i].model_copy(update={"p_adjusted": float(p)}))
    return out


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def margin_text(margin: float, unit: str) -> str:
    """'1 point', '0.5 points', '2 s'."""
    if unit == "points":
        return f"{margin:g} point" + ("" if margin == 1 else "s")
    return f"{margin:g} {unit}".strip()


def evidence(r: ClaimResult, unit: str, names: tuple[str, str] = ("a", "b")) -> str:
    """'difference +8.60 points (95% CI +5.72 to +11.48; paired over 5 seeds; p < 0.001, Holm p < 0.001; ...)'."""
    if r.ci is None:
        if r.n_a + r.n_b == 0:
            return "no runs yet"
        short = [f"{n} has {k} run{'' if k == 1 else 's'}" for n, k in zip(names, (r.n_a, r.n_b), strict=True) if k < 2]
        return f"not enough runs to compare: {' and '.join(short)} (at least 2 a side)"
    pairing = f"paired over {r.n_paired} seeds" if r.paired else f"unpaired (Welch), n = {r.n_a} and {r.n_b}"
    ps = _p(r.p_value) + ("" if r.p_adjusted == r.p_value else f", Holm-adjusted {_p(r.p_adjusted)}")
    sign = "±" if r.expect == "equal" else ""
    return (f"difference {r.diff:+.2f} {unit} ({r.ci_level:.0%} CI {r.ci[0]:+.2f} to {r.ci[1]:+.2f}; {pairing}; "
            f"{ps}; margin {sign}{margin_text(r.margin, unit)})").replace("  ", " ")


def word(claim: Claim, result: ClaimResult, reduced: bool, size: str | None = None, unit: str = "points") -> str:
    """The sentence for a verdict; one from a reduced size (`Study.reduced`) says so (the smoke size loudest)."""
    template = {"holds": claim.holds, "does_not_hold": claim.does_not_hold, "reversed": claim.reversed,
                "inconclusive": claim.inconclusive}[result.verdict]
    text = template.format(evidence=evidence(result, unit, (claim.a, claim.b)), a=claim.a, b=claim.b,
                           margin=margin_text(claim.margin, unit))
    if result.seeds_needed is not None:
        text = text.rstrip(".") + (f"; about {result.seeds_needed} seeds per cell would resolve the "
                                   f"{margin_text(claim.margin, unit)} margin (a further run is one more look, "
                                   f"tested at half the level).")
    if size == "smoke":
        return SMOKE_PREFIX + text
    return QUICK_PREFIX + text if reduced else text
