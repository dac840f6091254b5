"""LassoLarsPathCV: cross-validated α on the exact LARS path (the PLIP estimator)."""

import numpy as np
import pytest
from sklearn.linear_model import lars_path

from mliplib.models.lasso_path import LassoLarsPathCV, path_coefficients


def sparse_problem(seed=0, n=240, p=40, noise=0.01):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w = np.zeros(p)
    w[[3, 11, 17, 30]] = [1.5, -2.0, 0.7, 1.1]
    return X, X @ w + noise * rng.normal(size=n), w


def test_recovers_the_support_and_stops_exactly_at_alpha():
    X, y, w = sparse_problem()
    est = LassoLarsPathCV(cv=5).fit(X, y)
    assert set(np.flatnonzero(np.abs(est.coef_) > 0.05)) == set(np.flatnonzero(w))
    assert np.abs(est.coef_ - w).max() < 0.05
    assert est.alphas_[-1] <= est.alpha_ <= est.alphas_[0]
    _, _, coefs = lars_path(X, y, method="lasso")
    alphas = lars_path(X, y, method="lasso")[0]
    assert np.allclose(est.coef_, path_coefficients(alphas, coefs, np.array([est.alpha_]))[:, 0], atol=1e-10)


def test_alpha_minimises_the_summed_validation_error():
    X, y, _ = sparse_problem(seed=1, noise=0.5)
    folds = [(np.arange(240)[np.arange(240) % 4 != k], np.arange(240)[np.arange(240) % 4 == k]) for k in range(4)]
    est = LassoLarsPathCV(cv=folds, n_alphas=30).fit(X, y)
    total = np.zeros(30)
    for train, test in folds:  # an independent evaluation of every grid point with sklearn's lars_path
        for g, alpha in enumerate(est.alphas_):
            coef = lars_path(X[train], y[train], method="lasso", alpha_min=alpha)[2][:, -1]
            total[g] += np.sum((X[test] @ coef - y[test]) ** 2)
    assert est.alpha_ == est.alphas_[np.argmin(total)]
    assert np.allclose(est.mse_path_ @ np.full(4, 60.0), total, rtol=1e-8)


def test_path_coefficients_at_breakpoints():
    X, y, _ = sparse_problem(seed=2)
    alphas, _, coefs = lars_path(X, y, method="lasso")
    assert np.allclose(path_coefficients(alphas, coefs, alphas), coefs)


def test_bad_input():
    X, y, _ = sparse_problem()
    with pytest.raises(ValueError, match="finite"):
        LassoLarsPathCV().fit(np.where(X > 2.5, np.nan, X), y)
    with pytest.raises(ValueError, match="intercept"):
        LassoLarsPathCV(fit_intercept=True).fit(X, y)
    with pytest.raises(ValueError, match="folds need"):
        LassoLarsPathCV(cv=1).fit(X, y)
    with pytest.raises(ValueError, match="nothing to fit"):
        LassoLarsPathCV().fit(X, np.zeros(len(y)))


def test_grid_extends_until_the_validation_error_turns_up():
    """Dense, nearly noiseless data want a small α: a grid ending at 10⁻¹·α_max has its smallest error at
    its end, so the estimator extends it by decades (same density) until the minimum is interior, and
    matches a fit given the extended grid from the start."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 30))
    y = X @ rng.normal(size=30) + 1e-3 * rng.normal(size=200)
    short = LassoLarsPathCV(cv=5, n_alphas=6, alpha_min_ratio=0.1).fit(X, y)
    assert short.alpha_min_ratio_ < 0.1 and short.alpha_ > short.alphas_[-1]
    assert len(short.alphas_) == 1 + 5 * round(-np.log10(short.alpha_min_ratio_))
    wide = LassoLarsPathCV(cv=5, n_alphas=len(short.alphas_), alpha_min_ratio=short.alpha_min_ratio_).fit(X, y)
    assert wide.alpha_ == pytest.approx(short.alpha_) and np.allclose(wide.coef_, short.coef_)
    with pytest.warns(UserWarning, match="still smallest"):
        LassoLarsPathCV(cv=5, n_alphas=6, alpha_min_ratio=0.1, min_ratio_floor=0.05).fit(X, y)


def test_one_standard_error_rule_takes_the_sparsest_model_within_one_se():
    X, y, _ = sparse_problem(seed=3, noise=0.5)
    best = LassoLarsPathCV(cv=5).fit(X, y)
    sparse = LassoLarsPathCV(cv=5, rule="1se").fit(X, y)
    mean = best.mse_path_.mean(axis=1)  # equal folds of 48 rows
    k = np.argmin(mean)
    bound = mean[k] + best.mse_path_[k].std(ddof=1) / np.sqrt(5)
    assert sparse.alpha_ == best.alphas_[np.flatnonzero(mean <= bound)[0]]
    assert sparse.alpha_ > best.alpha_ and np.count_nonzero(sparse.coef_) < np.count_nonzero(best.coef_)
    with pytest.raises(ValueError, match="rule"):
        LassoLarsPathCV(rule="median").fit(X, y)
