"""Tests of mliplib.transferability: information imbalance (against DADApy and a brute-force NumPy
reference with full rank matrices), convex hull (against Qhull and hand-made cases), k-NN distance,
density and TWO-NN (against brute force, DADApy and uniform data of known density), committee force
spread (a fitted mliplib Committee, committees of genuinely different ASE potentials, and synthetic
committees whose error/spread relation is known).

DADApy needs numpy<2 and runs in its own venv, .venv-peers, created by `make peers` (see tests/peers.py);
without it the DADApy tests fail, unless MLIPLIB_SKIP_PEERS=1 is set to skip them."""

import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.cluster import Octahedron
from scipy.spatial import ConvexHull
from scipy.spatial.distance import cdist
from sklearn.linear_model import Ridge

from mliplib.descriptors import BehlerParrinello
from mliplib.models import Committee, LinearPotential

from mliplib.transferability import (
    force_error_vs_spread,
    force_spread,
    imbalance_with_error,
    in_convex_hull,
    information_imbalance,
    information_imbalance_ranks,
    kth_neighbor_distance,
    knn_density,
    two_nn_dimension,
)

import peers  # tests/peers.py: DADApy runs in its own venv, .venv-peers (`make peers`)

# --------------------------------------------------------------------------------------------------
# brute-force references (full N × N matrices)


def brute_ranks(X_a, X_b, k=1):
    """ranks[i, m]: rank in B (1 = nearest, self excluded) of i's (m+1)-th nearest neighbour in A."""
    DA = cdist(X_a, X_a)
    DB = cdist(X_b, X_b)
    np.fill_diagonal(DA, np.inf)
    np.fill_diagonal(DB, np.inf)
    nn_a = np.argsort(DA, axis=1, kind="stable")[:, :k]
    rank_b = np.argsort(np.argsort(DB, axis=1, kind="stable"), axis=1, kind="stable") + 1
    return np.take_along_axis(rank_b, nn_a, axis=1)


def brute_imbalance(X_a, X_b, k=1):
    N = len(X_a)
    return 2.0 * brute_ranks(X_a, X_b, k).mean() / N, 2.0 * brute_ranks(X_b, X_a, k).mean() / N


def correlated_spaces(rng, N, da, db, shared=2):
    """A and B share `shared` directions (so Δ is neither 0 nor 1), plus independent ones."""
    A = rng.normal(size=(N, da))
    B = np.hstack([A[:, :shared] * rng.uniform(0.5, 2.0, size=shared), rng.normal(size=(N, db - shared))])
    return A, B


CASES = [(300, 3, 5, 1), (400, 10, 2, 1), (250, 6, 6, 4), (500, 2, 7, 10), (200, 1, 3, 2),
         (1000, 60, 40, 3)]  # the last one: descriptor-like dimensions, several blocks per thread


# --------------------------------------------------------------------------------------------------
# information imbalance


@pytest.mark.parametrize("N,da,db,k", CASES)
def test_imbalance_matches_bruteforce(N, da, db, k):
    rng = np.random.default_rng(N + da + db + k)
    A, B = correlated_spaces(rng, N, da, db, shared=min(2, da, db))
    ranks_ab, ranks_ba = information_imbalance_ranks(A, B, k)
    np.testing.assert_array_equal(ranks_ab, brute_ranks(A, B, k))
    np.testing.assert_array_equal(ranks_ba, brute_ranks(B, A, k))
    np.testing.assert_allclose(information_imbalance(A, B, k), brute_imbalance(A, B, k), rtol=0, atol=1e-12)


@pytest.mark.parametrize("N,da,db,k", CASES)
def test_imbalance_matches_dadapy(N, da, db, k):
    rng = np.random.default_rng(N + da + db + k)
    A, B = correlated_spaces(rng, N, da, db, shared=min(2, da, db))
    ours = information_imbalance(A, B, k)
    for api in ("return_inf_imb_two_selected_coords", "return_information_imbalace"):
        ref, _ = peers.dadapy_imbalance(A, B, k, api=api)  # DADApy in .venv-peers, maxk = N − 1
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12, err_msg=api)


