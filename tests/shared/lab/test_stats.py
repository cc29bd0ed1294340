"""The statistics of repeated runs against scipy and hand-checked numbers."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from shared.lab.stats import compare, summarize


def test_summarize_hand_checked():
    # 1..5: mean 3, sample std sqrt(2.5), t(0.975, 4) = 2.776445, half-width 2.776445 * sqrt(2.5/5) = 1.963243
    s = summarize([1, 2, 3, 4, 5])
    assert s.n == 5 and s.mean == 3 and s.std == pytest.approx(math.sqrt(2.5))
    assert s.ci95 == pytest.approx((3 - 1.963243, 3 + 1.963243), abs=1e-6)


def test_summarize_matches_scipy_and_is_unclipped():
    xs = [0.97, 0.99, 0.995]
    s = summarize(xs)
    low, high = sps.t.interval(0.95, len(xs) - 1, loc=sps.tmean(xs), scale=sps.sem(xs))
    assert s.ci95 == pytest.approx((low, high)) and s.std == pytest.approx(sps.tstd(xs))
    assert s.ci95[1] > 1  # an accuracy interval is not clipped to [0, 1]


@pytest.mark.parametrize("xs, n, mean, std, ci", [
    ([], 0, None, None, None),
    ([0.9], 1, 0.9, None, None),
    ([0.5, 0.5, 0.5], 3, 0.5, 0.0, (0.5, 0.5)),
    ([0.9, float("nan"), None], 1, 0.9, None, None),  # what is not a number is left out
])
def test_summarize_edge_cases(xs, n, mean, std, ci):
    s = summarize(xs)
    assert (s.n, s.mean, s.std, s.ci95) == (n, mean, std, ci)


def test_compare_hand_checked_welch():
    # a: mean 2, var 1 (n 3); b: mean 5.5, var 5/3 (n 4); se^2 = 1/3 + 5/12 = 0.75; t = 3.5 / sqrt(0.75) = 4.0415;
    # Welch df = 0.75^2 / ((1/3)^2/2 + (5/12)^2/3) = 4.9592
    c = compare([1, 2, 3], [4, 5, 6, 7], metric="train_seconds")
    df = 0.75**2 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3)
    assert df == pytest.approx(4.9592, abs=1e-4)
    half = sps.t.ppf(0.975, df) * math.sqrt(0.75)
    assert c.diff == 3.5 and c.ci95 == pytest.approx((3.5 - half, 3.5 + half))
    assert c.p_value == pytest.approx(2 * sps.t.sf(3.5 / math.sqrt(0.75), df))
    assert c.clear and c.n_a == 3 and c.n_b == 4


def test_compare_matches_scipy_welch():
    a, b = [0.905, 0.91, 0.92, 0.90, 0.915], [0.97, 0.968, 0.975, 0.972, 0.969]
    c = compare(a, b, names=("the FC net", "the CNN"))
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert c.p_value == pytest.approx(ref.pvalue) and c.ci95 == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert c.verdict == "the CNN is ahead by 6.1 ± 1.0 points, p < 0.001, 5 seeds each"


def test_compare_wording_when_a_is_ahead_and_when_unclear():
    assert compare([0.97, 0.98, 0.975], [0.90, 0.91, 0.905]).verdict.startswith("A is ahead by 7.0 ± ")
    unclear = compare([0.90, 0.91, 0.92], [0.905, 0.915, 0.92])
    assert not unclear.clear and unclear.ci95[0] < 0 < unclear.ci95[1]
    assert unclear.verdict.startswith("no clear difference at 3 seeds each (B − A: +0.3 ± ")
    loss = compare([0.3, 0.31, 0.32], [0.2, 0.21, 0.25], metric="test_loss")
    assert loss.verdict.startswith("B has the lower test loss, by 0.090 ± ") and "3 seeds each" in loss.verdict


@pytest.mark.parametrize("a, b, needle", [
    ([0.9], [0.8, 0.85], "A has 1 run"),
    ([], [0.8, 0.85], "A has 0 runs"),
    ([0.9, 0.91], [], "B has 0 runs"),
])
def test_compare_needs_two_runs_a_side(a, b, needle):
    c = compare(a, b)
    assert c.ci95 is None and c.p_value is None and not c.clear and needle in c.verdict


@pytest.mark.filterwarnings("ignore:Precision loss")  # scipy on the constant reference group
def test_compare_zero_variance():
    same = compare([0.9, 0.9], [0.9, 0.9])
    assert same.diff == 0 and same.p_value == 1 and not same.clear
    apart = compare([0.9, 0.9], [0.95, 0.95, 0.95])
    assert apart.ci95 == pytest.approx((0.05, 0.05)) and apart.clear and "2 and 3 seeds" in apart.verdict
    one_flat = compare([0.9, 0.9, 0.9], [0.93, 0.95, 0.97])  # Welch still works with one group's spread
    assert one_flat.p_value == pytest.approx(sps.ttest_ind([0.93, 0.95, 0.97], [0.9] * 3, equal_var=False).pvalue)
