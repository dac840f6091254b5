"""Tests of the helpers that prepare descriptor matrices and committee spreads for the transferability
statistics: Standardizer (floor on the scale), unique_points (duplicates before TWO-NN) and
spread_calibration (maximum-likelihood scale of the committee spread)."""

import math

import numpy as np
import pytest

from mliplib.transferability import Standardizer, spread_calibration, two_nn_dimension, unique_points


def test_standardizer_ordinary_features_are_z_scores():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[1.0, -3.0, 10.0], scale=[0.5, 2.0, 4.0], size=(500, 3))
    s = Standardizer().fit(X)
    Z = s.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-12)
    assert s.n_floored_ == 0
    np.testing.assert_array_equal(s.fit_transform(X), Z)


def test_standardizer_floors_features_the_training_set_does_not_exercise():
    """A G2-like feature that is ~1e-28 in training (no short contact) and 1e-3 in a test point must
    not put that point 1e25 standard deviations away."""
    rng = np.random.default_rng(1)
    normal = rng.normal(scale=[1.0, 2.0, 3.0], size=(200, 3))
    tiny = 1e-28 * rng.uniform(size=(200, 1))
    constant = np.zeros((200, 1))
    X = np.hstack([normal, tiny, constant])
    s = Standardizer(rel_floor=1e-2).fit(X)
    median_std = np.median(X[:, :4].std(axis=0))  # features with std > 0: the constant column is not counted
    assert s.floor_ == pytest.approx(1e-2 * median_std, rel=1e-12)
    assert s.n_floored_ == 2
    np.testing.assert_allclose(s.scale_[3:], s.floor_)
    test = np.array([[0.0, 0.0, 0.0, 1e-3, 0.0]])
    z = s.transform(test)[0]
    assert z[3] == pytest.approx((1e-3 - X[:, 3].mean()) / s.floor_)
    assert 0.01 < abs(z[3]) < 1.0  # finite and of ordinary size
    # a larger floor shrinks it further; without a floor (tiny rel_floor) it explodes
    assert abs(Standardizer(rel_floor=1e-20).fit(X).transform(test)[0, 3]) > 1e10


def test_standardizer_errors():
    with pytest.raises(ValueError, match="rel_floor"):
        Standardizer(rel_floor=0.0)
    with pytest.raises(ValueError, match="rel_floor"):
        Standardizer(rel_floor=-1)
    with pytest.raises(ValueError, match="constant"):
        Standardizer().fit(np.ones((5, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        Standardizer().fit(np.ones((1, 3)))
    with pytest.raises(RuntimeError, match="fit"):
        Standardizer().transform(np.ones((2, 3)))
    s = Standardizer().fit(np.random.default_rng(2).normal(size=(10, 3)))
    with pytest.raises(ValueError, match="features"):
        s.transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        s.transform([[0.0, np.nan, 1.0]])


def test_unique_points_keeps_the_first_of_each_group():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1e-12], [1.0, 1e-9], [5.0, 5.0], [0.0, 0.0]])
    np.testing.assert_array_equal(unique_points(X), [0, 1, 4])
    np.testing.assert_array_equal(unique_points(X, tol=0.0), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(unique_points(X, tol=2.0), [0, 4])
    with pytest.raises(ValueError, match="tol"):
        unique_points(X, tol=-1.0)


def test_unique_points_matches_brute_force():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(60, 7))
    X = np.vstack([base, base[:25] + 1e-10 * rng.normal(size=(25, 7))])[rng.permutation(85)]
    keep = unique_points(X, tol=1e-6)
    assert len(keep) == 60
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    for i in range(len(X)):  # every dropped point has an earlier kept twin; kept points have none
        earlier = [j for j in keep if j < i]
        near = [j for j in earlier if D[i, j] <= 1e-6]
        assert (i in keep) == (len(near) == 0)


def test_two_nn_needs_deduplicated_points():
    """Symmetry-equivalent copies (distance ~1e-13) make r2/r1 huge and TWO-NN collapse to ~0;
    after unique_points it recovers the dimension."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(800, 3)) @ rng.normal(size=(3, 10))
    copies = X[:300] + 1e-13 * rng.normal(size=(300, 10))
    both = np.vstack([X, copies])
    assert two_nn_dimension(both) < 1.0
    assert two_nn_dimension(both[unique_points(both, tol=1e-8)]) == pytest.approx(3, rel=0.15)


def test_spread_calibration_recovers_a_known_scale():
    rng = np.random.default_rng(5)
    n = 20000
    sigma = np.exp(rng.uniform(np.log(0.01), np.log(1.0), n))  # eV/Å
    for alpha in (0.5, 1.0, 3.0):
        components = rng.normal(size=(n, 3)) * (alpha * sigma / math.sqrt(3))[:, None]
        error = np.linalg.norm(components, axis=1)
        assert spread_calibration(sigma, error) == pytest.approx(alpha, rel=0.02)
    # symmetric sites (σ = 0, error ~0) are ignored rather than dividing by zero
    with_zeros = spread_calibration(np.append(sigma, [0.0, 0.0]), np.append(error, [1e-5, 0.0]))
    assert with_zeros == pytest.approx(spread_calibration(sigma, error), rel=1e-12)


def test_spread_calibration_errors():
    with pytest.raises(ValueError, match="same length"):
        spread_calibration([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="no atom"):
        spread_calibration([0.0, 0.0], [0.1, 0.2])
    with pytest.raises(ValueError, match="≥ 0"):
        spread_calibration([0.1, -0.2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        spread_calibration([0.1, np.nan], [0.1, 0.2])


def test_in_convex_hull_by_components_matches_separate_calls():
    from mliplib.transferability import in_convex_hull, in_convex_hull_by_components
    rng = np.random.default_rng(6)
    train = rng.normal(size=(120, 8)) * np.linspace(3, 0.5, 8)
    test = 1.2 * rng.normal(size=(60, 8)) * np.linspace(3, 0.5, 8)
    ks = [5, 2, None, 3]
    nested = in_convex_hull_by_components(train, test, ks)
    assert list(nested) == ks
    for k in ks:
        np.testing.assert_array_equal(nested[k], in_convex_hull(train, test, n_components=k))
    assert nested[2].sum() > nested[5].sum() >= nested[None].sum()
    with pytest.raises(ValueError, match="empty"):
        in_convex_hull_by_components(train, test, [])
