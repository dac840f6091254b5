"""Neighbour list: pairs and vectors against ASE, CSR order, the vesin engine, the skin list, errors."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mliplib import neighbors as nb
from mliplib.neighbors import NeighborList, neighbor_list


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def as_dict(i, j, shifts, vectors):
    """{(i, j, shift): vector}; asserts the keys are unique (no pair listed twice)."""
    keys = list(zip(i.tolist(), j.tolist(), map(tuple, np.asarray(shifts).tolist())))
    assert len(set(keys)) == len(keys), "duplicate pairs"
    return dict(zip(keys, np.asarray(vectors)))


def assert_same_pairs(pairs, reference, atol=1e-10):
    """Same set of (i, j, shift) and the same vectors for each."""
    ours, ref = as_dict(*pairs), as_dict(*reference)
    assert ours.keys() == ref.keys(), (f"{len(ours.keys() - ref.keys())} extra, "
                                       f"{len(ref.keys() - ours.keys())} missing pairs")
    for key, vector in ref.items():
        np.testing.assert_allclose(ours[key], vector, rtol=0, atol=atol)


def assert_csr(pairs, atoms):
    """i ascending, offsets delimit the rows, vectors = r_j − r_i + shifts @ cell."""
    n = len(atoms)
    assert pairs.i.dtype == pairs.j.dtype == pairs.shifts.dtype == np.int64 and pairs.vectors.dtype == np.float64
    assert pairs.shifts.shape == pairs.vectors.shape == (len(pairs.i), 3)
    assert np.all(np.diff(pairs.i) >= 0)
    offsets = pairs.offsets(n)
    np.testing.assert_array_equal(offsets, np.concatenate([[0], np.cumsum(np.bincount(pairs.i, minlength=n))]))
    for a in range(n):
        assert np.all(pairs.i[offsets[a]:offsets[a + 1]] == a)
    expect = atoms.positions[pairs.j] - atoms.positions[pairs.i] + pairs.shifts @ atoms.cell.array
    np.testing.assert_allclose(pairs.vectors, expect, rtol=0, atol=1e-10)
    np.testing.assert_allclose(pairs.distances(), np.linalg.norm(expect, axis=1), rtol=1e-12)


def check_against_ase(atoms, cutoff, engine=None):
    pairs = neighbor_list(atoms, cutoff, engine=engine)
    assert_csr(pairs, atoms)
    assert_same_pairs(pairs, ase_neighbor_list("ijSD", atoms, cutoff))
    return pairs


def random_cell(rng, n_atoms, pbc, skew=0.6, spread=0.3):
    """Skewed triclinic cell (diagonal 2.5–5 Å, off-diagonal up to ±skew × diagonal), atoms scattered
    up to ``spread`` outside it (so wrapping is exercised), no two atoms closer than 0.5 Å."""
    diag = rng.uniform(2.5, 5.0, 3)
    cell = np.diag(diag) + np.triu(rng.uniform(-skew, skew, (3, 3)) * diag[:, None], 1)
    while True:
        frac = rng.uniform(-spread, 1 + spread, (n_atoms, 3))
        atoms = Atoms(numbers=rng.choice([8, 30], n_atoms), scaled_positions=frac, cell=cell, pbc=pbc)
        if n_atoms == 1 or ase_neighbor_list("d", atoms, 0.5).size == 0:
            return atoms


# ------------------------------------------------------------------------------------------------
# agreement with ASE
# ------------------------------------------------------------------------------------------------

PBCS = {"bulk": (True, True, True), "slab": (True, True, False), "wire": (False, False, True),
        "slab_xz": (True, False, True), "cluster_in_cell": (False, False, False)}


@pytest.mark.parametrize("pbc", list(PBCS))
@pytest.mark.parametrize("seed", range(4))
def test_random_triclinic_matches_ase(pbc, seed):
    rng = np.random.default_rng(seed)
    atoms = random_cell(rng, int(rng.integers(2, 12)), PBCS[pbc])
    for cutoff in (1.7, 3.9):
        check_against_ase(atoms, cutoff)


@pytest.mark.parametrize("pbc", ["bulk", "slab", "wire"])
def test_cutoff_much_larger_than_cell(pbc):
    """A 3-atom cell ~2.5 Å wide and a 9 Å cutoff: each atom sees hundreds of images."""
    rng = np.random.default_rng(11)
    cell = np.array([[2.5, 0.0, 0.0], [1.3, 2.4, 0.0], [-0.7, 0.9, 2.6]])
    atoms = Atoms("ZnOO", scaled_positions=rng.uniform(0, 1, (3, 3)), cell=cell, pbc=PBCS[pbc])
    pairs = check_against_ase(atoms, 9.0)
    if pbc == "bulk":
        assert len(pairs.i) > 3 * 200
        assert np.abs(pairs.shifts).max() >= 3  # images several cells away
    # the self-images of an atom are neighbours, never the atom itself at zero shift
    self_pairs = pairs.i == pairs.j
    assert self_pairs.any() and np.all(np.any(pairs.shifts[self_pairs] != 0, axis=1))


def test_wurtzite_supercell_counts():
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21).repeat((3, 3, 2))
    atoms.rattle(0.05, seed=3)
    pairs = check_against_ase(atoms, 6.0)
    assert 60 < len(pairs.i) / len(atoms) < 100


def test_isolated_cluster_without_cell():
    rng = np.random.default_rng(5)
    atoms = Atoms(numbers=rng.choice([8, 30], 20), positions=rng.uniform(-6, 6, (20, 3)))
    assert not atoms.pbc.any() and np.all(atoms.cell.array == 0)
    pairs = check_against_ase(atoms, 4.0)
    assert np.all(pairs.shifts == 0) and len(pairs.i) > 0
    # a flat (planar) cluster: zero extent along one axis
    flat = atoms.copy()
    flat.positions[:, 2] = 1.0
    check_against_ase(flat, 4.0)


def test_one_atom_and_empty():
    lone = Atoms("Zn", positions=[[0.3, 0.1, 0.2]])
    assert len(neighbor_list(lone, 5.0).i) == 0
    periodic = Atoms("Zn", positions=[[0.3, 0.1, 0.2]], cell=[[2.9, 0, 0], [0.8, 2.7, 0], [0.2, 0.4, 3.1]], pbc=True)
    pairs = check_against_ase(periodic, 6.5)
    assert np.all(pairs.j == 0) and len(pairs.i) > 20
    empty = neighbor_list(Atoms(), 3.0)
    assert empty.vectors.shape == (0, 3) and empty.offsets(0).tolist() == [0]
    far = Atoms("ZnO", positions=[[0, 0, 0], [0, 0, 10]])
    pairs = neighbor_list(far, 3.0)
    assert len(pairs.i) == 0 and pairs.offsets(2).tolist() == [0, 0, 0]


def test_full_list_is_symmetric():
    atoms = random_cell(np.random.default_rng(8), 9, (True, False, True))
    pairs = neighbor_list(atoms, 4.5)
    forward = as_dict(*pairs)
    for (a, b, s), v in forward.items():
        back = forward[(b, a, tuple(-x for x in s))]
        np.testing.assert_allclose(back, -v, atol=1e-12)


def test_bin_grid_paths_agree():
    """Coarser bins (fewer BIN_DIVISIONS) and a forced parallel run give the same pairs."""
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21).repeat((4, 4, 3))
    atoms.rattle(0.05, seed=2)
    reference = ase_neighbor_list("ijSD", atoms, 5.0)
    saved = nb.BIN_DIVISIONS, nb.PARALLEL_MIN_ATOMS
    try:
        for divisions, min_atoms in ((1, saved[1]), (3, saved[1]), (2, 0)):
            nb.BIN_DIVISIONS, nb.PARALLEL_MIN_ATOMS = divisions, min_atoms
            pairs = neighbor_list(atoms, 5.0)
            assert_csr(pairs, atoms)
            assert_same_pairs(pairs, reference)
    finally:
        nb.BIN_DIVISIONS, nb.PARALLEL_MIN_ATOMS = saved


# ------------------------------------------------------------------------------------------------
# vesin engine
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pbc", ["bulk", "slab", "wire", "cluster_in_cell"])
def test_vesin_engine_same_pairs(pbc):
    pytest.importorskip("vesin")
    rng = np.random.default_rng(21)
    atoms = random_cell(rng, 7, PBCS[pbc])
    for cutoff in (2.0, 7.5):
        ours = neighbor_list(atoms, cutoff, engine="mliplib")
        theirs = neighbor_list(atoms, cutoff, engine="vesin")
        assert_csr(theirs, atoms)
        assert_same_pairs(theirs, ours)


def test_default_engine_is_known():
    assert nb.DEFAULT_ENGINE in nb.ENGINES


# ------------------------------------------------------------------------------------------------
# skin list
# ------------------------------------------------------------------------------------------------

def within(pairs, cutoff):
    keep = pairs.distances() < cutoff
    return pairs.i[keep], pairs.j[keep], pairs.shifts[keep], pairs.vectors[keep]


def test_skin_reuse_and_rebuild():
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=4)
    cutoff, skin = 4.0, 0.6
    nl = NeighborList(cutoff, skin=skin)
    first = nl.update(atoms)
    assert nl.builds == 1
    assert_same_pairs(first, neighbor_list(atoms, cutoff + skin))
    moved = atoms.copy()
    rng = np.random.default_rng(6)
    # every atom moves just under skin/2: reused, yet the pairs within the cutoff are exact
    step = rng.normal(size=moved.positions.shape)
    moved.positions += 0.49 * skin * step / np.linalg.norm(step, axis=1)[:, None]
    reused = nl.update(moved)
    assert nl.builds == 1
    assert_same_pairs(within(reused, cutoff), neighbor_list(moved, cutoff))
    # one atom (measured from the last build) beyond skin/2: rebuilt, equal to a fresh list
    far = moved.copy()
    far.positions[3] = atoms.positions[3] + [0.51 * skin, 0, 0]
    rebuilt = nl.update(far)
    assert nl.builds == 2
    assert_same_pairs(rebuilt, neighbor_list(far, cutoff + skin))
    # a changed cell, pbc or element also forces a rebuild
    strained = far.copy()
    strained.set_cell(far.cell.array * 1.001, scale_atoms=False)
    nl.update(strained)
    assert nl.builds == 3
    swapped = strained.copy()
    swapped.numbers[0] = 8 if swapped.numbers[0] == 30 else 30
    nl.update(swapped)
    assert nl.builds == 4
    nl.update(swapped)
    assert nl.builds == 4


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------

def test_bad_positions():
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    for bad in (np.nan, np.inf, -np.inf):
        broken = atoms.copy()
        broken.positions[2, 1] = bad
        with pytest.raises(ValueError, match=r"atoms \[2\] have NaN or infinite positions"):
            neighbor_list(broken, 3.0)
    nl = NeighborList(3.0)
    nl.update(atoms)
    broken = atoms.copy()
    broken.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite positions"):
        nl.update(broken)


def test_zero_volume_cells():
    flat = Atoms("ZnO", positions=[[0, 0, 0], [1, 1, 1]], cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]], pbc=True)
    with pytest.raises(ValueError, match="zero volume"):
        neighbor_list(flat, 3.0)
    no_cell = Atoms("ZnO", positions=[[0, 0, 0], [1, 1, 1]], pbc=True)
    with pytest.raises(ValueError, match="zero volume"):
        neighbor_list(no_cell, 3.0)
    missing_axis = Atoms("ZnO", positions=[[0, 0, 0], [1, 1, 1]], cell=[3, 3, 0], pbc=(True, True, True))
    with pytest.raises(ValueError, match=r"periodic directions \[0, 1, 2\]"):
        neighbor_list(missing_axis, 3.0)
    # the same cell is fine when the zero axis is not periodic
    missing_axis.pbc = (True, True, False)
    check_against_ase(missing_axis, 3.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        neighbor_list(Atoms("Zn", cell=[[np.nan, 0, 0], [0, 3, 0], [0, 0, 3]], pbc=True), 3.0)


@pytest.mark.parametrize("cutoff", [0.0, -1.0, np.nan, np.inf])
def test_bad_cutoff(cutoff):
    atoms = Atoms("ZnO", positions=[[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="cutoff must be a positive finite length"):
        neighbor_list(atoms, cutoff)
    with pytest.raises(ValueError, match="cutoff must be a positive finite length"):
        NeighborList(cutoff)


def test_bad_engine_and_skin():
    atoms = Atoms("ZnO", positions=[[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="engine must be one of"):
        neighbor_list(atoms, 3.0, engine="ase")
    with pytest.raises(ValueError, match="engine must be one of"):
        NeighborList(3.0, engine="ase")
    with pytest.raises(ValueError, match="skin"):
        NeighborList(3.0, skin=-0.1)
