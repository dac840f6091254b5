"""Behler–Parrinello symmetry functions: DScribe ACSF agreement, analytic gradients, invariances, errors."""

import json
import math

import numpy as np
import pytest
from ase import Atoms
from descriptor_reference import BP_MIXED as MIXED
from finite_differences import check_forces_and_virial, energy
from structures import cluster, rocksalt, skewed, wurtzite

from mliplib.descriptors import BehlerParrinello, bp
from mliplib.descriptors.base import descriptor_from_dict
from mliplib.neighbors import neighbor_list


def mixed(**kw):
    return BehlerParrinello(**{**MIXED, **kw})


DESCRIPTORS = {"default_zno": BehlerParrinello.default_zno, "mixed": mixed}
STRUCTURES = {"wurtzite": wurtzite, "rocksalt": rocksalt, "skewed": skewed, "cluster": cluster}


def dscribe_values(desc, atoms):
    from dscribe.descriptors import ACSF
    return ACSF(periodic=bool(atoms.pbc.any()), **desc.dscribe_kwargs()).create(atoms)


def assert_rel(actual, expected, rtol):
    """Entry-by-entry relative agreement (every BP term is ≥ 0, so sums never cancel)."""
    assert actual.shape == expected.shape
    assert np.all(expected >= 0) and np.all(actual >= 0)
    err = np.abs(actual - expected) / np.where(expected > 0, expected, 1.0)
    assert err.max() < rtol, (err.max(), np.unravel_index(err.argmax(), err.shape))


# ------------------------------------------------------------------------------------------------
# values: DScribe ACSF number for number
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(DESCRIPTORS))
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_matches_dscribe(kind, name):
    pytest.importorskip("dscribe")
    desc = DESCRIPTORS[kind]()
    atoms = STRUCTURES[name]()
    G = desc.compute(atoms)
    assert G.shape == (len(atoms), desc.n_features) and G.dtype == np.float64
    G = desc.to_dscribe_order(G)
    ref = dscribe_values(desc, atoms)
    assert np.count_nonzero(ref) > 0.5 * ref.size  # a comparison of zeros proves nothing
    # DScribe does not clamp cos θ: for an atom and its two opposite images (cos θ = −1 − ε) it takes a
    # non-integer power of 1 + cos θ < 0 and returns NaN. Only there may it differ; ours stays finite.
    nan = np.isnan(ref)
    zeta = {name: name.split("zeta=")[1].split(",")[0] for name in desc.feature_names if "zeta=" in name}
    assert all(not float(zeta.get(desc.feature_names[f], "1")).is_integer() for f in np.flatnonzero(nan.any(axis=0)))
    assert np.all(np.isfinite(G))
    assert_rel(np.where(nan, 0.0, G), np.where(nan, 0.0, ref), 1e-10)


def test_matches_dscribe_three_species_and_g1_only():
    """Species-pair block order with three elements (one absent from the cell), and the bare G1 set."""
    pytest.importorskip("dscribe")
    atoms = cluster()
    atoms.symbols[[1, 4]] = "H"
    for desc in (mixed(species=["Zn", "O", "H", "Li"]), BehlerParrinello(["O", "Zn", "H"], 5.0)):
        G = desc.compute(atoms)
        assert_rel(desc.to_dscribe_order(G), dscribe_values(desc, atoms), 1e-10)
    assert BehlerParrinello(["O", "Zn", "H"], 5.0).feature_names == ["G1[H]", "G1[O]", "G1[Zn]"]


