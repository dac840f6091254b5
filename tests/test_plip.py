"""PLIP descriptor pool: brute-force agreement, analytic gradients, invariances, channels, errors."""

import json

import numpy as np
import pytest
import structures
from ase import Atoms
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list as ase_neighbor_list
from descriptor_reference import PLIP_SMALL as SMALL
from finite_differences import check_forces_and_virial

from mliplib.descriptors import PLIP
from mliplib.descriptors.base import descriptor_from_dict
from mliplib.descriptors.plip import switch
from mliplib.neighbors import neighbor_list

# small pool: the Zn–Zn/O–O switch (3.23–3.57 Å) straddles the wurtzite like-pair shell at ≈ 3.2–3.3 Å
R_SHORT = SMALL["r_short"]


def small(**kw):
    return PLIP(**{**SMALL, **kw})


def wurtzite():
    return structures.wurtzite(a=3.29, c=5.30, sigma=0.08)


def rocksalt():
    return structures.rocksalt(a=4.33, sigma=0.08)


def cluster():
    return structures.cluster(9)


STRUCTURES = {"wurtzite": wurtzite, "rocksalt": rocksalt, "triclinic": structures.triclinic, "cluster": cluster}


# ------------------------------------------------------------------------------------------------
# independent brute force: ASE neighbour list, explicit double loop over neighbour pairs
# ------------------------------------------------------------------------------------------------

def brute_force(desc: PLIP, atoms: Atoms) -> np.ndarray:
    """Direct evaluation from the definitions; columns found by the documented feature names."""
    col = {name: k for k, name in enumerate(desc.feature_names)}
    symbols = atoms.get_chemical_symbols()
    z_of = atomic_numbers.__getitem__
    rc = desc.cutoff
    aa = np.repeat(desc.a, len(desc.b))
    bb = np.tile(desc.b, len(desc.a))
    tags = [f"a={x:g},b={y:g}" for x, y in zip(aa, bb)]
    ls = np.arange(desc.l_max + 1)
    ms = np.arange(4, desc.m_max + 1)
    species = sorted(set(desc.species), key=z_of)

    def pair(s, t):
        return "".join(sorted((s, t), key=z_of))

    def switch(r, rs):
        r1, r2 = 0.95 * rs, 1.05 * rs
        u = np.clip((r - r1) / (r2 - r1), 0.0, 1.0)
        return 6 * u ** 5 - 15 * u ** 4 + 10 * u ** 3

    ii, jj, dd = ase_neighbor_list("ijD", atoms, rc)
    out = np.zeros((len(atoms), desc.n_features))
    for c in range(len(atoms)):
        sc = symbols[c]
        vec = dd[ii == c]
        nbr = [symbols[x] for x in jj[ii == c]]
        r = np.linalg.norm(vec, axis=1)
        u = vec / r[:, None]
        g = np.exp(-aa * (r[:, None] - bb) ** 2) * (0.5 * (1 + np.cos(np.pi * r / rc)))[:, None]  # (k, Nb)
        if desc.two_body:
            for k in range(len(r)):
                p = "-".join(sorted((sc, nbr[k]), key=z_of))
                for n, tag in enumerate(tags):
                    out[c, col[f"2B[{p}]({tag})"]] += g[k, n]
        if desc.three_body:
            for j in range(len(r)):
                for k in range(j + 1, len(r)):
                    cos = u[j] @ u[k]
                    ch = f"{sc}-{pair(nbr[j], nbr[k])}"
                    for n, tag in enumerate(tags):
                        for l in ls:
                            out[c, col[f"3B[{ch}]({tag},l={l})"]] += g[j, n] * g[k, n] * cos ** l
        if desc.many_body:
            for s in species:
                sel = np.array([x == s for x in nbr], bool)
                rho = (g[sel] * switch(r[sel], desc.r_short[(sc, s)])[:, None]).sum(axis=0)
                for n, tag in enumerate(tags):
                    for m in ms:
                        out[c, col[f"NB[{sc}-{s}]({tag},m={m})"]] = rho[n] ** m
    return out


