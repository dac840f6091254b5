"""Statistics for comparing models over ensembles and repeated runs: survival curves, intervals, tests.

- :func:`kaplan_meier`: the Kaplan–Meier estimate of the fraction of runs still alive at time t, from
  run lengths with censoring (a run that ended without failing only says it lived *at least* that long),
  with Greenwood's variance and log(−log) confidence bands (the defaults of lifelines and R's survival);
  :class:`SurvivalCurve` evaluates it at any time and gives its median with an interval.
- :func:`logrank_test`: do two groups of runs fail at the same rate? (Mantel's log-rank χ² test.)
- :func:`bootstrap_interval`, :func:`bootstrap_difference`: percentile bootstrap intervals of a
  statistic of one group and of the difference of a statistic between two groups.
- :func:`grouped_bootstrap_interval`, :func:`grouped_bootstrap_difference`: the same for samples made of
  groups that are not independent inside (members × MD seeds): groups, then values within them, resampled.
- :func:`median_interval`: distribution-free interval of the median from order statistics (exact
  binomial coverage; no resampling).
- :func:`mann_whitney`: the Mann–Whitney U test with its effect sizes (probability of superiority and
  rank-biserial correlation), the p-value alone says nothing of how large a difference is.
- :func:`block_average`: mean of a correlated time series with the standard error of its block means.

Plain NumPy/SciPy; no model, no units. Every function takes array-likes and checks them early.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy import stats

__all__ = [
    "BlockAverage",
    "Interval",
    "LogRank",
    "MannWhitney",
    "SurvivalCurve",
    "block_average",
    "bootstrap_difference",
    "bootstrap_interval",
    "grouped_bootstrap_difference",
    "grouped_bootstrap_interval",
    "kaplan_meier",
    "logrank_test",
    "mann_whitney",
    "median_interval",
]


def _sample(values, name: str, min_size: int = 1) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} value(s), got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has non-finite values (NaN or inf): drop or censor them first")
    return x


def _confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    return float(confidence)


# ------------------------------------------------------------------------------------------ intervals


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate with an interval.

    Attributes
    ----------
    estimate : float
        The statistic of the data.
    low, high : float
        The interval's bounds.
    confidence : float
        The confidence asked for (e.g. 0.95).
    coverage : float
        The coverage the method guarantees (order statistics: exact, can differ from ``confidence``
        for small samples); NaN when only nominal (bootstrap).
    method : str
        How the interval was made.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    coverage: float = float("nan")
    method: str = ""

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval (e.g. a difference whose interval excludes 0).

        Parameters
        ----------
        value : float
            The value tested.

        Returns
        -------
        bool
        """
        return bool(value < self.low or value > self.high)


