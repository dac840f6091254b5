"""Transferability statistics: information imbalance, convex hull, k-NN density, committee force spread.

What the companion book uses to ask *how far a test structure is from the training data* and *which
descriptor space carries more information*:

* :func:`information_imbalance` — Δ(A→B) of Glielmo, Zeni, Cheng, Csányi, Laio, PNAS Nexus **1**,
  pgac039 (2022), exact and equal to DADApy's ``MetricComparisons`` (with ``maxk = N − 1``) on data without
  distance ties; :func:`imbalance_with_error` repeats it on random disjoint subsets for error bars;
  :func:`information_imbalance_ranks` gives the per-point ranks behind it.
* :func:`in_convex_hull` — is a test point a convex combination of the training points (an LP per
  point), optionally after PCA. In high dimension almost every new point is outside the hull of the
  training set, i.e. ML potentials always *extrapolate* in the strict sense (Zeni, Anelli, Glielmo,
  Rossi, Laio, PRB **105**, 165141 (2022)); the hull test becomes informative only on a few principal
  components.
* :func:`kth_neighbor_distance`, :func:`knn_density`, :func:`two_nn_dimension` — distance to the k-th
  nearest training point, the k-NN density estimate built on it, and the TWO-NN intrinsic dimension
  (Facco, d'Errico, Rodriguez, Laio, Sci. Rep. **7**, 12140 (2017)) that the density needs.
* :func:`force_spread` — per-atom standard deviation of the forces predicted by a committee of
  potentials; :func:`force_error_vs_spread` pairs it with the true error (rank correlation through
  :func:`scipy.stats.spearmanr`, not reimplemented here); :func:`spread_calibration` the factor by which
  the spread must be scaled to match the error's size (Musil et al., JCTC **15**, 906 (2019)).
* :class:`Standardizer` (per-feature scaling fitted on the training environments, with a floor for
  features the training set hardly exercises) and :func:`unique_points` (drop duplicated points,
  e.g. symmetry-equivalent atoms, before a TWO-NN estimate) prepare descriptor matrices for the above.

All distances are Euclidean and computed by Numba kernels in O(N_query · N_reference) time; no N × N
matrix is ever stored. Queries are processed in blocks of ``_BLOCK`` points (parallel over blocks,
``prange``): each reference point is streamed once per block and its squared distance to the whole
block is computed feature by feature, vectorised across the block. The k-NN search keeps O(N_query · k)
memory; the information imbalance also holds, per running thread, the block's distances to all N points
(2 · _BLOCK · N doubles, 20 MB for N = 20 000). Every squared distance is the plain sequential sum
Σ_f (x_f − y_f)² (no ‖x‖² + ‖y‖² − 2x·y expansion, no fastmath reassociation), so ranks are exact
counts over these numbers.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from numba import njit, prange
from scipy.optimize import linprog
from scipy.stats import spearmanr

__all__ = [
    "ImbalanceWithError",
    "Standardizer",
    "force_error_vs_spread",
    "force_spread",
    "imbalance_with_error",
    "in_convex_hull",
    "in_convex_hull_by_components",
    "information_imbalance",
    "information_imbalance_ranks",
    "knn_density",
    "kth_neighbor_distance",
    "spread_calibration",
    "two_nn_dimension",
    "unique_points",
]

_BLOCK = 64  # query points per block: 64 × (features) doubles stay in L1/L2 while the reference streams by


# --------------------------------------------------------------------------------------------------
# input checks


def _as_points(X, name: str) -> np.ndarray:
    """(N, D) float64 C-contiguous copy-if-needed of X; 1-D input is N points of one feature."""
    X = np.asarray(X)
    if X.dtype == object or np.issubdtype(X.dtype, np.complexfloating) \
            or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {X.dtype}")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_points, n_features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        bad = np.flatnonzero(~np.all(np.isfinite(X), axis=1))
        raise ValueError(f"{name} has NaN or infinite values in rows {bad[:10].tolist()}"
                         f"{' …' if len(bad) > 10 else ''}")
    return X


def _check_k(k, n_available: int, what: str) -> int:
    if isinstance(k, (bool, np.bool_)) or int(k) != k:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    if k > n_available:
        raise ValueError(f"k = {k} but only {n_available} {what}")
    return k


# --------------------------------------------------------------------------------------------------
# Numba kernels


@njit(cache=True, inline="always")
def _insert(dbuf, ibuf, d, j):
    """Insert (d, j) into the ascending k-buffers dbuf, ibuf (caller checked d < dbuf[-1]).
    Equal distances keep their arrival order: with j scanned ascending, ties go to the lower index."""
    pos = dbuf.shape[0] - 1
    while pos > 0 and dbuf[pos - 1] > d:
        dbuf[pos] = dbuf[pos - 1]
        ibuf[pos] = ibuf[pos - 1]
        pos -= 1
    dbuf[pos] = d
    ibuf[pos] = j


@njit(cache=True, inline="always")
def _load_block(X, start, stop, XT):
    """XT[f, q] = X[start + q, f]: the block transposed so that the inner loop runs over queries."""
    for q in range(stop - start):
        for f in range(X.shape[1]):
            XT[f, q] = X[start + q, f]


@njit(cache=True, inline="always")
def _sq_dists(XT, nq, R, j, acc):
    """acc[q] = Σ_f (XT[f, q] − R[j, f])², summed over f in order (bit-reproducible)."""
    for q in range(nq):
        acc[q] = 0.0
    for f in range(R.shape[1]):
        r = R[j, f]
        for q in range(nq):
            t = XT[f, q] - r
            acc[q] += t * t


@njit(cache=True, parallel=True)
def _knn_kernel(Q, R, k, exclude_self):
    """k nearest points of R for each row of Q: squared distances and indices (nq, k), ascending.
    exclude_self: skip j == i (Q and R are the same set in the same order)."""
    nq = Q.shape[0]
    nr = R.shape[0]
    D = Q.shape[1]
    dist = np.empty((nq, k))
    idx = np.empty((nq, k), dtype=np.int64)
    n_blocks = (nq + _BLOCK - 1) // _BLOCK
    for b in prange(n_blocks):
        start = b * _BLOCK
        stop = min(start + _BLOCK, nq)
        nb = stop - start
        XT = np.empty((D, _BLOCK))
        _load_block(Q, start, stop, XT)
        acc = np.empty(_BLOCK)
        dbuf = np.full((_BLOCK, k), np.inf)
        ibuf = np.full((_BLOCK, k), -1, dtype=np.int64)
        for j in range(nr):
            _sq_dists(XT, nb, R, j, acc)
            for q in range(nb):
                if acc[q] < dbuf[q, k - 1] and not (exclude_self and j == start + q):
                    _insert(dbuf[q], ibuf[q], acc[q], j)
        for q in range(nb):
            for m in range(k):
                dist[start + q, m] = dbuf[q, m]
                idx[start + q, m] = ibuf[q, m]
    return dist, idx


@njit(cache=True)
def _conditional_ranks(d1, d2, i, out):
    """out[m] = 1 + #{l ≠ i : d2[l] < d2[n_m]}, n_m the (m+1)-th nearest neighbour of i under d1
    (i itself excluded; ties in d1 go to the lower index). d1, d2: distances from i to all points."""
    k = out.shape[0]
    dbuf = np.full(k, np.inf)
    ibuf = np.full(k, -1, dtype=np.int64)
    for j in range(d1.shape[0]):
        if j != i and d1[j] < dbuf[k - 1]:
            _insert(dbuf, ibuf, d1[j], j)
    for m in range(k):
        t = d2[ibuf[m]]  # the very number compared below: a neighbour never counts as closer than itself
        c = 0
        for l in range(d2.shape[0]):
            if d2[l] < t:
                c += 1
        if d2[i] < t:  # i itself (distance 0) is not a neighbour
            c -= 1
        out[m] = c + 1


@njit(cache=True, parallel=True)
def _imbalance_kernel(A, B, k):
    """Conditional ranks for both directions of the information imbalance.

    rank_ab[i, m] = 1 + #{l ≠ i : d_B(i, l) < d_B(i, n_m)} with n_m the (m+1)-th nearest neighbour of i
    in A; rank_ba likewise with A and B swapped. Per block of _BLOCK points, the squared distances to
    all N points in both spaces are computed once into two (_BLOCK, N) buffers, then each point's row
    is scanned for its k nearest neighbours in one space and their ranks in the other.
    """
    N = A.shape[0]
    rank_ab = np.empty((N, k), dtype=np.int64)
    rank_ba = np.empty((N, k), dtype=np.int64)
    n_blocks = (N + _BLOCK - 1) // _BLOCK
    for b in prange(n_blocks):
        start = b * _BLOCK
        stop = min(start + _BLOCK, N)
        nb = stop - start
        AT = np.empty((A.shape[1], _BLOCK))
        BT = np.empty((B.shape[1], _BLOCK))
        _load_block(A, start, stop, AT)
        _load_block(B, start, stop, BT)
        acc = np.empty(_BLOCK)
        dA = np.empty((_BLOCK, N))
        dB = np.empty((_BLOCK, N))
        for j in range(N):
            _sq_dists(AT, nb, A, j, acc)
            for q in range(nb):
                dA[q, j] = acc[q]
            _sq_dists(BT, nb, B, j, acc)
            for q in range(nb):
                dB[q, j] = acc[q]
        for q in range(nb):
            i = start + q
            _conditional_ranks(dA[q], dB[q], i, rank_ab[i])
            _conditional_ranks(dB[q], dA[q], i, rank_ba[i])
    return rank_ab, rank_ba


# --------------------------------------------------------------------------------------------------
# information imbalance


def _imbalance_inputs(X_a, X_b, k):
    A = _as_points(X_a, "X_a")
    B = _as_points(X_b, "X_b")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"X_a and X_b must describe the same points: {A.shape[0]} rows vs {B.shape[0]}")
    if A.shape[0] < 2:
        raise ValueError("the information imbalance needs at least 2 points")
    k = _check_k(k, A.shape[0] - 1, "other points exist (k must be ≤ N − 1)")
    return A, B, k


def information_imbalance_ranks(X_a, X_b, k=1):
    """Per-point conditional ranks behind :func:`information_imbalance`.

    Returns ``(ranks_ab, ranks_ba)``, int64 arrays (N, k): ``ranks_ab[i, m]`` is the rank in space B
    (1 = nearest, i itself excluded) of the (m+1)-th nearest neighbour of i in space A; ``ranks_ba``
    the same with A and B swapped. Δ(A→B) = 2 · ranks_ab.mean() / N. Large ranks flag the points whose
    A-neighbourhood B does not preserve.

    Parameters
    ----------
    X_a, X_b : array_like, shape (N, D_a) and (N, D_b)
        The same N points in the two spaces.
    k : int
        Neighbours per point (1 ≤ k ≤ N − 1).

    Returns
    -------
    tuple of two numpy.ndarray of int64, shape (N, k)
        (ranks_ab, ranks_ba).
    """
    A, B, k = _imbalance_inputs(X_a, X_b, k)
    return _imbalance_kernel(A, B, k)


def information_imbalance(X_a, X_b, k=1):
    """Information imbalance ``(Δ(A→B), Δ(B→A))`` between two representations of the same N points.

    Δ(A→B) = (2/N) · ⟨r^B_{ij}⟩, the mean over all points i and over the k nearest neighbours j of i in
    A of r^B_{ij}, the rank of j among the neighbours of i in B (1 = nearest); Glielmo, Zeni, Cheng,
    Csányi, Laio, PNAS Nexus 1, pgac039 (2022). Δ ≈ 0: A predicts B's neighbourhoods (A contains B's
    information); Δ ≈ 1: it does not (independent spaces). The floor is (k + 1)/N (2/N for k = 1),
    reached by Δ(X→X) and by any A, B with the same neighbour order; Δ(A→B) small with Δ(B→A) large means
    A is strictly more informative than B. Δ depends on N: compare values at equal N.

    Parameters
    ----------
    X_a, X_b : array (N, D_a), (N, D_b)
        The same N points in the two spaces (rows correspond). Euclidean distances; scale the features
        beforehand if they have different units.
    k : int
        Neighbours of i in A whose B-ranks are averaged (1 ≤ k ≤ N − 1), as DADApy's ``k``.

    Exact: r^B_{ij} = 1 + #{l ≠ i : d_B(i, l) < d_B(i, j)}, counted over all N − 1 other points, in
    O(N²(D_a + D_b)) time and O(N · k) memory (plus a 64 × N distance buffer per thread), parallel over
    blocks of points. It equals DADApy's ``MetricComparisons(np.hstack([X_a, X_b]), maxk=N - 1)
    .return_inf_imb_two_selected_coords(a_cols, b_cols, k)``; with a smaller ``maxk`` DADApy replaces the
    ranks beyond maxk by random draws.

    Ties (duplicated or lattice-like data): a point tied in B with j does not count as closer, so tied
    points share the best rank, and among neighbours tied in A the lower index is taken. DADApy takes
    the order in which scikit-learn returns tied points (and its distances differ from these in the last
    bits), so on data with exact or near-exact distance ties the two can differ slightly.

    Returns
    -------
    tuple of two float
        (Δ(A→B), Δ(B→A)).
    """
    rank_ab, rank_ba = information_imbalance_ranks(X_a, X_b, k)
    N = rank_ab.shape[0]
    return 2.0 * rank_ab.mean() / N, 2.0 * rank_ba.mean() / N


class ImbalanceWithError(NamedTuple):
    """Mean information imbalance over disjoint random subsets and its standard error
    (sample standard deviation / √n_subsets; NaN with a single subset). ``samples`` is
    (n_subsets, 2): Δ(A→B), Δ(B→A) of each subset."""

    a_to_b: float
    a_to_b_err: float
    b_to_a: float
    b_to_a_err: float
    samples: np.ndarray


def imbalance_with_error(X_a, X_b, n_subsets=5, subset_size=None, seed=None, k=1):
    """Information imbalance with error bars from ``n_subsets`` random *disjoint* subsets of the points.

    The N points are shuffled with ``np.random.default_rng(seed)`` and split into ``n_subsets`` groups of
    ``subset_size`` points (default ``N // n_subsets``; ``n_subsets · subset_size ≤ N``); Δ is computed on
    each group. All groups have the same size because Δ depends on N (its floor is (k + 1)/N): compare
    values only at equal subset size. Also the way to make Δ of a large data set affordable (cost ∝
    subset_size² per subset). DADApy's ``MetricComparisons.return_information_imbalace(X_b, k, subset_size,
    repeats)`` does the same with its own random split.

    Parameters
    ----------
    X_a, X_b : array_like, shape (N, D_a) and (N, D_b)
        The same N points in the two spaces.
    n_subsets : int
        Number of disjoint subsets (≥ 2).
    subset_size : int, optional
        Points per subset (default N // n_subsets).
    seed : int, optional
        Seed of the shuffle.
    k : int
        Neighbours per point.

    Returns
    -------
    ImbalanceWithError
    """
    A, B, _ = _imbalance_inputs(X_a, X_b, 1)
    N = A.shape[0]
    n_subsets = int(n_subsets)
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be ≥ 1, got {n_subsets}")
    if subset_size is None:
        subset_size = N // n_subsets
    subset_size = int(subset_size)
    if subset_size < 2:
        raise ValueError(f"subsets of {subset_size} points are too small (N = {N}, n_subsets = {n_subsets})")
    if n_subsets * subset_size > N:
        raise ValueError(f"{n_subsets} disjoint subsets of {subset_size} points need {n_subsets * subset_size} "
                         f"points, only {N} given")
    _check_k(k, subset_size - 1, "other points exist in a subset (k must be ≤ subset_size − 1)")
    perm = np.random.default_rng(seed).permutation(N)
    samples = np.empty((n_subsets, 2))
    for s in range(n_subsets):
        sel = np.sort(perm[s * subset_size:(s + 1) * subset_size])
        samples[s] = information_imbalance(A[sel], B[sel], k)
    mean = samples.mean(axis=0)
    if n_subsets > 1:
        err = samples.std(axis=0, ddof=1) / math.sqrt(n_subsets)
    else:
        err = np.full(2, np.nan)
    return ImbalanceWithError(float(mean[0]), float(err[0]), float(mean[1]), float(err[1]), samples)


# --------------------------------------------------------------------------------------------------
# convex hull


def _pca_project(train, test, n_components):
    n_max = min(train.shape)
    if isinstance(n_components, (bool, np.bool_)) or int(n_components) != n_components \
            or not 1 <= int(n_components) <= n_max:
        raise ValueError(f"n_components must be an integer in [1, {n_max}] (min of n_train, n_features), "
                         f"got {n_components!r}")
    n_components = int(n_components)
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    comps = vt[:n_components]
    return (train - mean) @ comps.T, (test - mean) @ comps.T


def in_convex_hull(train, test, n_components=None, tol=1e-7):
    """Whether each test point lies in the convex hull of the training points: boolean array (n_test,).

    x ∈ conv(train) iff the linear program {λ ∈ R^{n_train}: λ ≥ 0, Σλ = 1, trainᵀλ = x} is feasible;
    it is solved (zero objective) with :func:`scipy.optimize.linprog`, ``method="highs"``, one LP per test
    point, with HiGHS' primal feasibility tolerance set to ``tol`` (≥ 1e-10): points on a face or at a
    vertex are inside, and so are points within about ``tol`` (in feature units) outside the hull. A point
    outside the bounding box of train by more than ``tol`` is outside without an LP.

    With ``n_components`` both sets are first projected on the leading principal components of train
    (PCA fitted on train: centred, SVD). In high dimension nearly every test point is outside the hull
    even when drawn from the training distribution (Zeni et al., PRB 105, 165141 (2022)); on a few
    principal components the test tells interpolation from extrapolation along the main directions of
    variance. Cost: one LP with n_train variables and D + 1 equality constraints per point.

    Parameters
    ----------
    train : array_like, shape (n_train, D)
        The training points.
    test : array_like, shape (n_test, D)
        The points tested.
    n_components : int, optional
        Project both on this many leading principal components of train first.
    tol : float
        Feasibility tolerance (feature units, ≥ 1e-10).

    Returns
    -------
    numpy.ndarray of bool, shape (n_test,)
    """

    train = _as_points(train, "train")
    test = _as_points(test, "test")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test have different numbers of features: {train.shape[1]} vs {test.shape[1]}")
    if not tol >= 1e-10:
        raise ValueError(f"tol must be ≥ 1e-10 (HiGHS' smallest feasibility tolerance), got {tol!r}")
    if n_components is not None:
        train, test = _pca_project(train, test, n_components)
    n_train = train.shape[0]
    lo = train.min(axis=0) - tol
    hi = train.max(axis=0) + tol
    A_eq = np.vstack([train.T, np.ones((1, n_train))])
    c = np.zeros(n_train)
    options = {"primal_feasibility_tolerance": float(tol)}
    inside = np.zeros(len(test), dtype=bool)
    for t, x in enumerate(test):
        if np.any(x < lo) or np.any(x > hi):
            continue
        res = linprog(c, A_eq=A_eq, b_eq=np.append(x, 1.0), bounds=(0, None), method="highs", options=options)
        if res.status == 0:
            inside[t] = True
        elif res.status != 2:  # 2 = infeasible; anything else is a solver failure
            raise RuntimeError(f"linprog failed on test point {t} (status {res.status}): {res.message}")
    return inside


def in_convex_hull_by_components(train, test, components, tol=1e-7):
    """:func:`in_convex_hull` on several numbers of principal components at once.

    ``components``: iterable of ints (numbers of leading principal components of train) and/or None
    (the full space). Returns ``{k: bool array (n_test,)}``. Uses that projection preserves convex
    combinations: a point inside the hull on k + 1 components (or in the full space) is inside on k,
    so the dimensions are tested in increasing order and only points still inside are passed on;
    points already outside need no further LP. Same answers as separate calls (up to the LP
    tolerance), usually at a fraction of the cost.

    Parameters
    ----------
    train : array_like, shape (n_train, D)
        The training points.
    test : array_like, shape (n_test, D)
        The points tested.
    components : iterable of int or None
        Numbers of leading principal components (None: the full space).
    tol : float
        Feasibility tolerance (feature units).

    Returns
    -------
    dict
        ``{k: bool array (n_test,)}``.
    """
    train = _as_points(train, "train")
    test = _as_points(test, "test")
    ks = list(components)
    if not ks:
        raise ValueError("components is empty")
    order = sorted(ks, key=lambda k: np.inf if k is None else k)
    alive = np.ones(len(test), dtype=bool)
    result = {}
    for k in order:
        inside = np.zeros(len(test), dtype=bool)
        if alive.any():
            inside[alive] = in_convex_hull(train, test[alive], n_components=k, tol=tol)
        result[k] = inside
        alive = inside
    return {k: result[k] for k in ks}


# --------------------------------------------------------------------------------------------------
# k-NN distances, density, intrinsic dimension


def _resolve_test(train, test, exclude_self):
    if test is None:
        test_arr = train
        same = True
    else:
        test_arr = _as_points(test, "test")
        same = test is train or (test_arr.shape == train.shape and np.array_equal(test_arr, train))
    if test_arr.shape[1] != train.shape[1]:
        raise ValueError(f"train and test have different numbers of features: {train.shape[1]} vs "
                         f"{test_arr.shape[1]}")
    if exclude_self is None:
        exclude_self = same
    elif exclude_self and test_arr.shape[0] != train.shape[0]:
        raise ValueError("exclude_self=True means test[i] is train[i]: test and train must have the same rows")
    return test_arr, bool(exclude_self)


def _knn(train, test, k, exclude_self):
    train = _as_points(train, "train")
    test, exclude_self = _resolve_test(train, test, exclude_self)
    n_avail = train.shape[0] - (1 if exclude_self else 0)
    k = _check_k(k, n_avail, "training points are available as neighbours")
    d2, idx = _knn_kernel(test, train, k, exclude_self)
    return np.sqrt(d2), idx, n_avail, train


def kth_neighbor_distance(train, test=None, k=1, exclude_self=None, return_index=False):
    """Euclidean distance from each test point to its k-th nearest training point: array (n_test,).

    The simplest "how far from the training data" proxy. ``test=None`` means test = train.
    ``exclude_self``: skip the pair (test[i], train[i]) — for test = train, where every point would
    otherwise be its own nearest neighbour at distance 0. ``None`` (default) turns it on exactly when
    ``test`` is None, is ``train``, or equals it element-wise; ``True`` requires test and train to have the
    same rows in the same order; ``False`` keeps self-matches. Numba, blocked, O(n_test · n_train)
    time, O(n_test · k) memory. With ``return_index`` also returns the index of that training point.

    Parameters
    ----------
    train : array_like, shape (n_train, D)
        The training points.
    test : array_like, shape (n_test, D), optional
        The points measured (default: train).
    k : int
        Which neighbour.
    exclude_self : bool, optional
        Skip the pairs (test[i], train[i]) (see above).
    return_index : bool
        Also return the indices of those training points.

    Returns
    -------
    numpy.ndarray, shape (n_test,), or tuple of two numpy.ndarray
        Distances (feature units), and with ``return_index`` the indices (int64).
    """
    dist, idx, _, _ = _knn(train, test, k, exclude_self)
    if return_index:
        return dist[:, -1].copy(), idx[:, -1].copy()
    return dist[:, -1].copy()


def _log_unit_ball_volume(d):
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def two_nn_dimension(X, fraction=0.9, method="fit"):
    """TWO-NN intrinsic dimension of the points X (Facco et al., Sci. Rep. 7, 12140 (2017)).

    With μ_i = r₂(i)/r₁(i) (second over first neighbour distance), μ is Pareto distributed,
    F(μ) = 1 − μ^{−d}, for a locally uniform density on a d-dimensional manifold.
    ``method="fit"`` (the paper's and DADApy's default): least-squares line through the origin of
    −log(1 − i/n) against log μ_(i), i = 1 … ⌊n · fraction⌋ (μ sorted ascending; the largest μ are noisy
    and dropped; at most n − 1 points, since i = n gives log 0); ``method="ml"``: maximum likelihood
    d = (n − 1)/Σ log μ_i over all points. Both are DADApy's ``compute_id_2NN(algorithm="base"|"ml",
    mu_fraction=fraction)`` number for number. Points with duplicate neighbours (r₁ = 0) are dropped
    with a warning.

    Parameters
    ----------
    X : array_like, shape (n_points, D)
        The points.
    fraction : float
        Fraction of the sorted μ used by ``method="fit"``.
    method : {"fit", "ml"}
        Estimator.

    Returns
    -------
    float
        The intrinsic dimension.
    """
    X = _as_points(X, "X")
    if X.shape[0] < 3:
        raise ValueError("the TWO-NN estimator needs at least 3 points")
    d2, _ = _knn_kernel(X, X, 2, True)
    r = np.sqrt(d2)
    ok = r[:, 0] > 0
    if not ok.all():
        warnings.warn(f"{np.count_nonzero(~ok)} points have a duplicate (zero distance to their nearest "
                      f"neighbour) and are left out of the TWO-NN estimate", stacklevel=2)
    mu = r[ok, 1] / r[ok, 0]
    n = len(mu)
    if n < 3:
        raise ValueError("fewer than 3 points without duplicates: cannot estimate the dimension")
    if method == "ml":
        s = np.sum(np.log(mu))
        if not s > 0:
            raise ValueError("all r2/r1 ratios are 1: the dimension is undefined (degenerate data)")
        return float((n - 1) / s)
    if method != "fit":
        raise ValueError(f"method must be 'fit' or 'ml', got {method!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    mu = np.sort(mu)
    m = min(max(2, int(n * fraction)), n - 1)
    F = np.arange(1, m + 1) / n  # empirical CDF at the m smallest μ
    x = np.log(mu[:m])
    y = -np.log(1.0 - F)
    denom = np.dot(x, x)
    if not denom > 0:
        raise ValueError("all r2/r1 ratios are 1: the dimension is undefined (degenerate data)")
    return float(np.dot(x, y) / denom)


def knn_density(train, test=None, k=10, dimension=None, exclude_self=None):
    """Log of the k-NN density estimate of the training distribution at each test point: array (n_test,).

    ρ(x) = k / (N · V_d · r_k(x)^d), with r_k the distance from x to its k-th nearest training point,
    V_d = π^{d/2}/Γ(d/2 + 1) the volume of the unit d-ball and N the number of training points that can
    be neighbours (n_train, or n_train − 1 with ``exclude_self``). ρ is a probability density (it
    integrates to ≈ 1; N·ρ is the number density, points per unit volume) in the units of the features
    to the power −d; returned as log ρ because ρ spans many orders of magnitude in high dimension
    (+inf where r_k = 0).

    ``dimension``: the d used, an int/float, or ``None`` to estimate the intrinsic dimension of train with
    :func:`two_nn_dimension` — descriptors live on a manifold of much lower dimension than the number of
    features, and d = n_features would make ρ absurdly peaked. ``test=None`` means test = train;
    ``exclude_self`` as in :func:`kth_neighbor_distance` (on by default when test is train).
    The statistical error of log ρ is ≈ 1/√k; only differences of log ρ between points evaluated with the
    same train, k and d are meaningful. Zeni et al. (PRB 105, 165141 (2022)) use this training density,
    not hull membership, to predict where a potential extrapolates badly.

    On train itself this is DADApy's ``Data(train).compute_density_kNN(k)`` (with the same intrinsic
    dimension) except that DADApy normalises by N rather than by the N − 1 possible neighbours.

    Parameters
    ----------
    train : array_like, shape (n_train, D)
        The training points.
    test : array_like, shape (n_test, D), optional
        Where the density is evaluated (default: train).
    k : int
        Neighbour whose distance sets the volume.
    dimension : float, optional
        d (default: :func:`two_nn_dimension` of train).
    exclude_self : bool, optional
        As in :func:`kth_neighbor_distance`.

    Returns
    -------
    numpy.ndarray, shape (n_test,)
        log ρ.
    """
    dist, _, n_avail, train_arr = _knn(train, test, k, exclude_self)
    if dimension is None:
        d = two_nn_dimension(train_arr)
    else:
        d = float(dimension)
        if not d > 0 or not np.isfinite(d):
            raise ValueError(f"dimension must be a positive number, got {dimension!r}")
    r_k = dist[:, -1]
    with np.errstate(divide="ignore"):
        log_r = np.log(r_k)
    return math.log(k) - math.log(n_avail) - _log_unit_ball_volume(d) - d * log_r


# --------------------------------------------------------------------------------------------------
# committee force spread


def _is_calculator(obj) -> bool:
    return hasattr(obj, "get_forces") and hasattr(obj, "calculate")


def _member_forces(model, atoms) -> np.ndarray:
    """Forces (n_atoms, 3) of one committee member: a model with ``.predict(atoms)["forces"]`` or an ASE
    calculator."""
    if hasattr(model, "predict"):
        return np.asarray(model.predict(atoms)["forces"], dtype=np.float64)
    a = atoms.copy()
    a.calc = model
    return np.asarray(a.get_forces(), dtype=np.float64)


def _committee_forces(committee, atoms) -> np.ndarray:
    """(M, n_atoms, 3) forces of the committee members on atoms (see :func:`force_spread`)."""
    if hasattr(committee, "predict"):  # mliplib.models.Committee: one call, members share the neighbour list
        if atoms is None:
            raise ValueError("atoms is needed to evaluate the committee")
        out = committee.predict(atoms)
        if "member_forces" not in out:
            raise TypeError(f"{type(committee).__name__}.predict() gives no 'member_forces': a single model is "
                            f"not a committee; pass mliplib.models.Committee or a list of models")
        forces = out["member_forces"]
    else:
        members = list(committee)
        if len(members) == 0:
            raise ValueError("the committee has no members")
        if all(hasattr(m, "predict") or _is_calculator(m) for m in members):
            if atoms is None:
                raise ValueError("atoms is needed to evaluate the committee models")
            forces = [_member_forces(m, atoms) for m in members]
        else:  # the members' forces themselves
            forces = members
        shapes = {np.shape(f) for f in forces}
        if len(shapes) != 1:
            raise ValueError(f"committee members give forces of different shapes: {sorted(shapes)}")
    forces = np.asarray(forces, dtype=np.float64)
    if forces.ndim != 3 or forces.shape[2] != 3:
        raise ValueError(f"committee forces must have shape (M, n_atoms, 3), got {forces.shape}")
    if atoms is not None and forces.shape[1] != len(atoms):
        raise ValueError(f"forces for {forces.shape[1]} atoms but atoms has {len(atoms)}")
    if not np.all(np.isfinite(forces)):
        raise ValueError("committee forces contain NaN or infinite values")
    return forces


def _spread(F):
    """σ_a from (M, n_atoms, 3) forces via the pairwise identity
    (1/M) Σ_m |F_m − F̄|² = (1/M²) Σ_{m<n} |F_m − F_n|², exactly 0 when all members agree."""
    M = F.shape[0]
    acc = np.zeros(F.shape[1])
    for m in range(M - 1):
        diff = F[m + 1:] - F[m]
        acc += np.einsum("nak,nak->a", diff, diff)
    return np.sqrt(acc) / M


def force_spread(committee, atoms=None):
    """Per-atom committee spread σ_a = sqrt((1/M) Σ_m |F_a^(m) − F̄_a|²) in the force unit (eV/Å).

    ``committee`` is one of
      * a :class:`mliplib.models.Committee` (anything whose ``predict(atoms)`` returns ``member_forces``),
        evaluated with one ``predict`` call — the same σ as its ``predict(atoms)["forces_spread"]``;
      * a list of models with ``.predict(atoms)["forces"]`` and/or ASE calculators;
      * the members' forces themselves, an array or list (M, n_atoms, 3) (``atoms`` may then be None).

    ``atoms``: one :class:`ase.Atoms` (returns an array (n_atoms,)) or a list of them (returns a list of
    arrays). F̄_a is the committee mean; the 1/M normalisation makes σ the population standard deviation
    of the force vectors (0 for a single member). σ is computed from the pairwise differences of the
    members, so it is exactly 0 when all members agree.

    Parameters
    ----------
    committee : Committee, list of models or calculators, or array_like (M, n_atoms, 3)
        The members (see above).
    atoms : ase.Atoms or list of ase.Atoms, optional
        The structure(s).

    Returns
    -------
    numpy.ndarray, shape (n_atoms,), or list of them
        σ_a (eV/Å).
    """
    if atoms is not None and not hasattr(atoms, "positions"):
        return [force_spread(committee, a) for a in atoms]
    return _spread(_committee_forces(committee, atoms))


def _reference_forces(atoms) -> np.ndarray:
    if "forces" in atoms.arrays:  # stored reference frames: info["energy"], arrays["forces"]
        return atoms.arrays["forces"]
    if atoms.calc is not None:  # e.g. a SinglePointCalculator read from an extxyz file
        return atoms.get_forces()
    raise ValueError("the structure carries no reference forces (arrays['forces'] or a calculator); "
                     "pass reference_forces")


def force_error_vs_spread(committee, atoms_list, reference_forces=None):
    """Per-atom committee spread against the true error of the committee-mean forces.

    ``committee`` as in :func:`force_spread`; ``atoms_list``: one or several :class:`ase.Atoms`;
    ``reference_forces``: one (n_atoms, 3) array per structure, or None to take each structure's own
    reference forces (``arrays["forces"]``, else its calculator's). A useful uncertainty estimate ranks
    the errors well even if its scale is off.

    Parameters
    ----------
    committee : Committee, list of models or calculators, or array_like
        As in :func:`force_spread`.
    atoms_list : ase.Atoms or list of ase.Atoms
        The structures.
    reference_forces : list of array_like, shape (n_atoms, 3), optional
        Reference forces (eV/Å) per structure.

    Returns
    -------
    dict
        ``spread`` (σ_a) and ``error`` (|F̄_a − F_a^ref|), both eV/Å and concatenated over all atoms, and
        ``spearman`` = :func:`scipy.stats.spearmanr` (statistic, pvalue) between them.
    """

    if hasattr(atoms_list, "positions"):
        atoms_list = [atoms_list]
    spreads, errors = [], []
    for s, atoms in enumerate(atoms_list):
        F = _committee_forces(committee, atoms)
        ref = _reference_forces(atoms) if reference_forces is None else reference_forces[s]
        ref = np.asarray(ref, dtype=np.float64)
        if ref.shape != F.shape[1:]:
            raise ValueError(f"structure {s}: reference forces {ref.shape} vs committee forces {F.shape[1:]}")
        spreads.append(_spread(F))
        errors.append(np.linalg.norm(F.mean(axis=0) - ref, axis=1))
    spread = np.concatenate(spreads)
    error = np.concatenate(errors)
    rho = spearmanr(spread, error)
    return {"spread": spread, "error": error, "spearman": rho}


# --------------------------------------------------------------------------------------------------
# preparing descriptor matrices


class Standardizer:
    """Per-feature standardisation z = (x − mean) / scale, fitted on the *training* points.

    ``scale = max(std, floor)`` with ``floor = rel_floor · median(std of the features with std > 0)``.
    Without the floor, a feature that the training set (almost) never exercises — e.g. a
    Behler–Parrinello G2 centred at 0.75 Å, whose training values are ~1e-28 because no training pair
    is that short — would be divided by its ~0 standard deviation, and a test environment with one
    short contact would sit 10²⁰ standard deviations away: every Euclidean distance would be decided
    by that single feature. With the floor such a feature still counts (a value of floor size is one
    unit), but on the scale of the ordinary ones. Features constant in training (std = 0, e.g. the
    columns a PLIP atom of the other species fills) get the floor too; they add nothing between points
    that are all zero there.

    ``fit(X)`` (X: (n_points, n_features)) sets ``mean_``, ``std_``, ``scale_`` (n_features,), ``floor_``
    and ``n_floored_`` (features whose std was below the floor); ``transform(X)`` returns the
    standardised copy (n, n_features), float64.
    """

    def __init__(self, rel_floor: float = 1e-2):
        if not (isinstance(rel_floor, (int, float, np.floating)) and 0 < rel_floor < np.inf):
            raise ValueError(f"rel_floor must be a positive number, got {rel_floor!r}")
        self.rel_floor = float(rel_floor)

    def fit(self, X) -> Standardizer:
        """Learn the mean and scale of each feature.

        Parameters
        ----------
        X : array_like, shape (n_points, n_features)
            The training points (at least 2).

        Returns
        -------
        Standardizer
            self.
        """
        X = _as_points(X, "X")
        if X.shape[0] < 2:
            raise ValueError("standardisation needs at least 2 training points")
        std = X.std(axis=0)
        positive = std[std > 0]
        if positive.size == 0:
            raise ValueError("every feature is constant over the training points: nothing to standardise")
        self.mean_ = X.mean(axis=0)
        self.std_ = std
        self.floor_ = self.rel_floor * float(np.median(positive))
        self.scale_ = np.maximum(std, self.floor_)
        self.n_floored_ = int(np.count_nonzero(std < self.floor_))
        return self

    def transform(self, X) -> np.ndarray:
        """Standardise points with the fitted mean and scale.

        Parameters
        ----------
        X : array_like, shape (n, n_features)
            Any points.

        Returns
        -------
        numpy.ndarray, shape (n, n_features)
            (X − mean_) / scale_, float64.
        """
        if not hasattr(self, "scale_"):
            raise RuntimeError("call fit(train) before transform")
        X = _as_points(X, "X")
        if X.shape[1] != self.scale_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, the standardizer was fitted on {self.scale_.shape[0]}")
        return (X - self.mean_) / self.scale_

    def fit_transform(self, X) -> np.ndarray:
        """:meth:`fit` on X, then :meth:`transform` X.

        Parameters
        ----------
        X : array_like, shape (n_points, n_features)
            The training points.

        Returns
        -------
        numpy.ndarray, shape (n_points, n_features)
        """
        return self.fit(X).transform(X)


@njit(cache=True)
def _unique_kernel(X, tol2):
    n, D = X.shape
    reps = np.empty(n, dtype=np.int64)
    n_reps = 0
    for i in range(n):
        duplicate = False
        for r in range(n_reps):
            j = reps[r]
            d2 = 0.0
            for f in range(D):
                t = X[i, f] - X[j, f]
                d2 += t * t
                if d2 > tol2:
                    break
            if d2 <= tol2:
                duplicate = True
                break
        if not duplicate:
            reps[n_reps] = i
            n_reps += 1
    return reps[:n_reps].copy()


def unique_points(X, tol=1e-8):
    """Indices (ascending, int64) of the points of X (n_points, n_features) kept after dropping
    duplicates: a point is dropped when it lies within Euclidean distance ``tol`` (feature units, ≥ 0)
    of an earlier *kept* point, so each group of duplicates is represented by its first member.

    Symmetry-equivalent atoms of a perfect (or uniformly strained) crystal have the same descriptor up
    to round-off; the TWO-NN estimator (:func:`two_nn_dimension`) divides by the distance to the first
    neighbour and collapses to ~0 when such pairs are present, so deduplicate first. O(n · n_kept · D).

    Parameters
    ----------
    X : array_like, shape (n_points, n_features)
        The points.
    tol : float
        Distance (feature units, ≥ 0) within which two points are duplicates.

    Returns
    -------
    numpy.ndarray of int64
        Indices of the kept points, ascending.
    """
    X = _as_points(X, "X")
    if not (tol >= 0 and np.isfinite(tol)):
        raise ValueError(f"tol must be a finite distance ≥ 0, got {tol!r}")
    return _unique_kernel(X, float(tol) ** 2)


def spread_calibration(spread, error, min_spread=1e-8):
    """Factor α by which the committee spread must be multiplied to match the size of the error.

    Model: each Cartesian component of the error vector of atom a is Gaussian with variance
    (α σ_a)²/3, i.e. E|error_a|² = α² σ_a². The maximum-likelihood α over the atoms is
    α = sqrt(mean(|error_a|² / σ_a²)) (the scaling of committee uncertainties of Musil, Willatt,
    Langovoy, Ceriotti, JCTC 15, 906 (2019), for vector errors). α > 1: the committee is over-confident
    (errors larger than its spread), α < 1: under-confident. ``spread``, ``error``: (n_atoms,) in the
    same unit (eV/Å), as returned by :func:`force_error_vs_spread`; atoms with σ_a ≤ ``min_spread`` (sites
    where every member predicts zero force by symmetry) are left out.

    Parameters
    ----------
    spread, error : array_like, shape (n_atoms,)
        σ_a and |error_a| in the same unit.
    min_spread : float
        Atoms with σ_a at or below this are left out.

    Returns
    -------
    float
        α.
    """
    spread = np.asarray(spread, dtype=np.float64).ravel()
    error = np.asarray(error, dtype=np.float64).ravel()
    if spread.shape != error.shape:
        raise ValueError(f"spread and error must have the same length: {spread.shape} vs {error.shape}")
    if not (np.all(np.isfinite(spread)) and np.all(np.isfinite(error))):
        raise ValueError("spread and error must be finite")
    if np.any(spread < 0) or np.any(error < 0):
        raise ValueError("spread and error are magnitudes and must be ≥ 0")
    use = spread > min_spread
    if not use.any():
        raise ValueError(f"no atom has a spread above min_spread = {min_spread}")
    return float(np.sqrt(np.mean(error[use] ** 2 / spread[use] ** 2)))