def assert_close(desc, actual, expected, rtol=1e-10):
    """Number-for-number agreement to ``rtol`` relative to each entry. A 3B entry can cancel to ~0
    (odd l in a symmetric environment) while its terms do not; it is compared against an absolute
    floor 1e-15 × its l = 0 partner, which bounds the sum of |terms|."""
    floor = np.zeros_like(expected)
    col = {name: k for k, name in enumerate(desc.feature_names)}
    for k, r in enumerate(desc.channels()):
        if r["body"] == "3B":
            floor[:, k] = 1e-15 * np.abs(expected[:, col[r["name"].replace(f"l={r['l']})", "l=0)")]])
    err = np.abs(actual - expected) / (np.abs(expected) + floor / rtol + 1e-300)
    assert err.max() < rtol, (err.max(), np.unravel_index(err.argmax(), err.shape))


# ------------------------------------------------------------------------------------------------
# values
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(STRUCTURES))
def test_matches_brute_force(name):
    atoms = STRUCTURES[name]()
    desc = small()
    G = desc.compute(atoms)
    assert G.shape == (len(atoms), desc.n_features)
    ref = brute_force(desc, atoms)
    assert np.abs(ref).max() > 0 and np.count_nonzero(ref[:, desc._offN:]) > 0
    assert_close(desc, G, ref)


def test_matches_brute_force_ternary_default_r_short():
    atoms = cluster()
    atoms.symbols[[1, 4]] = "H"
    desc = PLIP(["Zn", "O", "H"], cutoff=4.0, a=(1.0,), b=(1.0, 2.0, 3.0), l_max=3, m_max=5)
    assert_close(desc, desc.compute(atoms), brute_force(desc, atoms))


def test_block_switches_and_basis_order():
    atoms = wurtzite()
    full = small()
    G = full.compute(atoms)
    for kw in ({"two_body": False}, {"three_body": False}, {"many_body": False},
               {"two_body": False, "many_body": False}):
        part = small(**kw)
        cols = [full.feature_names.index(n) for n in part.feature_names]
        np.testing.assert_array_equal(part.compute(atoms), G[:, cols])


# ------------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["wurtzite", "triclinic", "cluster"])
def test_forces_and_virial_vs_finite_differences(name):
    atoms = STRUCTURES[name]()
    desc = small()
    rng = np.random.default_rng(7)
    w = rng.normal(size=(len(atoms), desc.n_features)) / np.maximum(
        1.0, np.abs(desc.compute(atoms)).max(axis=0))
    _, grads = desc.compute(atoms, gradients=True)
    check_forces_and_virial(desc, atoms, w, grads)


def test_gradient_rows_match_finite_differences_of_pair_vectors():
    """values[p] = ∂G_i/∂r_ij for one pair, checked column by column through a direct perturbation."""
    atoms = cluster()
    desc = small()
    _, grads = desc.compute(atoms, gradients=True)
    assert grads.values.shape == (len(grads.i), desc.n_features, 3)
    # in an isolated cluster each pair is unique; moving atom j changes r_ij of centre i only
    p = 5
    i, j = grads.i[p], grads.j[p]
    h = 1e-5
    for x in range(3):
        rows = []
        for sign in (1, -1):
            at = atoms.copy()
            at.positions[j, x] += sign * h
            rows.append(desc.compute(at)[i])
        fd = (rows[0] - rows[1]) / (2 * h)
        np.testing.assert_allclose(grads.values[p, :, x], fd, rtol=1e-6, atol=1e-8 * max(1, np.abs(fd).max()))


# ------------------------------------------------------------------------------------------------
# invariances
# ------------------------------------------------------------------------------------------------

def test_rotation_translation_permutation():
    atoms = wurtzite()
    desc = small()
    G = desc.compute(atoms)
    q, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ q.T)
    rot.positions = atoms.positions @ q.T
    np.testing.assert_allclose(desc.compute(rot), G, rtol=1e-10, atol=1e-10)
    moved = atoms.copy()
    moved.positions += [0.37, -1.2, 5.1]
    np.testing.assert_allclose(desc.compute(moved), G, rtol=1e-10, atol=1e-10)
    perm = np.random.default_rng(5).permutation(len(atoms))
    np.testing.assert_allclose(desc.compute(atoms[perm]), G[perm], rtol=1e-12, atol=1e-12)
    # swapping the positions of two like atoms swaps their rows
    zn = np.flatnonzero(atoms.numbers == 30)[:2]
    swapped = atoms.copy()
    swapped.positions[zn] = atoms.positions[zn[::-1]]
    Gs = desc.compute(swapped)
    np.testing.assert_allclose(Gs[zn], G[zn[::-1]], rtol=1e-12, atol=1e-12)