@pytest.mark.parametrize("k", [1, 3])
def test_self_imbalance_is_the_floor(k):
    rng = np.random.default_rng(0)
    for N in (50, 400):
        X = rng.normal(size=(N, 5))
        # Δ(X→X) "= 0" exactly means: ranks of the k nearest are 1..k, mean (k+1)/2, so Δ = (k+1)/N
        # (2/N for k = 1), the smallest value possible, → 0 as N grows
        assert information_imbalance(X, X, k) == ((k + 1) / N, (k + 1) / N)
        # a rotated, shifted and uniformly scaled copy has the same distances' order
        Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
        assert information_imbalance(X, 3.0 * X @ Q + 1.0, k) == ((k + 1) / N, (k + 1) / N)


def test_independent_spaces_give_one():
    rng = np.random.default_rng(1)
    N = 1500
    A, B = rng.normal(size=(N, 4)), rng.normal(size=(N, 6))
    # the B-rank of A's neighbour is uniform on 1..N-1: Δ = 1 ± sqrt(1/3N) ≈ 1 ± 0.015
    sigma = math.sqrt(1.0 / (3 * N))
    ab, ba = information_imbalance(A, B)
    assert abs(ab - 1) < 4 * sigma and abs(ba - 1) < 4 * sigma
    res = imbalance_with_error(A, B, n_subsets=5, seed=0)
    assert abs(res.a_to_b - 1) < 4 * res.a_to_b_err + 0.01
    assert 0.005 < res.a_to_b_err < 0.05


def test_subset_of_features_is_asymmetric():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(500, 4))
    B = A[:, :2]  # B's information is contained in A, not vice versa
    ab, ba = information_imbalance(A, B)
    assert ab < 0.15 and ba > 0.4
    ab3, ba3 = information_imbalance(A, B, k=3)
    assert ab3 < 0.2 and ba3 > 0.4


def test_imbalance_is_invariant_to_point_order():
    rng = np.random.default_rng(3)
    A, B = correlated_spaces(rng, 300, 4, 3)
    p = rng.permutation(300)
    assert information_imbalance(A[p], B[p], 2) == pytest.approx(information_imbalance(A, B, 2), abs=1e-14)


def test_tied_distances_share_the_best_rank():
    # in B, points 1 and 2 are both at distance 1 from point 0, and 2 is point 0's neighbour in A:
    # a tied point does not count as closer, so the rank is 1 (an argsort would give 1 or 2)
    A = np.array([[0.0], [5.0], [1.0], [10.0], [20.0]])
    B = np.array([[0.0], [-1.0], [1.0], [2.0], [-2.0]])
    ranks_ab, _ = information_imbalance_ranks(A, B)
    assert ranks_ab[0, 0] == 1
    DA, DB = cdist(A, A), cdist(B, B)
    np.fill_diagonal(DA, np.inf)
    expected = [1 + np.sum(np.delete(DB[i], i) < DB[i, np.argmin(DA[i])]) for i in range(5)]
    np.testing.assert_array_equal(ranks_ab[:, 0], expected)


def test_imbalance_with_error_uses_disjoint_subsets():
    rng = np.random.default_rng(4)
    A, B = correlated_spaces(rng, 600, 3, 3)
    res = imbalance_with_error(A, B, n_subsets=3, subset_size=150, seed=7)
    perm = np.random.default_rng(7).permutation(600)
    for s in range(3):
        sel = np.sort(perm[150 * s:150 * (s + 1)])
        np.testing.assert_allclose(res.samples[s], information_imbalance(A[sel], B[sel]), atol=1e-15)
    assert res.a_to_b == pytest.approx(res.samples[:, 0].mean())
    assert res.b_to_a_err == pytest.approx(res.samples[:, 1].std(ddof=1) / math.sqrt(3))
    one = imbalance_with_error(A, B, n_subsets=1)
    assert one.a_to_b == information_imbalance(A, B)[0] and math.isnan(one.a_to_b_err)
    with pytest.raises(ValueError, match="disjoint"):
        imbalance_with_error(A, B, n_subsets=4, subset_size=200)


