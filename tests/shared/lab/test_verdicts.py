"""Claim verdicts from known numbers: Welch's interval of a - b in points, decided against the claim's margin."""

from __future__ import annotations

import pytest
from scipy import stats

from shared.lab.studies import get_study
from shared.store.studies import judge

AHEAD = get_study("fc-vs-cnn").claims[0]  # expect higher: the CNN ahead of the FC network
SAME = get_study("fc-vs-cnn").claims[1]  # expect equal within 1 point


def test_a_clear_lead_holds_with_scipys_interval_and_p():
    cnn, fc = [0.97, 0.972, 0.968, 0.971, 0.969], [0.90, 0.91, 0.905, 0.899, 0.906]
    out = judge(AHEAD, cnn, fc, reduced=False)
    res = stats.ttest_ind(cnn, fc, equal_var=False)
    low, high = res.confidence_interval(0.95)
    assert out.verdict == "holds" and out.evidence.ci95 == pytest.approx((low * 100, high * 100))
    assert out.evidence.p_value == pytest.approx(res.pvalue) and out.evidence.n_a == out.evidence.n_b == 5
    assert out.evidence.diff == pytest.approx(100 * (sum(cnn) - sum(fc)) / 5)
    assert out.sentence.startswith("Holds:") and "(95% CI)" in out.sentence and "n = 5 and 5" in out.sentence


@pytest.mark.parametrize("a, b, verdict", [
    ([0.900, 0.903, 0.902], [0.905, 0.906, 0.904], "does_not_hold"),  # behind: the interval stays below +1 point
    ([0.90, 0.95, 0.85], [0.90, 0.91, 0.89], "inconclusive"),  # wide: spans 0 and +1 point
    ([0.97], [0.90, 0.91], "inconclusive"),  # one run on a side: no interval
])
def test_higher_claims(a, b, verdict):
    assert judge(AHEAD, a, b, reduced=False).verdict == verdict


def test_equal_claims_hold_inside_the_margin_and_fail_outside():
    assert judge(SAME, [0.905, 0.906, 0.904], [0.905, 0.907, 0.903], reduced=False).verdict == "holds"
    assert judge(SAME, [0.85, 0.851, 0.852], [0.905, 0.906, 0.904], reduced=False).verdict == "does_not_hold"
    assert judge(SAME, [0.85, 0.95, 0.90], [0.905, 0.906, 0.904], reduced=False).verdict == "inconclusive"


def test_reduced_and_smoke_sizes_say_so():
    assert judge(AHEAD, [0.97, 0.972], [0.9, 0.91], reduced=True).sentence.startswith("Quick size")
    assert judge(AHEAD, [0.97, 0.972], [0.9, 0.91], reduced=True, size="smoke").sentence.startswith("Smoke size")
