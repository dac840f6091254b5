"""mliplib.statistics against hand-computed and textbook numbers, and against properties that hold for
any data (monotonic survival, bands around the estimate, coverage of intervals on known distributions)."""

import numpy as np
import pytest
from scipy import signal, stats

from mliplib.statistics import (
    block_average,
    bootstrap_difference,
    bootstrap_interval,
    kaplan_meier,
    logrank_test,
    mann_whitney,
    median_interval,
)

# Freireich et al. (1963) remission times (weeks) of leukaemia patients, the textbook example of
# Kaplan–Meier (Kleinbaum & Klein, Survival Analysis, ch. 2; Klein & Moeschberger, table 4.1A).
# 6-MP group: censored times marked False.
MP6_TIMES = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP6_EVENTS = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PLACEBO_TIMES = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
# the published table: event time, S(t), Greenwood standard error
MP6_TABLE = [(6, 0.857, 0.076), (7, 0.807, 0.087), (10, 0.753, 0.096), (13, 0.690, 0.107),
             (16, 0.627, 0.114), (22, 0.538, 0.128), (23, 0.448, 0.135)]


def mp6():
    return kaplan_meier(MP6_TIMES, np.array(MP6_EVENTS, bool))


def test_kaplan_meier_by_hand():
    # runs: events at 1 and 3, censored at 2 and 4
    curve = kaplan_meier([1, 2, 3, 4], [True, False, True, False])
    assert curve.times.tolist() == [0, 1, 3]
    assert curve.at_risk.tolist() == [4, 4, 2] and curve.events.tolist() == [0, 1, 1]
    assert np.allclose(curve.survival, [1, 3 / 4, 3 / 4 * 1 / 2])
    # Greenwood at t = 3: S² (1/(4·3) + 1/(2·1)); the log(−log) band from it
    s, var = 3 / 8, (3 / 8) ** 2 * (1 / 12 + 1 / 2)
    sigma = np.sqrt(var) / (s * abs(np.log(s)))
    z = stats.norm.ppf(0.975)
    assert np.isclose(curve.lower[2], s ** np.exp(z * sigma)) and np.isclose(curve.upper[2], s ** np.exp(-z * sigma))
    assert curve.censored.tolist() == [2, 4]


def test_kaplan_meier_textbook_leukaemia():
    curve = mp6()
    for t, s, se in MP6_TABLE:
        k = int(np.flatnonzero(curve.times == t)[0])
        greenwood = np.sum([d / (n * (n - d)) for n, d in zip(curve.at_risk[1:k + 1], curve.events[1:k + 1])])
        assert abs(curve.survival[k] - s) < 5e-4
        assert abs(curve.survival[k] * np.sqrt(greenwood) - se) < 5e-4
    median = curve.median()
    assert median.estimate == 23  # weeks, the published median remission of the 6-MP group
    assert kaplan_meier(PLACEBO_TIMES).median().estimate == 8


def test_kaplan_meier_properties():
    rng = np.random.default_rng(1)
    t = rng.exponential(100.0, 40)
    observed = rng.random(40) < 0.7
    curve = kaplan_meier(t, observed)
    assert np.all(np.diff(curve.survival) <= 0) and curve.survival[0] == 1.0
    assert np.all((0 <= curve.lower) & (curve.lower <= curve.survival + 1e-12))
    assert np.all((curve.survival <= curve.upper + 1e-12) & (curve.upper <= 1))
    median = curve.median()
    assert median.low <= median.estimate <= median.high
    # without censoring, the estimate is the empirical survival function 1 − ECDF
    full = kaplan_meier(t)
    grid = np.linspace(0, t.max() * 1.1, 57)
    assert np.allclose(full.at(grid)[0], [np.mean(t > g) for g in grid])
    # nobody failed: S = 1 with no uncertainty, median not reached
    alive = kaplan_meier([5.0, 5.0, 5.0], [False, False, False])
    assert alive.survival.tolist() == [1.0] and np.isinf(alive.median().estimate)


def test_kaplan_meier_refuses_bad_input():
    with pytest.raises(ValueError, match="≥ 0"):
        kaplan_meier([-1.0, 2.0])
    with pytest.raises(ValueError, match="observed has"):
        kaplan_meier([1.0, 2.0], [True])
    with pytest.raises(ValueError, match="non-finite"):
        kaplan_meier([1.0, np.nan])


def test_logrank_textbook_leukaemia():
    result = logrank_test(MP6_TIMES, PLACEBO_TIMES, np.array(MP6_EVENTS, bool), None)
    assert abs(result.chi2 - 16.79) < 0.01  # Kleinbaum & Klein: log-rank statistic 16.79
    assert result.observed_a == 9 and result.observed_a < result.expected_a  # 6-MP patients relapse later
    same = logrank_test(PLACEBO_TIMES, PLACEBO_TIMES)
    assert same.chi2 == pytest.approx(0.0) and same.p == pytest.approx(1.0)


