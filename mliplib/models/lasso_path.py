"""LassoLars with the sparsity α chosen by cross-validation along the exact LARS path.

scikit-learn's ``LassoLarsCV`` caps every path (and the final refit) at ``max_iter`` LARS steps; on the
PLIP design matrix the cross-validated α lies ~1 200 steps down the path, so a small cap silently
ships the model where the refit stopped, and a large one makes ``LassoLarsCV`` slow (its residues are
interpolated on the union of every fold's breakpoints). Here each fold's full path (seconds) is read on
one log-spaced α grid (each path stops at the grid's smallest α), the validation error is summed over
the folds, and the final model is the full-data path stopped exactly at the chosen α
(``lars_path(alpha_min=α)``). A minimum at the grid's smallest α is not a minimum: the grid is then
extended by decades, at the same density, until the validation error turns up again.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import lars_path


def path_coefficients(alphas: np.ndarray, coefs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Weights of a LARS path (piecewise linear in α) at given α values.

    Parameters
    ----------
    alphas : numpy.ndarray
        (n_steps,) the path's breakpoints, decreasing.
    coefs : numpy.ndarray
        (n_features, n_steps) weights at the breakpoints.
    grid : numpy.ndarray
        α values to read the path at.

    Returns
    -------
    numpy.ndarray
        (n_features, len(grid)); constant beyond the path's ends.
    """
    a = alphas[::-1]
    return np.stack([np.interp(grid, a, c[::-1]) for c in coefs])


class LassoLarsPathCV(RegressorMixin, BaseEstimator):
    """Lasso (LARS) with α minimising the K-fold validation MSE on ``n_alphas`` log-spaced values.

    No intercept: centre y and X yourself, or let :class:`~mliplib.models.LinearPotential` carry the
    offsets (it also replaces an integer ``cv`` by folds that keep each frame's rows together).

    Parameters
    ----------
    cv : int or list of (array, array)
        K random folds of the rows (seed 0), or explicit (train_rows, test_rows) splits.
    n_alphas : int
        Values of the initial α grid, log-spaced over [alpha_min_ratio·α_max, α_max] of the full-data
        path.
    alpha_min_ratio : float
        Lower end of the initial grid relative to α_max, in (0, 1). When the validation error is
        smallest at the grid's end, the grid grows by a decade at a time (same points per decade) down
        to ``min_ratio_floor``, with a warning if it is still smallest there.
    max_iter : int
        LARS step limit of every path.
    fit_intercept : bool
        Must be False (present so that scikit-learn tools can switch it off).
    min_ratio_floor : float
        Lowest ratio the grid may be extended to.
    rule : {"min", "1se"}
        "min": the α of the smallest validation error; "1se": the largest α (sparsest model) whose error
        is within one standard error (over the folds) of that minimum — the one-standard-error rule of
        Hastie, Tibshirani and Friedman (fewer terms unless the data clearly ask for more).

    Attributes
    ----------
    coef_ : numpy.ndarray
        (n_features,) weights of the full-data path stopped exactly at ``alpha_``.
    alpha_ : float
        The chosen α.
    alphas_ : numpy.ndarray
        The grid, decreasing.
    mse_path_ : numpy.ndarray
        (len(alphas_), n_folds) validation MSE.
    alpha_min_ratio_ : float
        The ratio the grid finally spans.
    """

    def __init__(self, cv=5, n_alphas: int = 60, alpha_min_ratio: float = 1e-5, max_iter: int = 100_000,
                 fit_intercept: bool = False, min_ratio_floor: float = 1e-12, rule: str = "min"):
        self.cv = cv
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.min_ratio_floor = min_ratio_floor
        self.rule = rule

    def _folds(self, n_rows: int) -> list:
        if isinstance(self.cv, (int, np.integer)):
            k = int(self.cv)
            if not 2 <= k <= n_rows:
                raise ValueError(f"cv={k} folds need 2 ≤ cv ≤ {n_rows} rows")
            fold = np.random.default_rng(0).permutation(n_rows) % k
            rows = np.arange(n_rows)
            return [(rows[fold != f], rows[fold == f]) for f in range(k)]
        return [(np.asarray(tr), np.asarray(te)) for tr, te in self.cv]

    def fit(self, X, y):
        """Cross-validate α along the folds' LARS paths, then fit the full-data path down to it.

        Parameters
        ----------
        X : array-like
            (n_rows, n_features) design matrix.
        y : array-like
            (n_rows,) targets.

        Returns
        -------
        LassoLarsPathCV
            self, fitted.
        """
        if self.fit_intercept:
            raise ValueError("LassoLarsPathCV fits without an intercept; centre the data or set fit_intercept=False")
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X must be (n_rows, n_features) and y (n_rows,); got {X.shape} and {y.shape}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("X and y must be finite (NaN or inf in the design matrix or targets)")
        alpha_max = np.max(np.abs(X.T @ y)) / len(y)
        if alpha_max == 0:
            raise ValueError("every column is orthogonal to y (or y is zero): nothing to fit")
        if self.rule not in ("min", "1se"):
            raise ValueError(f"rule must be 'min' or '1se', got {self.rule!r}")
        if not 0 < self.alpha_min_ratio < 1 or self.n_alphas < 2:
            raise ValueError(f"need 0 < alpha_min_ratio < 1 and n_alphas ≥ 2, "
                             f"got {self.alpha_min_ratio}, {self.n_alphas}")
        folds = self._folds(len(y))
        # the folds' sizes differ by at most a frame: weight them by their rows
        sizes = np.array([len(test) for _, test in folds], dtype=float)
        per_decade = (self.n_alphas - 1) / -np.log10(self.alpha_min_ratio)
        ratio = self.alpha_min_ratio
        while True:
            n = round(-np.log10(ratio) * per_decade) + 1
            self.alphas_ = np.logspace(np.log10(alpha_max), np.log10(alpha_max * ratio), n)
            self.mse_path_ = np.empty((n, len(folds)))
            for f, (train, test) in enumerate(folds):
                alphas, _, coefs = lars_path(X[train], y[train], method="lasso", alpha_min=self.alphas_[-1],
                                             max_iter=self.max_iter)
                residual = X[test] @ path_coefficients(alphas, coefs, self.alphas_) - y[test, None]
                self.mse_path_[:, f] = np.mean(residual ** 2, axis=0)
            best = int(np.argmin(self.mse_path_ @ sizes))
            if best < n - 1:
                break
            if ratio / 10 < self.min_ratio_floor:
                warnings.warn(f"the validation error is still smallest at α = {self.alphas_[-1]:.3g}, the end of a "
                              f"grid down to {ratio:.0e}·α_max; lower min_ratio_floor or regularise otherwise",
                              stacklevel=2)
                break
            ratio /= 10
        self.alpha_min_ratio_ = ratio
        if self.rule == "1se":
            mean = self.mse_path_ @ sizes / sizes.sum()
            se = np.std(self.mse_path_[best], ddof=1) / np.sqrt(len(folds))
            best = int(np.flatnonzero(mean <= mean[best] + se)[0])  # alphas_ decrease: the first is the largest
        self.alpha_ = float(self.alphas_[best])
        _, _, coefs = lars_path(X, y, method="lasso", alpha_min=self.alpha_, max_iter=self.max_iter)
        self.coef_ = coefs[:, -1]
        self.intercept_ = 0.0
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        """Linear prediction X · coef_.

        Parameters
        ----------
        X : array-like
            (n_rows, n_features).

        Returns
        -------
        numpy.ndarray
            (n_rows,).
        """
        return np.asarray(X, dtype=float) @ self.coef_
