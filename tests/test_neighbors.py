"""Neighbour list: pairs and vectors against ASE, CSR order, the vesin engine, the skin list, errors."""

import pickle
import sys
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mliplib import neighbors as nb
from mliplib.neighbors import NeighborList, Pairs, check_pairs, neighbor_list

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


def test_default_engine_needs_no_optional_package(monkeypatch):
    """The default is the Numba cell list (faster than vesin in benchmarks/README.md): it works, and
    gives the same pairs as ASE, where vesin cannot be imported."""
    monkeypatch.setitem(sys.modules, "vesin", None)  # import vesin now raises ImportError
    atoms = random_cell(np.random.default_rng(2), 6, PBCS["bulk"])
    check_against_ase(atoms, 3.5)
    with pytest.raises(ImportError, match="optional package vesin"):
        neighbor_list(atoms, 3.5, engine="vesin")


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
    # complete within cutoff + skin at the build, within less once atoms moved (pairs close by 2 × move)
    assert first.cutoff == cutoff + skin
    largest = np.linalg.norm(moved.positions - atoms.positions, axis=1).max()
    assert reused.cutoff == pytest.approx(cutoff + skin - 2 * largest) and cutoff <= reused.cutoff < cutoff + skin
    check_pairs(moved, reused, reused.cutoff)
    assert_same_pairs(within(reused, reused.cutoff), neighbor_list(moved, reused.cutoff))
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


def test_atoms_far_outside_the_cell():
    """Along a periodic axis, more than MAX_CELLS_AWAY cells out is refused (precision is lost there) with
    a message saying to wrap; a few thousand cells out is fine. Along a non-periodic axis any finite
    distance is legal and must not break the binning."""
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    far = atoms.copy()
    far.positions[1] += 1e10 * atoms.cell[0]
    with pytest.raises(ValueError, match=r"atoms \[1\] lie up to 1e\+10 cells outside.*atoms.wrap\(\)"):
        neighbor_list(far, 6.0)
    near = atoms.copy()
    near.positions[1] += 3000 * atoms.cell[0] - 2000 * atoms.cell[2]
    check_against_ase(near, 6.0)
    slab = atoms.copy()
    slab.pbc = (True, True, False)
    slab.positions[1, 2] = 1e300
    pairs = neighbor_list(slab, 6.0)
    assert_csr(pairs, slab)
    assert np.all((pairs.i == 1) == (pairs.j == 1))  # the far atom sees only its own in-plane images
    rest = [0, 2, 3]
    assert_same_pairs(neighbor_list(slab[rest], 6.0), within_atoms(pairs, rest))
    cluster = Atoms("ZnOZn", positions=[[0, 0, 0], [0, 0, 1.9], [0, 0, -1e300]])
    pairs = neighbor_list(cluster, 3.0)
    assert pairs.i.tolist() == [0, 1] and pairs.j.tolist() == [1, 0]


def within_atoms(pairs, atoms):
    """The pairs among ``atoms`` (indices), renumbered 0, 1, … in that order."""
    new = {a: k for k, a in enumerate(atoms)}
    keep = np.isin(pairs.i, atoms) & np.isin(pairs.j, atoms)
    renumber = np.vectorize(new.get)
    return renumber(pairs.i[keep]), renumber(pairs.j[keep]), pairs.shifts[keep], pairs.vectors[keep]


@pytest.mark.parametrize("cell, pbc", [([0.05, 0.05, 0.05], True),
                                        ([[3.0, 0, 0], [2.8, 0.3, 0], [0, 0, 3.0]], True),  # a − b = 0.36 Å
                                        ([0.2, 4.0, 4.0], (True, False, False))])
def test_cell_too_small_is_refused_at_once(cell, pbc):
    atoms = Atoms("Zn", cell=cell, pbc=pbc)
    start = time.process_time()
    with pytest.raises(ValueError, match=r"periodic lattice has a vector of .* Å \(cell lengths .*own periodic image"):
        neighbor_list(atoms, 6.0)
    assert time.process_time() - start < 0.5


def test_check_pairs():
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=1)
    pairs = neighbor_list(atoms, 4.0)
    check_pairs(atoms, pairs, 4.0)
    check_pairs(atoms, pairs, 3.0)
    with pytest.raises(ValueError, match=r"complete only within 4 Å, less than the 4.5 Å needed"):
        check_pairs(atoms, pairs, 4.5)
    with pytest.raises(ValueError, match="complete only within unknown"):
        check_pairs(atoms, Pairs(*pairs), 4.0)
    with pytest.raises(TypeError, match="must be a mliplib.neighbors.Pairs"):
        check_pairs(atoms, tuple(pairs), 4.0)
    moved = atoms.copy()
    moved.positions[3] += [0.0, 0.01, 0.0]
    with pytest.raises(ValueError, match=r"differ .* by up to 0.01 Å: the list is stale"):
        check_pairs(moved, pairs, 4.0)
    with pytest.raises(ValueError, match="outside 0..3"):
        check_pairs(atoms[:4], pairs, 4.0)
    shuffled = Pairs(*(x[::-1] for x in pairs), cutoff=4.0)
    with pytest.raises(ValueError, match="sorted ascending"):
        check_pairs(atoms, shuffled, 4.0)
    # still a 4-tuple: unpacks and pickles like one, and pickling keeps the cutoff
    i, j, shifts, vectors = pairs
    assert len(i) == len(j) == len(shifts) == len(vectors) > 0
    back = pickle.loads(pickle.dumps(pairs))
    assert back.cutoff == 4.0 and all(np.array_equal(x, y) for x, y in zip(back, pairs))
