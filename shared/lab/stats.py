"""Statistics over repeated runs: a cell's mean with its Student t interval, and Welch's comparison of two groups."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats

LEVEL = 0.95
# How a metric reads to a person: its unit and scale, and which direction is better.
METRICS = {
    "test_accuracy": {"unit": "points", "scale": 100.0, "higher_is_better": True, "label": "accuracy"},
    "test_loss": {"unit": "", "scale": 1.0, "higher_is_better": False, "label": "test loss"},
    "train_seconds": {"unit": "s", "scale": 1.0, "higher_is_better": False, "label": "training time"},
}


class CellStats(BaseModel):
    """n values summarized: mean, sample std (ddof=1) and the 95% Student t interval of the mean (n >= 2)."""

    model_config = ConfigDict(frozen=True)

    n: int
    mean: float | None
    std: float | None
    ci95: tuple[float, float] | None


class Comparison(BaseModel):
    """Group B against group A on one metric: the difference of means, Welch's 95% interval and p-value."""

    model_config = ConfigDict(frozen=True)

    metric: str
    names: tuple[str, str]
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    diff: float | None  # mean(b) - mean(a), in the metric's own unit (accuracy as a fraction)
    ci95: tuple[float, float] | None
    p_value: float | None
    clear: bool  # the interval of the difference excludes 0
    verdict: str