def test_brute_force_g4_g5_single_triplet():
    """One centre, two neighbours: G4 and G5 from the formulas, independently of DScribe."""
    rc = 4.5
    atoms = Atoms("ZnOO", positions=[[0, 0, 0], [1.9, 0.3, -0.2], [-0.6, 2.1, 0.4]])
    desc = mixed()
    G = desc.compute(atoms)[0]
    rij, rik = atoms.positions[1], atoms.positions[2]
    a, b, c = np.linalg.norm(rij), np.linalg.norm(rik), np.linalg.norm(rik - rij)
    cos = rij @ rik / (a * b)

    def fc(r):
        return 0.5 * (np.cos(np.pi * r / rc) + 1) if r < rc else 0.0

    for eta, zeta, lam in MIXED["g4"]:
        expect = (2 ** (1 - zeta) * (1 + lam * cos) ** zeta * np.exp(-eta * (a * a + b * b + c * c))
                  * fc(a) * fc(b) * fc(c))
        name = f"G4[O-O](eta={bp._fmt(eta)},zeta={bp._fmt(zeta)},lambda={lam:+d})"
        assert G[desc.feature_names.index(name)] == pytest.approx(expect, rel=1e-12)
    for eta, zeta, lam in MIXED["g5"]:
        expect = 2 ** (1 - zeta) * (1 + lam * cos) ** zeta * np.exp(-eta * (a * a + b * b)) * fc(a) * fc(b)
        name = f"G5[O-O](eta={bp._fmt(eta)},zeta={bp._fmt(zeta)},lambda={lam:+d})"
        assert G[desc.feature_names.index(name)] == pytest.approx(expect, rel=1e-12)
    for eta, rs in MIXED["g2"]:
        expect = sum(np.exp(-eta * (r - rs) ** 2) * fc(r) for r in (a, b))
        name = f"G2[O](eta={bp._fmt(eta)},rs={bp._fmt(rs)})"
        assert G[desc.feature_names.index(name)] == pytest.approx(expect, rel=1e-12)
    assert G[desc.feature_names.index("G1[O]")] == pytest.approx(fc(a) + fc(b), rel=1e-12)
    assert G[desc.feature_names.index("G1[Zn]")] == 0.0
    # G4 drops the triplet once r_jk ≥ rc, G5 does not
    apart = Atoms("ZnOO", positions=[[0, 0, 0], [2.4, 0, 0], [-2.4, 0.1, 0]])
    G = desc.compute(apart)[0]
    g4 = [k for k, n in enumerate(desc.feature_names) if n.startswith("G4[O-O]")]
    g5 = [k for k, n in enumerate(desc.feature_names) if n.startswith("G5[O-O]")]
    assert np.all(G[g4] == 0.0) and np.all(G[g5] > 0.0)


def test_polynomial_kernels_match_libm():
    x = np.concatenate([np.linspace(-745.0, 0.0, 20001), -np.logspace(-12, 2, 2001)])
    e = np.array([bp._exp_nonpos(v, bp._EXP_C, bp._POW2) for v in x])
    ref = np.exp(x)
    normal = ref > 1e-300
    assert np.max(np.abs(e - ref)[normal] / np.spacing(ref[normal])) <= 1.0
    assert np.max(np.abs(e[~normal] - ref[~normal])) < 1e-300
    for rc in (4.5, 6.0):
        k = math.pi / rc
        r = np.linspace(0.0, rc, 20001)
        fc = np.array([bp._fc_poly(v, k, bp._SIN_C) for v in r])
        dfc = np.array([bp._dfc_poly(v, k, bp._COS_C) for v in r])
        np.testing.assert_allclose(fc, 0.5 * (np.cos(k * r) + 1), rtol=0, atol=3e-16)
        np.testing.assert_allclose(dfc, -0.5 * k * np.sin(k * r), rtol=0, atol=3e-16)


# ------------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------------

def weights(desc, atoms, seed):
    """A random dE/dG scaled so every column contributes comparably."""
    G = desc.compute(atoms)
    return np.random.default_rng(seed).normal(size=G.shape) / np.maximum(1e-3, np.abs(G).max(axis=0))


@pytest.mark.parametrize("kind", list(DESCRIPTORS))
@pytest.mark.parametrize("name", ["wurtzite", "skewed", "cluster"])
def test_forces_and_virial_vs_finite_differences(kind, name):
    desc = DESCRIPTORS[kind]()
    atoms = STRUCTURES[name]()
    w = weights(desc, atoms, 7)
    G, grads = desc.compute(atoms, gradients=True)
    np.testing.assert_array_equal(G, desc.compute(atoms))
    assert grads.values.shape == (len(grads.i), desc.n_features, 3)
    check_forces_and_virial(desc, atoms, w, grads)


def test_gradient_rows_match_finite_differences_of_pair_vectors():
    """values[p] = ∂G_i/∂r_ij for single pairs, checked column by column by moving atom j."""
    atoms = cluster()
    desc = mixed()
    _, grads = desc.compute(atoms, gradients=True)
    h = 1e-5
    for p in (0, 7, len(grads.i) - 1):
        i, j = grads.i[p], grads.j[p]
        for x in range(3):
            rows = []
            for sign in (1, -1):
                at = atoms.copy()
                at.positions[j, x] += sign * h  # in a cluster, r_ij is the only vector of centre i that moves
                rows.append(desc.compute(at)[i])
            fd = (rows[0] - rows[1]) / (2 * h)
            np.testing.assert_allclose(grads.values[p, :, x], fd, rtol=1e-6, atol=1e-8 * max(1, np.abs(fd).max()))


