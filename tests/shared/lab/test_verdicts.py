"""Claim verdicts: the rules on known numbers (against scipy), the CLI, and the rules' error rates by simulation.

The simulations use the same vectorized functions the verdicts use (claim_p, decide, holm) on a fixed RNG.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from shared.lab.stats import holm
from shared.lab.studies import STUDIES, get_study
from shared.lab.verdicts import ALPHA, adjust, assess, claim_p, decide, level
from shared.store.studies import judge

AHEAD = get_study("fc-vs-cnn").claims[0]  # expect higher: the CNN ahead of the FC network
SAME = get_study("fc-vs-cnn").claims[1]  # expect equal within 1 point
RNG_SEED = 20261207


def test_unpaired_higher_matches_scipys_one_sided_welch():
    cnn, fc = [0.97, 0.972, 0.968, 0.971, 0.969], [0.90, 0.91, 0.905, 0.899, 0.906]
    (out,) = judge([AHEAD], [(dict(enumerate(cnn)), dict(enumerate(fc, start=5)))], reduced=False)
    res = stats.ttest_ind(cnn, fc, equal_var=False, alternative="greater")
    low, high = stats.ttest_ind(cnn, fc, equal_var=False).confidence_interval(0.95)
    assert out.verdict == "holds" and not out.paired and out.ci == pytest.approx((low * 100, high * 100))
    assert out.p_value == pytest.approx(res.pvalue) and out.n_a == out.n_b == 5 and out.ci_level == 0.95
    assert out.sentence.startswith("Holds:") and "95% CI" in out.sentence and "margin 1 point" in out.sentence


def test_shared_seeds_pair_and_keep_welch_beside():
    a, b = {0: 97.0, 1: 96.0, 2: 98.0, 3: 97.5}, {0: 96.5, 1: 95.4, 2: 97.6, 3: 96.9}
    out = assess("higher", 1.0, a, b)
    res = stats.ttest_rel(list(a.values()), list(b.values()), alternative="greater")
    assert out.paired and out.p_value == pytest.approx(res.pvalue) and out.unpaired is not None
    assert out.unpaired.p_value > out.p_value  # the seed effect cancels in the paired differences
    assert out.hedges_g is not None and out.mde_points > 0


@pytest.mark.parametrize("a, b, verdict", [
    ([90.0, 90.3, 90.2], [90.5, 90.6, 90.4], "reversed"),  # behind: the interval lies below 0
    ([90.5, 90.6, 90.45], [90.5, 90.4, 90.45], "does_not_hold"),  # about equal: below +1 point, not below 0
    ([90.0, 95.0, 85.0], [90.0, 91.0, 89.0], "inconclusive"),  # wide: spans 0 and +1 point
    ([97.0], [90.0, 91.0], "inconclusive"),  # one run on a side: no interval
])
def test_higher_claims(a, b, verdict):
    out = assess("higher", 1.0, a, b)
    assert out.verdict == verdict
    assert (out.seeds_needed is not None) == (verdict == "inconclusive" and out.ci is not None)


def test_equal_claims_hold_inside_the_margin_and_fail_only_outside_it():
    assert assess("equal", 1.0, [90.5, 90.6, 90.4], [90.5, 90.7, 90.3]).verdict == "holds"
    assert assess("equal", 1.0, [85.0, 85.1, 85.2], [90.5, 90.6, 90.4]).verdict == "does_not_hold"
    assert assess("equal", 1.0, [85.0, 95.0, 90.0], [90.5, 90.6, 90.4]).verdict == "inconclusive"


def test_the_audits_equal_case_is_not_does_not_hold():
    """+0.60 ± 0.59 points (95%, Welch, 5 seeds each): inside the 1-point margin, so never 'differs'."""
    rng = np.random.default_rng(RNG_SEED)
    za, zb = rng.standard_normal(5), rng.standard_normal(5)
    za, zb = za - za.mean(), zb - zb.mean()
    half = stats.ttest_ind(za, zb, equal_var=False).confidence_interval(0.95)
    scale = 0.59 / ((half[1] - half[0]) / 2)  # scaled so the 95% half-width is 0.59 points
    a, b = 90.60 + za * scale, 90.0 + zb * scale
    out = assess("equal", 1.0, list(a), list(b))
    assert out.diff == pytest.approx(0.60) and (out.ci[1] - out.ci[0]) / 2 == pytest.approx(0.59)
    assert out.verdict != "does_not_hold"
    cli = run_cli("--claim", "equal", "--margin", "1", "--a", ",".join(map(str, a / 100)),
                  "--b", ",".join(map(str, b / 100)))
    assert cli["verdict"] != "does_not_hold" and cli["diff"] == pytest.approx(0.60)


def test_holm_matches_the_step_down_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    results = adjust([assess("higher", 1.0, [91.0, 91.2, 90.8], [90.0, 90.1, 89.9]), None])
    assert results[1] is None and results[0].p_adjusted == results[0].p_value  # a withheld claim: no family


def test_looks_spend_alpha_by_halves():
    assert [level(k) for k in (1, 2, 3)] == [0.025, 0.0125, 0.00625]
    assert sum(level(k) for k in range(1, 30)) <= ALPHA  # any number of looks: at most ALPHA in all


def run_cli(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "shared.cli.main", "verdict", *args], capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def test_cli_prints_one_json_line_and_rejects_unpaired_lengths():
    out = run_cli("--claim", "higher", "--margin", "1", "--paired", "--a", "0.91,0.92,0.915", "--b", "0.90,0.905,0.9")
    assert set(out) >= {"verdict", "diff", "ci", "p_value", "paired", "mde_points", "seeds_needed"}
    assert out["paired"] and out["diff"] == pytest.approx(4 / 3)
    bad = subprocess.run([sys.executable, "-m", "shared.cli.main", "verdict", "--claim", "higher", "--margin", "1",
                          "--paired", "--a", "0.9,0.91", "--b", "0.9"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "one value a side per seed" in bad.stderr


def test_the_verdict_module_imports_no_torch_and_no_database():
    code = ("import sys, shared.cli.verdict; sys.exit(any(m in sys.modules for m in ('torch', 'sqlalchemy')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- simulations: the rules' error rates, vectorized over replicates --------------------------------------------


def simulate(expect: str, true_diffs: np.ndarray, n: int, looks: int, reps: int, rng, sd: float = 1.0,
             seed_sd: float = 1.0) -> np.ndarray:
    """Verdicts (reps, looks, claims) of paired claims pooled over `looks` runs of n seeds each, Holm per look.

    Each seed shifts both cells alike (seed_sd: the shared data order and initial weights); sd is each cell's own
    noise. true_diffs: (claims,) true a − b in units of the margin's scale (margin 1).
    """
    m = len(true_diffs)
    seed = rng.standard_normal((reps, 1, looks * n)) * seed_sd
    a = seed + true_diffs[None, :, None] + rng.standard_normal((reps, m, looks * n)) * sd
    b = seed + rng.standard_normal((reps, m, looks * n)) * sd
    out = []
    for k in range(1, looks + 1):
        d = (a - b)[..., :k * n]
        diff, se, df = d.mean(-1), d.std(-1, ddof=1) / np.sqrt(k * n), k * n - 1
        alpha = level(k)
        half = stats.t.ppf(1 - alpha, df) * se
        p = holm(claim_p(expect, diff, se, df, 1.0))
        out.append(decide(expect, diff - half, diff + half, p, alpha, 1.0))
    return np.stack(out, axis=1)


@pytest.mark.parametrize("looks", [1, 4])
def test_false_holds_per_study_stay_under_5_percent_with_holm_and_looks(looks):
    """No effect anywhere: 'holds' on any claim of a study, at any of its looks, in at most 5% of studies."""
    rng = np.random.default_rng(RNG_SEED + looks)
    for study in STUDIES.values():
        higher = sum(c.expect == "higher" for c in study.claims)
        if not higher:
            continue
        verdicts = simulate("higher", np.zeros(higher), n=5, looks=looks, reps=4000, rng=rng)
        rate = (verdicts == "holds").any(axis=(1, 2)).mean()
        assert rate <= ALPHA, (study.name, rate)


def test_false_equal_holds_at_the_margin_stay_under_5_percent_over_looks():
    """A true difference of exactly the margin (equality false): 'holds' at any look in at most 5%."""
    rng = np.random.default_rng(RNG_SEED)
    verdicts = simulate("equal", np.array([1.0]), n=5, looks=4, reps=20000, rng=rng, sd=0.5)
    assert (verdicts == "holds").any(axis=(1, 2)).mean() <= ALPHA


@pytest.mark.parametrize("n", [5, 20])
def test_equal_at_half_the_margin_rarely_does_not_hold(n):
    """The audit's case in general: a true difference of half the margin, 'does not hold' in at most 5%."""
    rng = np.random.default_rng(RNG_SEED + n)
    verdicts = simulate("equal", np.array([0.5]), n=n, looks=4, reps=20000, rng=rng, sd=0.8)
    assert (verdicts == "does_not_hold").any(axis=(1, 2)).mean() <= ALPHA


def test_seeds_needed_delivers_about_its_power():
    """At the n `seeds_needed` proposes, a true difference of the margin holds in about 80% of runs."""
    first = assess("higher", 1.0, {s: 0.5 + v for s, v in enumerate([0.2, -2.1, 1.9, -1.4, 1.4])},
                   {s: 0.0 for s in range(5)})
    assert first.verdict == "inconclusive"
    n, spread = first.seeds_needed, first.spread
    d = 1.0 + np.random.default_rng(RNG_SEED).standard_normal((20000, n)) * spread
    diff, se = d.mean(-1), d.std(-1, ddof=1) / np.sqrt(n)
    p = claim_p("higher", diff, se, n - 1, 1.0)
    assert 0.75 <= (p < level(2)).mean() <= 0.85  # tested at the next look's level


def test_the_readme_study_table_is_rendered_from_the_stored_results_with_these_rules():
    from bench import studies_table

    readme = (studies_table.REPO / "README.md").read_text()
    inside = readme.split(studies_table.BEGIN)[1].split(studies_table.END)[0].strip()
    assert inside == studies_table.table(json.loads(studies_table.RESULTS.read_text()))