def test_imbalance_input_errors():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match="same points"):
        information_imbalance(A, A[:10])
    bad = A.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        information_imbalance(A, bad)
    with pytest.raises(ValueError, match="k"):
        information_imbalance(A, A, k=20)
    with pytest.raises(ValueError, match="k"):
        information_imbalance(A, A, k=0)
    # a 1-D array is N points with one feature
    x = rng.normal(size=20)
    assert information_imbalance(x, x[:, None]) == (2 / 20, 2 / 20)


# --------------------------------------------------------------------------------------------------
# convex hull


def test_convex_hull_triangle():
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    test = np.array([[0.2, 0.2], [0.5, 0.5],  # inside, on the hypotenuse
                     [0.6, 0.6], [-1e-3, 0.5], [2.0, -1.0],  # outside
                     [0.0, 0.0], [0.0, 1.0]])  # vertices
    np.testing.assert_array_equal(in_convex_hull(tri, test), [True, True, False, False, False, True, True])


def test_convex_hull_cube_3d():
    rng = np.random.default_rng(6)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    train = np.vstack([corners, rng.uniform(size=(30, 3))])
    inside = rng.uniform(0.01, 0.99, size=(20, 3))
    outside = rng.uniform(size=(20, 3))
    outside[np.arange(20), rng.integers(0, 3, 20)] = rng.choice([-0.2, 1.3], size=20)
    test = np.vstack([inside, outside, corners[[0, 7]], [[0.5, 0.5, 1.0]]])  # + 2 vertices, a face centre
    np.testing.assert_array_equal(in_convex_hull(train, test), [True] * 20 + [False] * 20 + [True] * 3)
    # a point inside the bounding box of train but outside the hull: needs the LP
    tetra = corners[[0, 1, 2, 4]]
    np.testing.assert_array_equal(in_convex_hull(tetra, [[0.4, 0.4, 0.4], [0.2, 0.2, 0.2]]), [False, True])


def test_convex_hull_pca_and_high_dimension():
    rng = np.random.default_rng(7)
    # a thin slab: square in x-y, ±0.01 in z; the test point is far off the slab but above the square
    train = np.column_stack([rng.uniform(size=(200, 2)), 0.01 * rng.uniform(-1, 1, size=200)])
    test = np.array([[0.5, 0.5, 1.0], [1.5, 0.5, 0.0]])
    np.testing.assert_array_equal(in_convex_hull(train, test), [False, False])
    np.testing.assert_array_equal(in_convex_hull(train, test, n_components=2), [True, False])
    # Zeni et al. (2022): in high dimension new points from the same distribution are outside the hull
    train, test = rng.normal(size=(300, 30)), rng.normal(size=(20, 30))
    assert not in_convex_hull(train, test).any()
    assert in_convex_hull(train, test, n_components=2).mean() > 0.8


@pytest.mark.parametrize("dim", [2, 4])
def test_convex_hull_matches_qhull(dim):
    rng = np.random.default_rng(20 + dim)
    train = rng.normal(size=(80, dim))
    test = 1.3 * rng.normal(size=(300, dim))
    hull = ConvexHull(train)  # facets n·x + c ≤ 0 inside (Qhull)
    signed = np.max(test @ hull.equations[:, :-1].T + hull.equations[:, -1], axis=1)
    clear = np.abs(signed) > 1e-6  # leave out points within the LP tolerance of a facet (none expected)
    assert clear.sum() > 290 and 0.2 < np.mean(signed < 0) < 0.8
    np.testing.assert_array_equal(in_convex_hull(train, test[clear]), signed[clear] < 0)


