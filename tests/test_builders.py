"""mliplib.builders on compounds other than ZnO (the builders take every symbol and parameter), and the
analysis functions of mliplib.properties that take the species from the structure."""

import numpy as np
import pytest
from ase.build import bulk
from ase.data import atomic_masses, atomic_numbers
from ase.neighborlist import neighbor_list

from mliplib.builders import (
    AB_STRUCTURES,
    AVOGADRO,
    binary_crystal,
    cluster_cut,
    in_box,
    random_cubic_cell,
    random_packing,
    random_shear,
    rattled,
    ring,
    sodalite_cage,
    strained,
    supercell_of,
    wurtzite_slab,
)
from mliplib.properties import lattice_parameters, ring_geometry

GAN = ("Ga", "N")
#: parameters close to the usual ones of each structure type, for GaN-like cells (Å, fractional)
PARAMS = {"wurtzite": {"a": 3.19, "c": 5.19, "u": 0.377}, "zincblende": {"a": 4.50}, "rocksalt": {"a": 4.22},
          "cscl": {"a": 2.62}, "hbn": {"a": 3.35, "c": 4.40}, "bct": {"a": 5.50, "c": 3.20, "x": 0.18}}
#: coordination of each structure type: unlike neighbours closer than 1.2 × the shortest bond
COORDINATION = {"wurtzite": 4, "zincblende": 4, "rocksalt": 6, "cscl": 8, "hbn": 5, "bct": 4}


def density(atoms):
    """g/cm³ from the atomic masses and the cell."""
    return atoms.get_masses().sum() / AVOGADRO / (atoms.get_volume() * 1e-24)


@pytest.mark.parametrize("structure", AB_STRUCTURES)
def test_binary_crystal_structures_and_their_lattice_parameters(structure):
    atoms = binary_crystal(structure, GAN, **PARAMS[structure])
    assert atoms.info["phase"] == structure and atoms.get_chemical_symbols()[0] == "Ga"
    assert atoms.symbols.count("Ga") == atoms.symbols.count("N")
    d = neighbor_list("d", atoms, 4.0)
    i, j = neighbor_list("ij", atoms, 1.2 * d.min())
    unlike = atoms.numbers[i] != atoms.numbers[j]
    assert set(np.bincount(i[unlike], minlength=len(atoms))) == {COORDINATION[structure]}
    p = lattice_parameters(atoms)
    assert p["a"] == pytest.approx(PARAMS[structure]["a"])  # cubic phases: a of the conventional cell
    if structure in ("wurtzite", "hbn", "bct"):
        assert p["c"] == pytest.approx(PARAMS[structure]["c"])
        expected_u = {"wurtzite": PARAMS["wurtzite"]["u"], "hbn": 0.5, "bct": PARAMS["bct"]["x"]}[structure]
        assert p["u"] == pytest.approx(expected_u)


def test_binary_crystal_refuses_wrong_input():
    with pytest.raises(ValueError, match="unknown structure"):
        binary_crystal("perovskite", GAN, a=4.0)
    with pytest.raises(ValueError, match="takes the parameters"):
        binary_crystal("wurtzite", GAN, a=3.19, c=5.19)
    with pytest.raises(ValueError, match="takes the parameters"):
        binary_crystal("rocksalt", GAN, a=4.2, c=4.2)
    with pytest.raises(ValueError, match="two chemical symbols"):
        binary_crystal("rocksalt", ("Ga", "Xx"), a=4.2)
    cubic = binary_crystal("rocksalt", ("Mg", "O"), cubic=True, a=4.21)
    assert len(cubic) == 8 and np.allclose(cubic.cell.lengths(), 4.21)


def test_strain_shear_rattle_and_supercell():
    cell = binary_crystal("zincblende", GAN, a=4.5)
    assert strained(cell, 0.02).get_volume() == pytest.approx(cell.get_volume() * 1.02 ** 3)
    eps = random_shear(0.03, seed=4)
    assert np.allclose(eps, eps.T) and abs(np.trace(eps)) < 1e-15 and np.abs(eps).max() <= 0.06
    assert np.allclose(strained(cell, eps).get_scaled_positions(), cell.get_scaled_positions())
    moved = rattled(cell, 0.1, seed=2)
    assert not np.allclose(moved.positions, cell.positions)
    assert np.allclose(moved.positions, rattled(cell, 0.1, seed=2).positions)  # the seed fixes it
    big = supercell_of(cell, (2, 1, 3))
    assert len(big) == 6 * len(cell) and big.info["phase"] == "zincblende"