def test_collinear_and_right_angle_triplets():
    """cos θ = ±1 and 0 (present in every crystal): finite gradients that match finite differences."""
    desc = mixed()
    atoms = Atoms("ZnOOO", positions=[[0, 0, 0], [2.0, 0, 0], [-2.1, 0, 0], [0, 1.95, 0]])
    w = weights(desc, atoms, 9)
    _, grads = desc.compute(atoms, gradients=True)
    assert np.all(np.isfinite(grads.values))
    h = 1e-6
    for a, x in ((1, 0), (1, 1), (3, 0), (3, 2)):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[a, x] += h
        minus.positions[a, x] -= h
        fd = -(energy(desc, plus, w) - energy(desc, minus, w)) / (2 * h)
        assert grads.forces(w)[a, x] == pytest.approx(fd, rel=1e-5, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# invariances, supercells, neighbour lists
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["wurtzite", "skewed"])
def test_rotation_translation_permutation(name):
    atoms = STRUCTURES[name]()
    desc = BehlerParrinello.default_zno()
    G = desc.compute(atoms)
    q, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ q.T)
    rot.positions = atoms.positions @ q.T
    np.testing.assert_allclose(desc.compute(rot), G, rtol=1e-10, atol=1e-12)
    moved = atoms.copy()
    moved.positions += [0.37, -1.2, 5.1]
    np.testing.assert_allclose(desc.compute(moved), G, rtol=1e-10, atol=1e-12)
    perm = np.random.default_rng(5).permutation(len(atoms))
    np.testing.assert_allclose(desc.compute(atoms[perm]), G[perm], rtol=1e-12, atol=1e-14)
    # swapping the positions of two like atoms swaps their rows
    zn = np.flatnonzero(atoms.numbers == 30)[:2]
    swapped = atoms.copy()
    swapped.positions[zn] = atoms.positions[zn[::-1]]
    np.testing.assert_allclose(desc.compute(swapped)[zn], G[zn[::-1]], rtol=1e-12, atol=1e-14)
    # but swapping unlike atoms changes the environments
    o = np.flatnonzero(atoms.numbers == 8)[0]
    unlike = atoms.copy()
    unlike.positions[[zn[0], o]] = atoms.positions[[o, zn[0]]]
    assert np.abs(desc.compute(unlike) - G).max() > 1e-3