def test_convex_hull_errors():
    train = np.random.default_rng(8).normal(size=(10, 3))
    with pytest.raises(ValueError, match="features"):
        in_convex_hull(train, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        in_convex_hull(train, [[0.0, np.nan, 0.0]])
    with pytest.raises(ValueError, match="n_components"):
        in_convex_hull(train, np.zeros((2, 3)), n_components=5)
    with pytest.raises(ValueError, match="tol"):
        in_convex_hull(train, np.zeros((2, 3)), tol=0.0)


# --------------------------------------------------------------------------------------------------
# k-NN distance, density, intrinsic dimension


def test_kth_neighbor_distance_matches_bruteforce():
    rng = np.random.default_rng(9)
    train, test = rng.normal(size=(400, 6)), rng.normal(size=(150, 6))
    D = cdist(test, train)
    for k in (1, 7):
        np.testing.assert_allclose(kth_neighbor_distance(train, test, k), np.sort(D, axis=1)[:, k - 1], rtol=1e-12)
    d, j = kth_neighbor_distance(train, test, 3, return_index=True)
    np.testing.assert_allclose(np.linalg.norm(test - train[j], axis=1), d, rtol=1e-12)
    # test = train: self-matches excluded by default (test None, the same object, or an equal copy)
    Dtt = cdist(train, train)
    np.fill_diagonal(Dtt, np.inf)
    ref = np.sort(Dtt, axis=1)[:, 1]
    for t in (None, train, train.copy()):
        np.testing.assert_allclose(kth_neighbor_distance(train, t, k=2), ref, rtol=1e-12)
    assert np.all(kth_neighbor_distance(train, train, k=1, exclude_self=False) == 0.0)
    with pytest.raises(ValueError, match="same rows"):
        kth_neighbor_distance(train, test, exclude_self=True)
    with pytest.raises(ValueError, match="k"):
        kth_neighbor_distance(train, k=400)


@pytest.mark.parametrize("d", [2, 5, 8])
def test_two_nn_recovers_dimension_of_embedded_gaussian(d):
    rng = np.random.default_rng(10 + d)
    Q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    X = rng.normal(size=(2000, d)) @ Q[:d]  # a d-dim Gaussian in 20 dimensions
    assert two_nn_dimension(X) == pytest.approx(d, rel=0.1)
    assert two_nn_dimension(X, method="ml") == pytest.approx(d, rel=0.1)


def test_knn_density_of_uniform_points():
    rng = np.random.default_rng(11)
    N, k = 20000, 20
    for d in (2, 3):
        X = rng.uniform(size=(N, d))
        T = rng.uniform(0.25, 0.75, size=(300, d))  # away from the boundary
        log_rho = knn_density(X, T, k=k, dimension=d)
        # probability density of the unit cube is 1 (number density N)
        assert abs(np.median(log_rho)) < 0.1
        # TWO-NN dimension (≈ d) instead of the true one: still the right order of magnitude
        assert abs(np.median(knn_density(X, T, k=k))) < 0.5
    # cubes of side 1 and 2 in 2-D: densities 1 and 1/4
    X1, X2 = rng.uniform(size=(10000, 2)), rng.uniform(0, 2, size=(10000, 2))
    l1 = np.median(knn_density(X1, rng.uniform(0.3, 0.7, size=(300, 2)), k=k, dimension=2))
    l2 = np.median(knn_density(X2, rng.uniform(0.6, 1.4, size=(300, 2)), k=k, dimension=2))
    assert l1 - l2 == pytest.approx(math.log(4), abs=0.1)


def test_knn_density_formula_and_self_exclusion():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(300, 3))
    r = kth_neighbor_distance(X, k=5)  # self excluded: N − 1 neighbours available
    vol = math.pi ** 1.5 / math.gamma(2.5)
    np.testing.assert_allclose(knn_density(X, k=5, dimension=3), np.log(5 / (299 * vol * r ** 3)), rtol=1e-12)
    T = rng.normal(size=(10, 3))
    r = kth_neighbor_distance(X, T, k=5)
    np.testing.assert_allclose(knn_density(X, T, k=5, dimension=3), np.log(5 / (300 * vol * r ** 3)), rtol=1e-12)
    with pytest.raises(ValueError, match="dimension"):
        knn_density(X, T, dimension=0)


@pytest.mark.parametrize("algorithm", ["base", "ml"])
def test_two_nn_matches_dadapy(algorithm):
    rng = np.random.default_rng(13)
    X = rng.normal(size=(1500, 4)) @ rng.normal(size=(4, 12))
    ref = peers.dadapy_two_nn(X, algorithm=algorithm, mu_fraction=0.9, maxk=5)
    ours = two_nn_dimension(X, fraction=0.9, method="fit" if algorithm == "base" else "ml")
    assert ours == pytest.approx(ref, rel=1e-7)  # DADApy fits with curve_fit; ours is the closed form
    assert ours == pytest.approx(4, rel=0.1)