@pytest.mark.parametrize("miller, layers", [("10-10", 4), ("11-20", 6)])
def test_wurtzite_slab_is_stoichiometric_and_periodic_in_plane(miller, layers):
    slab = wurtzite_slab(GAN, miller, layers, 5.0, **PARAMS["wurtzite"])
    assert list(slab.pbc) == [True, True, False] and slab.info["surface"] == miller
    assert slab.symbols.count("Ga") == slab.symbols.count("N") > 0
    heights = slab.positions[:, 2]
    assert heights.min() == pytest.approx(5.0) and slab.cell[2, 2] - heights.max() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="unknown surface"):
        wurtzite_slab(GAN, "0001", layers, 5.0, **PARAMS["wurtzite"])


def test_cluster_cut_ring_and_cage():
    crystal = supercell_of(binary_crystal("wurtzite", GAN, **PARAMS["wurtzite"]), (4, 4, 3))
    cluster = cluster_cut(crystal, 10, seed=1)
    assert cluster.symbols.count("Ga") == cluster.symbols.count("N") == 10
    assert not cluster.pbc.any() and cluster.info == {} and cluster.cell.rank == 0
    with pytest.raises(ValueError, match="fewer than"):
        cluster_cut(binary_crystal("wurtzite", GAN, **PARAMS["wurtzite"]), 3)
    hexagon = ring(("Mg", "O"), 3, bond=1.9)
    d = neighbor_list("d", hexagon, 2.0)
    assert len(hexagon) == 6 and len(d) == 12 and np.allclose(d, 1.9)
    assert hexagon.get_chemical_symbols() == ["Mg", "O"] * 3
    g = ring_geometry(hexagon, {("Mg", "O"): 2.2})  # keys per species
    assert g["is_ring"] and g["angle_mg"] == pytest.approx(120) == g["angle_o"] and g["radius_mg"] == pytest.approx(1.9)
    cage = sodalite_cage(("Mg", "O"), bond=1.95)
    i, j, d = neighbor_list("ijd", cage, 2.0)
    assert len(cage) == 24 and cage.symbols.count("Mg") == 12
    assert set(np.bincount(i)) == {3} and np.allclose(d, 1.95)
    assert np.all(cage.numbers[i] != cage.numbers[j])  # Mg and O alternate along every edge
    boxed = in_box(cage, 4.0)
    assert not boxed.pbc.any() and boxed.positions.min() == pytest.approx(4.0)


def test_random_cells_for_liquids_have_the_density_and_closest_distances():
    cell = random_cubic_cell(("Na", "Cl"), 16, 1.5, seed=0, min_distance=2.0)
    unit_mass = atomic_masses[atomic_numbers["Na"]] + atomic_masses[atomic_numbers["Cl"]]
    assert density(cell) == pytest.approx(1.5, rel=1e-12)
    assert cell.get_chemical_symbols() == ["Na", "Cl"] * 16 and cell.get_masses().sum() == pytest.approx(16 * unit_mass)
    assert cell.get_all_distances(mic=True)[np.triu_indices(32, 1)].min() > 2.0
    wanted = {("Na", "Cl"): 2.6, ("Na", "Na"): 3.4, ("Cl", "Cl"): 3.6}
    packed = random_packing(("Na", "Cl"), 16, 1.5, wanted, seed=3)
    assert density(packed) == pytest.approx(1.5, rel=1e-12)
    d = packed.get_all_distances(mic=True)
    for (a, b), dmin in wanted.items():
        mask = np.outer(packed.symbols == a, packed.symbols == b) & ~np.eye(len(packed), dtype=bool)
        assert d[mask].min() > dmin - 0.02, (a, b)
    with pytest.raises(RuntimeError, match="no packing"):
        random_packing(("Na", "Cl"), 16, 8.0, wanted, max_iterations=10)
    with pytest.raises(ValueError, match="positive"):
        random_packing(("Na", "Cl"), 4, 1.5, {("Na", "Cl"): 0.0})
    with pytest.raises(ValueError, match="density"):
        random_cubic_cell(("Na", "Cl"), 4, 0.0, seed=0, min_distance=1.0)


def test_lattice_parameters_take_the_species_from_the_cell():
    """A, the cation, is the species of the first atom; the B–A order of a reversed cell gives the same u."""
    gan = binary_crystal("wurtzite", GAN, **PARAMS["wurtzite"])
    reversed_cell = gan[[1, 0, 3, 2]]
    assert lattice_parameters(reversed_cell, "wurtzite")["u"] == pytest.approx(PARAMS["wurtzite"]["u"])
    with pytest.raises(ValueError, match="phase"):
        lattice_parameters(bulk("Cu"))
