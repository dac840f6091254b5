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