def test_knn_density_matches_dadapy():
    rng = np.random.default_rng(14)
    N, k, d = 1000, 8, 3
    X = rng.normal(size=(N, d))
    ref = peers.dadapy_knn_density(X, k=k, dimension=d, maxk=20)
    # the same estimator on train itself; DADApy normalises by N, we by the N − 1 possible neighbours
    np.testing.assert_allclose(knn_density(X, k=k, dimension=d), ref + math.log(N / (N - 1)), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# committee force spread


class CalculatorModel:
    """Minimal model interface (``predict(atoms) -> {"energy", "forces"}``) around an ASE calculator."""

    def __init__(self, calc):
        self.calc = calc

    def predict(self, atoms):
        a = atoms.copy()
        a.calc = self.calc
        return {"energy": a.get_potential_energy(), "forces": a.get_forces()}


class NoisyModel:
    """Reference forces plus Gaussian noise of per-atom size ``scale`` (n_atoms,), drawn per member
    (``seed``) and per structure (``info["frame"]``), plus an optional ``bias`` shared by all members."""

    def __init__(self, scale, seed, bias=None):
        self.scale, self.seed, self.bias = scale, seed, bias

    def predict(self, atoms):
        rng = np.random.default_rng([self.seed, atoms.info["frame"]])
        F = atoms.arrays["forces"] + self.scale[:, None] * rng.normal(size=(len(atoms), 3))
        if self.bias is not None:
            F = F + self.bias
        return {"forces": F}


def lj(sigma, epsilon):
    return LennardJones(sigma=sigma, epsilon=epsilon, rc=6.0, smooth=True)


@pytest.fixture(scope="module")
def cluster():
    atoms = Octahedron("Cu", 4)
    atoms.rattle(0.05, seed=1)
    return atoms


def emt_labelled(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    atoms.info["energy"] = atoms.get_potential_energy()
    atoms.arrays["forces"] = atoms.get_forces()
    atoms.calc = None
    return atoms


@pytest.fixture(scope="module")
def cu_committee():
    """A real mliplib Committee: linear BP potentials for Cu fitted to EMT on different subsamples."""
    descriptor = BehlerParrinello(["Cu"], 4.5, g2=[(0.5, 0.0), (1.0, 2.5), (1.0, 3.0), (1.0, 3.6), (0.5, 4.2)],
                                  g4=[(0.05, 1, 1), (0.05, 1, -1)])
    frames = []
    for seed in range(8):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.rattle(0.08, seed=seed)
        frames.append(emt_labelled(atoms))
    return Committee.of(LinearPotential(descriptor, Ridge(alpha=1e-4)), 4, subsample=0.5).fit(frames)


def test_force_spread_of_identical_members_is_zero(cluster):
    sigma = force_spread([CalculatorModel(lj(2.3, 0.4)) for _ in range(3)], cluster)
    assert sigma.shape == (len(cluster),)
    assert np.all(sigma == 0.0)


def test_force_spread_of_an_mliplib_committee(cu_committee, cluster):
    sigma = force_spread(cu_committee, cluster)
    F = np.array([m.predict(cluster)["forces"] for m in cu_committee.members_])
    hand = np.sqrt(np.mean(np.sum((F - F.mean(axis=0)) ** 2, axis=2), axis=0))
    assert hand.max() > 1e-3  # members fitted on different subsamples really differ
    np.testing.assert_allclose(sigma, hand, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sigma, cu_committee.predict(cluster)["forces_spread"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(force_spread(cu_committee.members_, cluster), hand, rtol=1e-9, atol=1e-12)


def test_force_spread_matches_hand_computation(cluster):
    members = [CalculatorModel(EMT()), CalculatorModel(lj(2.3, 0.4)), CalculatorModel(lj(2.2, 0.5))]
    F = [m.predict(cluster)["forces"] for m in members]
    hand = np.empty(len(cluster))
    for a in range(len(cluster)):
        mean = [(F[0][a, c] + F[1][a, c] + F[2][a, c]) / 3 for c in range(3)]
        hand[a] = math.sqrt(sum((F[m][a, c] - mean[c]) ** 2 for m in range(3) for c in range(3)) / 3)
    assert hand.max() > 0.1  # the potentials really differ
    np.testing.assert_allclose(force_spread(members, cluster), hand, rtol=1e-12)  # a list of models
    np.testing.assert_allclose(force_spread(np.array(F)), hand, rtol=1e-12)  # (M, n_atoms, 3) forces
    np.testing.assert_allclose(force_spread(F, cluster), hand, rtol=1e-12)
    # ASE calculators as members directly
    np.testing.assert_allclose(force_spread([EMT(), lj(2.3, 0.4), lj(2.2, 0.5)], cluster), hand, rtol=1e-12)
    # two members: σ = |F1 − F2| / 2
    two = force_spread(members[:2], cluster)
    np.testing.assert_allclose(two, np.linalg.norm(F[0] - F[1], axis=1) / 2, rtol=1e-12)
    # a list of structures gives a list of arrays
    other = cluster.copy()
    other.rattle(0.05, seed=2)
    out = force_spread(members, [cluster, other])
    assert len(out) == 2
    np.testing.assert_allclose(out[0], hand, rtol=1e-12)


def test_force_spread_errors(cluster):
    with pytest.raises(ValueError, match="shape"):
        force_spread(np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="atoms"):
        force_spread([CalculatorModel(EMT())], None)
    with pytest.raises(ValueError, match="atoms"):
        force_spread(np.zeros((2, 5, 3)), cluster)
    with pytest.raises(TypeError, match="not a committee"):
        force_spread(CalculatorModel(EMT()), cluster)


def test_force_error_vs_spread_of_an_mliplib_committee(cu_committee):
    structures = []
    for seed, amplitude in enumerate([0.05, 0.1, 0.2]):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.rattle(amplitude, seed=100 + seed)
        structures.append(emt_labelled(atoms))
    out = force_error_vs_spread(cu_committee, structures)  # reference: arrays["forces"]
    n = sum(len(a) for a in structures)
    assert out["spread"].shape == out["error"].shape == (n,)
    pred = cu_committee.predict(structures[2])
    np.testing.assert_allclose(out["error"][-len(structures[2]):],
                               np.linalg.norm(pred["forces"] - structures[2].arrays["forces"], axis=1), rtol=1e-12)
    np.testing.assert_allclose(out["spread"][-len(structures[2]):], pred["forces_spread"], rtol=1e-12)
    # the same with explicit reference forces and with a calculator holding them
    explicit = force_error_vs_spread(cu_committee, structures, [a.arrays["forces"] for a in structures])
    np.testing.assert_array_equal(explicit["error"], out["error"])
    with pytest.raises(ValueError, match="reference forces"):
        force_error_vs_spread(cu_committee, bulk("Cu", "fcc", a=3.6, cubic=True))


def test_spearman_of_spread_and_error(cluster):
    """Members = truth + noise of a known per-atom size s_a: both σ_a and the error of the committee
    mean scale with s_a, so their rank correlation is strong; a bias shared by all members is an error
    the committee cannot see, so there the correlation vanishes."""
    structures = []
    for frame in range(3):
        a = cluster.copy()
        a.rattle(0.1, seed=10 + frame)
        a.info["frame"] = frame
        structures.append(emt_labelled(a))
    n_atoms = len(cluster)
    rng = np.random.default_rng(15)
    scale = np.exp(rng.uniform(np.log(0.01), np.log(1.0), n_atoms))  # eV/Å, two decades
    informative = [NoisyModel(scale, seed) for seed in range(8)]
    out = force_error_vs_spread(informative, structures)
    assert out["spearman"].statistic > 0.7 and out["spearman"].pvalue < 1e-10
    # E[σ_a²] = 3 s_a² (M − 1)/M for M members with independent N(0, s_a²) components: the scale, too
    assert np.median(out["spread"] / np.tile(scale, 3)) == pytest.approx(math.sqrt(3 * 7 / 8), rel=0.1)
    bias = rng.normal(size=(n_atoms, 3))  # the same error for every member
    blind = [NoisyModel(np.full(n_atoms, 0.05), seed, bias=bias) for seed in range(8)]
    out = force_error_vs_spread(blind, structures)
    assert abs(out["spearman"].statistic) < 0.3  # ≈ 3.5 standard deviations of ρ for 132 unrelated pairs
    assert np.median(out["error"]) > 10 * np.median(out["spread"])