@pytest.mark.parametrize("name", ["wurtzite", "skewed"])
def test_supercell_consistency(name):
    atoms = STRUCTURES[name]()
    desc = mixed()
    G, grads = desc.compute(atoms, gradients=True)
    big = atoms.repeat((2, 2, 2))
    Gb, gb = desc.compute(big, gradients=True)
    np.testing.assert_allclose(Gb, np.tile(G, (8, 1)), rtol=1e-10, atol=1e-14)
    w = weights(desc, atoms, 8)
    wb = np.tile(w, (8, 1))
    np.testing.assert_allclose(gb.forces(wb), np.tile(grads.forces(w), (8, 1)), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(gb.virial(wb), 8 * grads.virial(w), rtol=1e-9, atol=1e-11)


def test_longer_neighbour_list_same_results():
    """A list with a longer cutoff (an MD skin) gives the same values, gradients and forces."""
    atoms = wurtzite()
    desc = mixed()
    G, grads = desc.compute(atoms, gradients=True)
    wide = neighbor_list(atoms, desc.cutoff + 1.3)
    Gw, gw = desc.compute(atoms, gradients=True, neighbors=wide)
    np.testing.assert_allclose(Gw, G, rtol=1e-12, atol=1e-14)
    assert len(gw.i) == len(grads.i) < len(wide.i)  # pairs beyond the cutoff are dropped
    w = weights(desc, atoms, 3)
    np.testing.assert_allclose(gw.forces(w), grads.forces(w), rtol=1e-12, atol=1e-12)
    f1, v1 = desc.forces_and_virial(atoms, w)
    f2, v2 = desc.forces_and_virial(atoms, w, neighbors=wide)
    np.testing.assert_allclose(f2, f1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v2, v1, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# parameters, names, serialisation
# ------------------------------------------------------------------------------------------------

def test_default_zno():
    desc = BehlerParrinello.default_zno()
    assert desc.cutoff == 6.0 and desc.species == ["O", "Zn"] and not desc.centre_resolved
    # one weight vector per centre element sees all n_features functions
    assert 20 <= desc.n_features <= 40
    assert len(set(desc.feature_names)) == desc.n_features
    kw = desc.dscribe_kwargs()
    assert kw["r_cut"] == 6.0 and kw["species"] == ["O", "Zn"]
    n_radial = len(kw["g2_params"])
    n_angular = len(kw.get("g4_params", [])) + len(kw.get("g5_params", []))
    assert desc.n_features == 2 * (1 + n_radial) + 3 * n_angular
    # the G2 centres cover the first shells of ZnO (Zn–O ≈ 2 Å, Zn–Zn ≈ 3.2 Å) and stay inside rc
    rs = np.array([r for _, r in kw["g2_params"]])
    assert rs.min() < 1.0 and rs.max() < 6.0 and np.any(np.abs(rs - 2.0) < 0.3)
    # no dead functions: every column is used in wurtzite, or (the narrow short-range G2 meant to
    # teach repulsion) in close contacts down to 0.75 Å
    close = Atoms("ZnOZnZnOO", positions=[[0, 0, 0], [0.8, 0, 0], [0, 3.0, 0], [0.75, 3.2, 0], [0, 6.5, 0],
                                          [0.75, 6.6, 0.2]])
    G = np.concatenate([desc.compute(wurtzite()), desc.compute(close)])
    assert np.all(G.max(axis=0) > 1e-3)


def test_feature_layout():
    desc = mixed()
    n2, n4, n5 = len(MIXED["g2"]), len(MIXED["g4"]), len(MIXED["g5"])
    assert desc.n_features == 2 * (1 + n2) + 3 * (n4 + n5)
    names = desc.feature_names
    assert names[0] == "G1[O]" and names[1 + n2] == "G1[Zn]"
    assert names[2 * (1 + n2)].startswith("G4[O-O]")
    assert names[2 * (1 + n2) + n4].startswith("G5[O-O]")
    assert names[2 * (1 + n2) + (n4 + n5)].startswith("G4[Zn-O]")
    assert names[-1].startswith("G5[Zn-Zn]")
    with pytest.raises(ValueError, match="columns"):
        desc.to_dscribe_order(np.zeros((3, desc.n_features + 1)))


def test_to_dict_round_trip():
    atoms = wurtzite()
    for desc in (BehlerParrinello.default_zno(), mixed(), BehlerParrinello(["Zn"], 3.0)):
        d = json.loads(json.dumps(desc.to_dict()))
        assert d["kind"] == "BehlerParrinello"
        back = descriptor_from_dict(d)
        assert isinstance(back, BehlerParrinello)
        assert back.feature_names == desc.feature_names and back.to_dict() == desc.to_dict()
        if set(atoms.get_chemical_symbols()) <= set(desc.species):
            np.testing.assert_array_equal(back.compute(atoms), desc.compute(atoms))


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    ({"species": ["Zn", "Xx"]}, "unknown element"),
    ({"species": []}, "species is empty"),
    ({"cutoff": 0.0}, "cutoff"),
    ({"cutoff": -2.0}, "cutoff"),
    ({"cutoff": float("nan")}, "cutoff"),
    ({"cutoff": "big"}, "cutoff"),
    ({"g2": [(-0.1, 1.0)]}, "eta must be ≥ 0"),
    ({"g2": [(0.1, -1.0)]}, "rs must be ≥ 0"),
    ({"g2": [(0.1, 1.0, 2.0)]}, r"shape \(n, 2\)"),
    ({"g2": (0.1, 1.0)}, "single flat row"),
    ({"g2": [("a", 1.0)]}, "rows of numbers"),
    ({"g4": [(0.1, 0.5, 1)]}, "zeta must be ≥ 1"),
    ({"g4": [(0.1, 2, 0.5)]}, "lambda must be"),
    ({"g5": [(np.nan, 1, 1)]}, "NaN"),
    ({"g5": [(0.1, 1)]}, r"shape \(n, 3\)"),
])
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        mixed(**kw)


def test_bad_atoms_and_neighbours():
    desc = mixed()
    atoms = wurtzite()
    alien = atoms.copy()
    alien.symbols[0] = "H"
    with pytest.raises(ValueError, match="H, which this descriptor does not know"):
        desc.compute(alien)
    twin = Atoms("ZnOO", positions=[[0, 0, 0], [1, 1, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match=r"atoms 1 \(O\) and 2 \(O, image shift \(0, 0, 0\)\) overlap"):
        desc.compute(twin)
    stale = neighbor_list(atoms, desc.cutoff)
    moved = atoms.copy()
    moved.positions[0] += 0.1
    with pytest.raises(ValueError, match="stale"):
        desc.compute(moved, neighbors=stale)
    with pytest.raises(TypeError, match="Pairs"):
        desc.compute(atoms, neighbors=(stale.i, stale.j))
    with pytest.raises(ValueError, match="dE_dG must have shape"):
        desc.forces_and_virial(atoms, np.zeros((len(atoms), desc.n_features - 1)))
    with pytest.raises(ValueError, match="NaN or infinite positions"):
        broken = atoms.copy()
        broken.positions[1, 2] = np.nan
        desc.compute(broken)