def _resampled(x: np.ndarray, statistic: Callable, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    samples = x[rng.integers(0, x.size, size=(n_resamples, x.size))]
    return np.asarray(statistic(samples, axis=-1), dtype=float)


def _percentiles(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_interval(values, statistic: Callable = np.median, confidence: float = 0.95,
                       n_resamples: int = 10_000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``statistic(values)``.

    Parameters
    ----------
    values : array-like
        The sample (flattened; finite).
    statistic : callable
        ``statistic(array, axis=-1)``, e.g. ``np.median`` or ``np.mean``.
    confidence : float
        E.g. 0.95.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    Interval
        ``estimate`` = ``statistic(values)``; bounds: the (1 − confidence)/2 and (1 + confidence)/2
        quantiles of the resampled statistics.
    """
    x = _sample(values, "values")
    confidence = _confidence(confidence)
    replicates = _resampled(x, statistic, int(n_resamples), np.random.default_rng(seed))
    low, high = _percentiles(replicates, confidence)
    return Interval(float(statistic(x, axis=-1)), low, high, confidence, method="percentile bootstrap")


def bootstrap_difference(a, b, statistic: Callable = np.median, confidence: float = 0.95,
                         n_resamples: int = 10_000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``statistic(a) − statistic(b)``, each group resampled on its own.

    Parameters
    ----------
    a, b : array-like
        The two samples (e.g. one number per member × seed for two model kinds).
    statistic : callable
        ``statistic(array, axis=-1)``.
    confidence : float
        E.g. 0.95.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    Interval
        A difference whose interval excludes 0 is resolved at that confidence (:meth:`Interval.excludes`).
    """
    x, y = _sample(a, "a"), _sample(b, "b")
    confidence = _confidence(confidence)
    rng = np.random.default_rng(seed)
    replicates = _resampled(x, statistic, int(n_resamples), rng) - _resampled(y, statistic, int(n_resamples), rng)
    low, high = _percentiles(replicates, confidence)
    estimate = float(statistic(x, axis=-1) - statistic(y, axis=-1))
    return Interval(estimate, low, high, confidence, method="percentile bootstrap of the difference")


def median_interval(values, confidence: float = 0.95) -> Interval:
    """The median with a distribution-free interval from order statistics.

    The interval [x₍ₖ₎, x₍ₙ₋ₖ₊₁₎] contains the population median with probability
    1 − 2·P(Bin(n, ½) ≤ k − 1) for any continuous distribution; k is the largest for which that is at
    least ``confidence``. Small samples cannot reach every confidence (n = 5: [min, max] covers
    93.75 %): the interval is then [min, max] and ``coverage`` says what it guarantees.

    Parameters
    ----------
    values : array-like
        The sample (finite).
    confidence : float
        E.g. 0.95.

    Returns
    -------
    Interval
        ``coverage``: the exact coverage of the interval returned.
    """
    x = np.sort(_sample(values, "values"))
    confidence = _confidence(confidence)
    n = x.size
    if n == 1:
        return Interval(float(x[0]), float(x[0]), float(x[0]), confidence, 0.0, "order statistics")
    k = np.arange(1, n // 2 + 1)  # interval [x_(k), x_(n-k+1)], 1-based
    coverage = 1.0 - 2.0 * stats.binom.cdf(k - 1, n, 0.5)
    ok = np.flatnonzero(coverage >= confidence)
    j = int(ok[-1]) if ok.size else 0
    return Interval(float(np.median(x)), float(x[k[j] - 1]), float(x[n - k[j]]), confidence, float(coverage[j]),
                    "order statistics")


# ------------------------------------------------------------------------------------------------ tests


@dataclasses.dataclass(frozen=True)
class MannWhitney:
    """Result of :func:`mann_whitney`.

    Attributes
    ----------
    u : float
        U statistic of the first sample.
    p : float
        p-value.
    probability : float
        P(A > B) + ½ P(A = B) over all pairs (0.5: no tendency; the common-language effect size).
    effect : float
        Rank-biserial correlation 2·probability − 1, in [−1, 1] (positive: A tends to be larger).
    n_a, n_b : int
        Sample sizes.
    alternative : str
        The alternative hypothesis tested.
    """

    u: float
    p: float
    probability: float
    effect: float
    n_a: int
    n_b: int
    alternative: str


def mann_whitney(a, b, alternative: str = "two-sided") -> MannWhitney:
    """Mann–Whitney U test of two samples (:func:`scipy.stats.mannwhitneyu`, exact for small samples
    without ties) with its effect sizes.

    Parameters
    ----------
    a, b : array-like
        The samples (finite).
    alternative : {"two-sided", "greater", "less"}
        "greater": A tends to be larger than B.

    Returns
    -------
    MannWhitney
    """
    x, y = _sample(a, "a"), _sample(b, "b")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    result = stats.mannwhitneyu(x, y, alternative=alternative)
    probability = float(result.statistic) / (x.size * y.size)
    return MannWhitney(float(result.statistic), float(result.pvalue), probability, 2.0 * probability - 1.0,
                       int(x.size), int(y.size), alternative)


# --------------------------------------------------------------------------------------------- survival


def _durations(durations, observed, name: str) -> tuple[np.ndarray, np.ndarray]:
    t = _sample(durations, f"{name} durations")
    if np.any(t < 0):
        raise ValueError(f"{name} durations must be ≥ 0")
    e = np.ones(t.size, bool) if observed is None else np.asarray(observed).ravel()
    if e.shape != t.shape:
        raise ValueError(f"{name}: observed has {e.size} entries for {t.size} durations")
    if e.dtype.kind not in "bi" or not np.all((e == 0) | (e == 1)):
        raise ValueError(f"{name}: observed must be booleans (True: the event happened; False: censored)")
    return t, e.astype(bool)


@dataclasses.dataclass(frozen=True)
class SurvivalCurve:
    """A Kaplan–Meier estimate (see :func:`kaplan_meier`): a step function, right-continuous.

    Attributes
    ----------
    times : numpy.ndarray
        (n_steps + 1,) 0, then each distinct event time, ascending.
    survival, lower, upper : numpy.ndarray
        (n_steps + 1,) the estimate and its confidence band from each of ``times`` on.
    at_risk, events : numpy.ndarray
        (n_steps + 1,) runs at risk just before, and events at, each time (0 events at time 0 unless
        some run failed at 0).
    confidence : float
        Of the band.
    n : int
        Runs.
    censored : numpy.ndarray
        The durations of the censored runs.
    """

    times: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    confidence: float
    n: int
    censored: np.ndarray

    def at(self, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The estimate and its band at time(s) ``t`` (the step function's value there).

        Parameters
        ----------
        t : float or array-like
            Times (same unit as the durations).

        Returns
        -------
        tuple of numpy.ndarray
            (survival, lower, upper), each shaped like ``t``.
        """
        k = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right") - 1
        if np.any(k < 0):
            raise ValueError("times before 0 have no survival estimate")
        return self.survival[k], self.lower[k], self.upper[k]

    def median(self) -> Interval:
        """Median survival time with its interval: the first time the estimate (the lower band, the
        upper band) reaches ½ — inf when it never does (more than half the runs outlived the data).

        Returns
        -------
        Interval
            estimate, low, high in the unit of the durations.
        """
        def first_below_half(curve):
            k = np.flatnonzero(curve <= 0.5)
            return float(self.times[k[0]]) if k.size else float("inf")

        return Interval(first_below_half(self.survival), first_below_half(self.lower),
                        first_below_half(self.upper), self.confidence, method="Kaplan–Meier, log(−log) band")


def kaplan_meier(durations, observed=None, confidence: float = 0.95) -> SurvivalCurve:
    """Kaplan–Meier estimate of the survival function S(t) = P(T > t), with a pointwise band.

    S(t) = Π_{tⱼ ≤ t} (1 − dⱼ/nⱼ) over the event times tⱼ (dⱼ events, nⱼ runs still at risk: lasting at
    least tⱼ; a run censored at tⱼ counts as at risk there). Greenwood's variance and the log(−log)
    transform give the band S^{exp(± z σ)} with σ² = Σ dⱼ/(nⱼ(nⱼ − dⱼ)) / (ln S)², which stays in [0, 1].

    Parameters
    ----------
    durations : array-like
        Time of each run's event, or its length if it was censored (≥ 0).
    observed : array-like of bool, optional
        True where the event happened, False where the run was censored (default: every event observed).
    confidence : float
        Of the band.

    Returns
    -------
    SurvivalCurve
    """
    t, e = _durations(durations, observed, "kaplan_meier")
    confidence = _confidence(confidence)
    z = stats.norm.ppf(0.5 + confidence / 2)
    event_times = np.unique(t[e])
    times = np.concatenate([[0.0], event_times[event_times > 0]])
    at_risk = np.array([np.sum(t >= s) for s in times], dtype=int)
    events = np.array([np.sum((t == s) & e) for s in times], dtype=int)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - events / np.maximum(at_risk, 1), 1.0)
        survival = np.cumprod(factor)
        terms = np.where(at_risk > events, events / (at_risk * (at_risk - events)), np.inf)
        terms[events == 0] = 0.0
        greenwood = np.cumsum(terms)
        sigma = np.sqrt(greenwood) / np.abs(np.log(survival))
        lower = survival ** np.exp(z * sigma)
        upper = survival ** np.exp(-z * sigma)
    alive = survival >= 1.0  # no event yet: no uncertainty
    lower[alive], upper[alive] = 1.0, 1.0
    dead = survival <= 0.0
    lower[dead], upper[dead] = 0.0, 0.0
    return SurvivalCurve(times, survival, lower, upper, at_risk, events, confidence, int(t.size),
                         np.sort(t[~e]))


@dataclasses.dataclass(frozen=True)
class LogRank:
    """Result of :func:`logrank_test`: ``chi2`` (1 degree of freedom), ``p``, and the observed and
    expected events of the first group (more observed than expected: it fails sooner)."""

    chi2: float
    p: float
    observed_a: float
    expected_a: float


def logrank_test(durations_a, durations_b, observed_a=None, observed_b=None) -> LogRank:
    """Log-rank test of equal survival in two groups (Mantel–Haenszel form, hypergeometric variance).

    Parameters
    ----------
    durations_a, durations_b : array-like
        Event or censoring times of each group's runs.
    observed_a, observed_b : array-like of bool, optional
        True where the event happened (default: all).

    Returns
    -------
    LogRank
    """
    ta, ea = _durations(durations_a, observed_a, "group a")
    tb, eb = _durations(durations_b, observed_b, "group b")
    t, e = np.concatenate([ta, tb]), np.concatenate([ea, eb])
    in_a = np.concatenate([np.ones(ta.size, bool), np.zeros(tb.size, bool)])
    observed = expected = variance = 0.0
    for s in np.unique(t[e]):
        risk = t >= s
        n, n_a = risk.sum(), (risk & in_a).sum()
        d, d_a = ((t == s) & e).sum(), ((t == s) & e & in_a).sum()
        observed += d_a
        expected += d * n_a / n
        if n > 1:
            variance += d * (n_a / n) * (1 - n_a / n) * (n - d) / (n - 1)
    if variance <= 0:
        raise ValueError("log-rank test undefined: no event with both groups at risk")
    chi2 = (observed - expected) ** 2 / variance
    return LogRank(float(chi2), float(stats.chi2.sf(chi2, 1)), float(observed), float(expected))


# ------------------------------------------------------------------------------------------ time series


@dataclasses.dataclass(frozen=True)
class BlockAverage:
    """Result of :func:`block_average`: ``mean`` of the samples used, its standard ``error`` from the
    block means, ``n_blocks`` and ``block_size`` (samples)."""

    mean: float
    error: float
    n_blocks: int
    block_size: int


def block_average(series, n_blocks: int = 10) -> BlockAverage:
    """Mean of a correlated time series with the standard error of the mean from block averages.

    The series is cut into ``n_blocks`` consecutive blocks of equal length (the last few samples that do
    not fill a block are dropped); when blocks are longer than the correlation time their means are
    independent, and the error is std(block means)/√n_blocks. Too short blocks underestimate it.

    Parameters
    ----------
    series : array-like
        Samples in time order (finite).
    n_blocks : int
        Blocks (≥ 2).

    Returns
    -------
    BlockAverage
    """
    x = _sample(series, "series")
    n_blocks = int(n_blocks)
    if n_blocks < 2 or x.size < n_blocks:
        raise ValueError(f"need 2 ≤ n_blocks ≤ samples, got n_blocks = {n_blocks} for {x.size} samples")
    size = x.size // n_blocks
    means = x[:size * n_blocks].reshape(n_blocks, size).mean(axis=1)
    return BlockAverage(float(means.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks)), n_blocks, size)


# ------------------------------------------------------------------------------------ grouped samples


def _groups(groups, name: str) -> list[np.ndarray]:
    out = [_sample(g, f"{name}[{k}]") for k, g in enumerate(groups)]
    if len(out) < 2:
        raise ValueError(f"{name}: a grouped bootstrap needs at least two groups (e.g. members), got {len(out)}")
    return out


def _grouped_replicates(groups: list[np.ndarray], statistic: Callable, n_resamples: int,
                        rng: np.random.Generator) -> np.ndarray:
    """``statistic`` of ``n_resamples`` two-stage resamples: groups with replacement, then the values
    within each drawn group with replacement."""
    n = len(groups)
    sizes = {g.size for g in groups}
    if len(sizes) == 1:  # equal groups (e.g. every member has the same seeds): all resamples at once
        size = sizes.pop()
        values = np.stack(groups)
        drawn = rng.integers(0, n, size=(n_resamples, n, 1))
        within = rng.integers(0, size, size=(n_resamples, n, size))
        return np.asarray(statistic(values[drawn, within].reshape(n_resamples, n * size), axis=-1), dtype=float)
    out = np.empty(n_resamples)
    for r in range(n_resamples):
        drawn = [groups[g] for g in rng.integers(0, n, size=n)]
        out[r] = statistic(np.concatenate([g[rng.integers(0, g.size, size=g.size)] for g in drawn]), axis=-1)
    return out


def grouped_bootstrap_difference(groups_a, groups_b, statistic: Callable = np.median, confidence: float = 0.95,
                                 n_resamples: int = 4000, seed: int = 0) -> tuple[Interval, float]:
    """Bootstrap interval and p-value of ``statistic(a) − statistic(b)`` for samples made of groups.

    Values within a group are not independent (several MD seeds of one trained model share the model's
    errors), so each resample draws groups (members) with replacement and then values (seeds) within each
    drawn group with replacement — the two-stage bootstrap for clustered data — for both samples on their
    own.

    Parameters
    ----------
    groups_a, groups_b : sequence of array-like
        One array of values per group (e.g. per trained member: one value per MD seed; or one value).
    statistic : callable
        ``statistic(array, axis=-1)`` of the pooled values, e.g. ``np.median`` or ``np.mean``.
    confidence : float
        E.g. 0.95.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling (the same inputs give the same interval on any machine).

    Returns
    -------
    interval : Interval
        ``estimate`` = statistic(pooled a) − statistic(pooled b) with its percentile interval.
    p : float
        Two-sided bootstrap p-value: twice the smaller fraction of resampled differences on either side
        of 0 (at least 1 / n_resamples).
    """
    a, b = _groups(groups_a, "groups_a"), _groups(groups_b, "groups_b")
    confidence = _confidence(confidence)
    rng = np.random.default_rng(seed)
    replicates = (_grouped_replicates(a, statistic, int(n_resamples), rng)
                  - _grouped_replicates(b, statistic, int(n_resamples), rng))
    low, high = _percentiles(replicates, confidence)
    estimate = float(statistic(np.concatenate(a), axis=-1) - statistic(np.concatenate(b), axis=-1))
    side = min(np.mean(replicates <= 0.0), np.mean(replicates >= 0.0))
    p = float(min(1.0, max(2.0 * side, 1.0 / n_resamples)))
    return Interval(estimate, low, high, confidence, method="two-stage (grouped) percentile bootstrap"), p


def grouped_bootstrap_interval(groups, statistic: Callable = np.median, confidence: float = 0.95,
                               n_resamples: int = 4000, seed: int = 0) -> Interval:
    """Two-stage bootstrap interval of ``statistic`` of a sample made of groups (see
    :func:`grouped_bootstrap_difference`).

    Parameters
    ----------
    groups : sequence of array-like
        One array of values per group.
    statistic : callable
        ``statistic(array, axis=-1)`` of the pooled values.
    confidence : float
        E.g. 0.95.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    Interval
    """
    g = _groups(groups, "groups")
    confidence = _confidence(confidence)
    replicates = _grouped_replicates(g, statistic, int(n_resamples), np.random.default_rng(seed))
    low, high = _percentiles(replicates, confidence)
    return Interval(float(statistic(np.concatenate(g), axis=-1)), low, high, confidence,
                    method="two-stage (grouped) percentile bootstrap")