def test_supercell_and_larger_neighbour_list():
    atoms = wurtzite()
    desc = small()
    G, grads = desc.compute(atoms, gradients=True)
    big = atoms.repeat((2, 2, 2))
    np.testing.assert_allclose(desc.compute(big), np.tile(G, (8, 1)), rtol=1e-10, atol=1e-12)
    # a neighbour list with a longer cutoff (MD skin) gives the same values, gradients and forces
    # (up to summation order: the pairs may come in another order)
    wide = neighbor_list(atoms, desc.cutoff + 1.3)
    Gw, gw = desc.compute(atoms, gradients=True, neighbors=wide)
    np.testing.assert_allclose(Gw, G, rtol=1e-12, atol=1e-14)
    assert len(gw.i) == len(grads.i) < len(wide.i)  # pairs beyond the cutoff are dropped
    w = np.random.default_rng(8).normal(size=G.shape)
    np.testing.assert_allclose(gw.forces(w), grads.forces(w), rtol=1e-12, atol=1e-12)
    f1, v1 = desc.forces_and_virial(atoms, w)
    f2, v2 = desc.forces_and_virial(atoms, w, neighbors=wide)
    np.testing.assert_allclose(f2, f1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v2, v1, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# the short-range switch
# ------------------------------------------------------------------------------------------------

def test_switch_values_and_smoothness():
    rs = 2.3
    r1, r2 = 0.95 * rs, 1.05 * rs
    assert switch(r1 - 1e-3, r1, r2) == (0.0, 0.0)
    assert switch(r1, r1, r2) == (0.0, 0.0)
    assert switch(r2, r1, r2) == (1.0, 0.0)
    assert switch(r2 + 1e-3, r1, r2) == (1.0, 0.0)
    assert switch(0.5 * (r1 + r2), r1, r2)[0] == pytest.approx(0.5)
    # derivative is the derivative, and first and second derivatives vanish at both ends (C²)
    h = 1e-6
    for r in np.linspace(r1 + 1e-4, r2 - 1e-4, 7):
        fd = (switch(r + h, r1, r2)[0] - switch(r - h, r1, r2)[0]) / (2 * h)
        assert switch(r, r1, r2)[1] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    # C²: f′ and f″ go to zero at both ends (f″ from differences of the analytic f′, compared with
    # its largest value 60·max[u(1−u)(1−2u)]/(r2−r1)² inside the switch)
    f2_max = 60 * 0.0962 / (r2 - r1) ** 2
    eps = 5e-7
    for edge, value in ((r1, 0.0), (r2, 1.0)):
        for side in (-1, 1):
            f, df = switch(edge + side * eps, r1, r2)
            assert abs(f - value) < 1e-12 and abs(df) < 1e-9
            d2 = (switch(edge + side * 2 * eps, r1, r2)[1] - switch(edge + side * eps, r1, r2)[1]) / eps
            assert abs(d2) < 1e-4 * f2_max


def test_many_body_zero_inside_short_shell():
    desc = small()
    nb = slice(desc._offN, None)
    close = Atoms("ZnO", positions=[[0, 0, 0], [0, 0, 0.95 * 2.3 - 1e-6]])
    G, grads = desc.compute(close, gradients=True)
    assert np.all(G[:, nb] == 0.0) and np.all(grads.values[:, nb] == 0.0)
    assert np.all(G[:, : desc._offN].sum(axis=1) > 0)
    far = Atoms("ZnO", positions=[[0, 0, 0], [0, 0, 2.6]])
    assert np.all(desc.compute(far)[:, nb].max(axis=1) > 0)


# ------------------------------------------------------------------------------------------------
# channels, feature count, serialisation
# ------------------------------------------------------------------------------------------------

def test_channel_bookkeeping():
    atoms = wurtzite()
    desc = small()
    G = desc.compute(atoms)
    table = desc.channels()
    assert [r["name"] for r in table] == desc.feature_names and len(set(desc.feature_names)) == desc.n_features
    for element, z in (("Zn", 30), ("O", 8)):
        rows = G[atoms.numbers == z]
        mask = desc.centre_mask(element)
        assert np.all(rows[:, ~mask] == 0.0)
        assert np.all(np.abs(rows[:, mask]).max(axis=0) > 0)  # every own channel is used in wurtzite
        other = "O" if element == "Zn" else "Zn"
        centred_on_other = np.array([r["centre"] == other or (r["body"] == "2B" and r["neighbours"] == (other, other))
                                     for r in table])
        assert np.array_equal(centred_on_other, ~mask)
    # the O–Zn 2B channel holds the same total seen from the O side and from the Zn side
    ab = np.array([r["body"] == "2B" and r["channel"] == "O-Zn" for r in table])
    assert ab.sum() == desc.n_basis
    np.testing.assert_allclose(G[atoms.numbers == 8][:, ab].sum(axis=0), G[atoms.numbers == 30][:, ab].sum(axis=0),
                               rtol=1e-12)
    r = table[desc.feature_names.index("3B[Zn-OZn](a=1.6,b=2.7,l=3)")]
    assert (r["body"], r["centre"], r["neighbours"], r["a"], r["b"], r["l"], r["m"]) == \
        ("3B", "Zn", ("O", "Zn"), 1.6, 2.7, 3, None)


def test_feature_counts():
    d = small()
    N = d.n_basis
    assert N == 6
    assert d.n_features == 3 * N + 6 * N * (d.l_max + 1) + 4 * N * (d.m_max - 3)
    t = PLIP(["Zn", "O", "H"], cutoff=5.0, a=(1.0, 2.0), b=(1.0, 2.0, 3.0), l_max=5, m_max=7)
    N, P, S = 6, 6, 3
    assert t.n_features == N * (P + S * P * 6 + S * S * 4)
    zno = PLIP.default_zno()
    assert zno.n_features == 27 * 55 == 1485 and zno.cutoff == 6.0 and zno.centre_resolved
    assert zno.species == ["O", "Zn"]


def test_to_dict_round_trip():
    for desc in (PLIP.default_zno(), small(two_body=False), PLIP(["Zn", "O"], many_body=False)):
        d = json.loads(json.dumps(desc.to_dict()))
        assert d["kind"] == "PLIP"
        back = descriptor_from_dict(d)
        assert back.feature_names == desc.feature_names and back.to_dict() == desc.to_dict()
        assert back.r_short == desc.r_short
    atoms = wurtzite()
    back = descriptor_from_dict(json.loads(json.dumps(small().to_dict())))
    np.testing.assert_array_equal(back.compute(atoms), small().compute(atoms))


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    ({"cutoff": 0.0}, "cutoff"),
    ({"cutoff": -3.0}, "cutoff"),
    ({"a": (1.0, -0.5)}, "widths"),
    ({"l_max": -1}, "l_max"),
    ({"m_max": 3}, "m_max"),
    ({"r_short": {("Zn", "O"): 2.3, ("Zn", "Zn"): 3.4}}, "missing the pair O-O"),
    ({"r_short": {**R_SHORT, ("O", "O"): 4.5}}, "not below the cutoff"),
    ({"r_short": {**R_SHORT, ("Zn", "H"): 2.0}}, "outside species"),
    ({"species": ["Zn", "Xx"]}, "unknown element"),
    ({"two_body": False, "three_body": False, "many_body": False}, "empty"),
])
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        small(**kw)


def test_bad_atoms():
    desc = small()
    with pytest.raises(ValueError, match="H, which this descriptor does not know"):
        desc.compute(Atoms("ZnH", positions=[[0, 0, 0], [0, 0, 1.5]]))
    overlap = Atoms("ZnOO", positions=[[0, 0, 0], [0, 0, 2.0], [0, 0, 2.0 + 1e-9]])
    with pytest.raises(ValueError, match=r"atoms 1 \(O\) and 2 \(O"):
        desc.compute(overlap)
    with pytest.raises(ValueError, match="dE_dG"):
        desc.forces_and_virial(wurtzite(), np.zeros((3, 3)))
    assert small(many_body=False, m_max=0).n_features == 3 * 6 + 6 * 6 * 5