def test_median_interval_exact_coverage():
    # n = 5: [min, max] covers 1 − 2/32; n = 20: [x(6), x(15)] covers 95.86 % (largest k ≥ 95 %)
    small = median_interval([3.0, 1.0, 2.0, 5.0, 4.0])
    assert (small.low, small.estimate, small.high) == (1.0, 3.0, 5.0)
    assert small.coverage == pytest.approx(1 - 2 / 32)
    values = np.arange(1.0, 21.0)
    big = median_interval(values)
    assert (big.low, big.high) == (6.0, 15.0)
    assert big.coverage == pytest.approx(1 - 2 * stats.binom.cdf(5, 20, 0.5)) and big.coverage >= 0.95
    assert 1 - 2 * stats.binom.cdf(6, 20, 0.5) < 0.95  # one order statistic further in is too narrow


def test_median_interval_covers_the_median_of_a_known_distribution():
    rng = np.random.default_rng(2)
    trials = 400
    hits = sum(median_interval(rng.exponential(1.0, 15)).excludes(np.log(2)) is False for _ in range(trials))
    guaranteed = median_interval(np.arange(15.0)).coverage
    # binomial: expected hits ≥ guaranteed coverage (exact for continuous data); 4σ below
    assert hits / trials > guaranteed - 4 * np.sqrt(guaranteed * (1 - guaranteed) / trials)


def test_bootstrap_interval_coverage_of_a_normal_mean():
    rng = np.random.default_rng(3)
    trials, n = 300, 40
    hits = 0
    for k in range(trials):
        interval = bootstrap_interval(rng.normal(2.0, 1.0, n), np.mean, n_resamples=1000, seed=k)
        assert interval.low <= interval.estimate <= interval.high
        hits += not interval.excludes(2.0)
    # the percentile bootstrap of a mean is close to nominal for n = 40 (slightly below: n/(n−1) shrink);
    # accept anything within 4 binomial σ of 0.93–0.95
    sigma = np.sqrt(0.95 * 0.05 / trials)
    assert 0.93 - 4 * sigma < hits / trials < 0.95 + 4 * sigma


def test_bootstrap_interval_width_shrinks_like_one_over_root_n():
    rng = np.random.default_rng(4)
    small = bootstrap_interval(rng.normal(size=100), np.mean, seed=0)
    large = bootstrap_interval(rng.normal(size=1600), np.mean, seed=0)
    ratio = (small.high - small.low) / (large.high - large.low)
    assert 3.0 < ratio < 5.5  # √16 = 4, with sampling noise
    # closed form for the mean: ±1.96 σ/√n
    assert large.high - large.low == pytest.approx(2 * 1.96 / 40, rel=0.15)


def test_bootstrap_difference_separates_shifted_groups_and_not_equal_ones():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 1.0, 30), rng.normal(0.0, 1.0, 30)
    shifted = bootstrap_difference(a, b, np.mean)
    assert shifted.estimate == pytest.approx(a.mean() - b.mean()) and shifted.excludes(0.0)
    assert shifted.low < 1.0 < shifted.high
    same = bootstrap_difference(b, b)
    assert same.estimate == 0.0 and not same.excludes(0.0)
    assert bootstrap_difference(a, b, seed=7) == bootstrap_difference(a, b, seed=7)  # reproducible


def test_mann_whitney_effect_sizes():
    separated = mann_whitney([5, 6, 7, 8], [1, 2, 3])
    assert separated.probability == 1.0 and separated.effect == 1.0 and separated.u == 12
    assert separated.p == pytest.approx(stats.mannwhitneyu([5, 6, 7, 8], [1, 2, 3]).pvalue)
    assert mann_whitney([1, 2, 3], [5, 6, 7, 8]).effect == -1.0
    one_sided = mann_whitney([5, 6, 7, 8], [1, 2, 3], alternative="greater")
    assert one_sided.p == pytest.approx(separated.p / 2)
    tied = mann_whitney([1, 2, 3], [1, 2, 3])
    assert tied.probability == 0.5 and tied.effect == 0.0
    with pytest.raises(ValueError, match="alternative"):
        mann_whitney([1], [2], alternative="bigger")


def test_block_average_matches_closed_forms():
    # white noise: the error of the mean is σ/√n
    rng = np.random.default_rng(6)
    noise = rng.normal(0.0, 2.0, 100_000)
    result = block_average(noise, 20)
    assert result.block_size == 5000 and result.error == pytest.approx(2.0 / np.sqrt(100_000), rel=0.4)
    # AR(1) with coefficient φ: σ_mean² = σ²/n · (1 + φ)/(1 − φ) for long series, which naive σ/√n misses
    phi, n = 0.9, 200_000
    x = signal.lfilter([1.0], [1.0, -phi], rng.normal(0.0, 1.0, n))  # x_k = φ x_(k−1) + kick_k
    sigma = 1.0 / np.sqrt(1 - phi ** 2)
    expected = sigma / np.sqrt(n) * np.sqrt((1 + phi) / (1 - phi))
    blocked = block_average(x, 20)
    assert blocked.error == pytest.approx(expected, rel=0.4)
    assert blocked.error > 2 * x.std() / np.sqrt(n)
    constant = block_average(np.full(50, 3.0), 5)
    assert constant.mean == 3.0 and constant.error == 0.0
    with pytest.raises(ValueError, match="n_blocks"):
        block_average([1.0, 2.0, 3.0], 1)