def _clean(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarize(values: Sequence[float]) -> CellStats:
    """Mean, std and the t interval over the seeds (unclipped: an accuracy interval may pass 1)."""
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return CellStats(n=0, mean=None, std=None, ci95=None)
    mean = math.fsum(xs) / n
    if n == 1:
        return CellStats(n=1, mean=mean, std=None, ci95=None)
    if len(set(xs)) == 1:  # no spread (scipy would warn of precision loss): the interval is the point
        return CellStats(n=n, mean=mean, std=0.0, ci95=(mean, mean))
    std = stats.tstd(xs)  # ddof=1
    low, high = stats.t.interval(LEVEL, df=n - 1, loc=mean, scale=stats.sem(xs))
    return CellStats(n=n, mean=mean, std=float(std), ci95=(float(low), float(high)))


def _welch(a: list[float], b: list[float]) -> tuple[float, tuple[float, float], float]:
    """diff, its interval and p for mean(b) - mean(a); exact when both groups have no spread."""
    diff = math.fsum(b) / len(b) - math.fsum(a) / len(a)
    if len(set(a)) == 1 and len(set(b)) == 1:  # t is undefined: the difference is known exactly
        return diff, (diff, diff), 1.0 if diff == 0 else 0.0
    with warnings.catch_warnings():  # one group without spread: scipy warns of precision loss, its variance is 0
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(b, a, equal_var=False)
    low, high = res.confidence_interval(LEVEL)
    return diff, (float(low), float(high)), float(res.pvalue)


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def _seeds(n_a: int, n_b: int) -> str:
    return f"{n_a} seeds each" if n_a == n_b else f"{n_a} and {n_b} seeds"


def _num(metric: str, value: float) -> str:
    """A value in the metric's reading unit: accuracy in points (1 decimal), seconds 1 decimal, losses 3-4."""
    info = METRICS.get(metric, {"unit": "", "scale": 1.0})
    scaled = value * info["scale"]
    digits = 1 if info["unit"] else 3 if abs(scaled) >= 0.01 else 4
    return f"{scaled:.{digits}f}"


def _unit(metric: str) -> str:
    unit = METRICS.get(metric, {"unit": ""})["unit"]
    return f" {unit}" if unit else ""


def wording(metric: str, names: tuple[str, str], diff: float, ci: tuple[float, float], p: float,
            n_a: int, n_b: int) -> str:
    """'the CNN is ahead by 6.9 ± 1.2 points, p < 0.001, 5 seeds each' or 'no clear difference at 5 seeds each'."""
    half = _num(metric, (ci[1] - ci[0]) / 2)
    if ci[0] <= 0 <= ci[1]:
        signed = ("+" if diff >= 0 else "−") + _num(metric, abs(diff))
        return (f"no clear difference at {_seeds(n_a, n_b)} ({names[1]} − {names[0]}: {signed} ± {half}"
                f"{_unit(metric)}, {_p(p)})")
    info = METRICS.get(metric, {"higher_is_better": True, "label": metric})
    winner = names[1] if (diff > 0) == info["higher_is_better"] else names[0]
    lead = (f"{winner} is ahead by" if metric == "test_accuracy" else
            f"{winner} has the {'higher' if info['higher_is_better'] else 'lower'} {info['label']}, by")
    return f"{lead} {_num(metric, abs(diff))} ± {half}{_unit(metric)}, {_p(p)}, {_seeds(n_a, n_b)}"


def compare(a: Sequence[float], b: Sequence[float], *, metric: str = "test_accuracy",
            names: tuple[str, str] = ("A", "B")) -> Comparison:
    """B against A: Welch's t-test (scipy.stats.ttest_ind, equal_var=False); clear when the 95% CI excludes 0."""
    xa, xb = _clean(a), _clean(b)
    base = dict(metric=metric, names=tuple(names), n_a=len(xa), n_b=len(xb),
                mean_a=math.fsum(xa) / len(xa) if xa else None, mean_b=math.fsum(xb) / len(xb) if xb else None)
    if len(xa) < 2 or len(xb) < 2:
        short = [f"{name} has {n} run{'' if n == 1 else 's'}" for name, n in zip(names, (len(xa), len(xb)), strict=True) if n < 2]
        diff = base["mean_b"] - base["mean_a"] if xa and xb else None
        return Comparison(**base, diff=diff, ci95=None, p_value=None, clear=False,
                          verdict=f"not enough runs to compare: {' and '.join(short)} (at least 2 each)")
    diff, ci, p = _welch(xa, xb)
    clear = not ci[0] <= 0 <= ci[1]
    return Comparison(**base, diff=diff, ci95=ci, p_value=p, clear=clear,
                      verdict=wording(metric, tuple(names), diff, ci, p, len(xa), len(xb)))


POWER = 0.8  # the power of a minimum detectable effect and of `seeds_needed`
MAX_SEEDS_NEEDED = 1000  # beyond this a claim is out of reach by adding seeds: None


class Estimate(BaseModel):
    """a − b with its two-sided (1 − 2·alpha) interval: paired by seed (t on the differences) or Welch's."""

    model_config = ConfigDict(frozen=True)

    paired: bool
    n_a: int
    n_b: int
    diff: float
    se: float  # standard error of diff
    df: float  # the t distribution's degrees of freedom (inf when there is no spread)
    spread: float  # per-seed sd behind se: sd of the differences (paired), sqrt(sd_a² + sd_b²) (unpaired)
    alpha: float  # each bound's one-sided level
    ci: tuple[float, float]


def estimate(a: Sequence[float], b: Sequence[float], *, paired: bool, alpha: float) -> Estimate | None:
    """a − b in the values' own unit; paired takes a[i], b[i] as one seed. None: under 2 values a side."""
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if paired:
        if len(xa) != len(xb):
            raise ValueError(f"paired samples need one value a side per seed: {len(xa)} and {len(xb)} values")
        if len(xa) < 2:
            return None
        d = xa - xb
        diff, spread, df = float(d.mean()), float(d.std(ddof=1)), float(len(d) - 1)
        se = spread / math.sqrt(len(d))
    else:
        if len(xa) < 2 or len(xb) < 2:
            return None
        va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
        diff, se = float(xa.mean() - xb.mean()), float(math.sqrt(va + vb))
        spread = float(math.sqrt(xa.var(ddof=1) + xb.var(ddof=1)))
        # Welch–Satterthwaite: as scipy.stats.ttest_ind(equal_var=False) uses it
        df = float((va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1))) if se > 0 else math.inf
    if se == 0:
        df = math.inf
    half = float(stats.t.ppf(1 - alpha, df)) * se
    return Estimate(paired=paired, n_a=len(xa), n_b=len(xb), diff=diff, se=se, df=df, spread=spread, alpha=alpha,
                    ci=(diff - half, diff + half))


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values along the last axis (the family: one study's claims)."""
    p = np.asarray(p, float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, -1) * (m - np.arange(m))
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, -1)
    return out


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float | None:
    """(mean a − mean b) / pooled sd, small-sample corrected (J = 1 − 3 / (4 (n_a + n_b) − 9))."""
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if len(xa) < 2 or len(xb) < 2:
        return None
    pooled = math.sqrt(((len(xa) - 1) * xa.var(ddof=1) + (len(xb) - 1) * xb.var(ddof=1)) / (len(xa) + len(xb) - 2))
    if pooled == 0:
        return None
    return float((xa.mean() - xb.mean()) / pooled * (1 - 3 / (4 * (len(xa) + len(xb)) - 9)))


def mde(se: float, df: float, alpha: float, power: float = POWER) -> float:
    """The smallest true difference a one-sided level-alpha test finds with `power`: (t₁₋α + t_power) · se."""
    return float((stats.t.ppf(1 - alpha, df) + stats.t.ppf(power, df)) * se)


def seeds_needed(spread: float, target: float, alpha: float, *, paired: bool, power: float = POWER) -> int | None:
    """Seeds per cell at which a difference of `target` is found with `power` (one-sided, level alpha).

    `spread` is the per-seed sd behind the standard error (Estimate.spread): se = spread / sqrt(n).
    """
    if spread <= 0 or target <= 0:
        return None
    n = np.arange(2, MAX_SEEDS_NEEDED + 1)
    df = n - 1 if paired else 2 * (n - 1)
    reach = (stats.t.ppf(1 - alpha, df) + stats.t.ppf(power, df)) * spread / np.sqrt(n)
    ok = np.nonzero(reach <= target)[0]
    return int(n[ok[0]]) if len(ok) else None
