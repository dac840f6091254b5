"""Structure builders shared by the descriptor and neighbour-list tests (small, reproducible, ZnO)."""

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list


def rattle(atoms, sigma, seed):
    """Copy of ``atoms`` with Gaussian displacements of width ``sigma`` (Å), reproducible by ``seed``."""
    out = atoms.copy()
    out.positions += np.random.default_rng(seed).normal(0, sigma, out.positions.shape)
    return out


def wurtzite(a=3.25, c=5.21, sigma=0.05, seed=1):
    """Rattled 8-atom wurtzite ZnO (2 × 1 × 1 primitive cells), lattice constants ``a``, ``c`` in Å."""
    return rattle(bulk("ZnO", "wurtzite", a=a, c=c, u=0.38).repeat((2, 1, 1)), sigma, seed)


def rocksalt(a=4.28, sigma=0.05, seed=2):
    """Rattled 8-atom cubic rocksalt ZnO, lattice constant ``a`` in Å."""
    return rattle(bulk("ZnO", "rocksalt", a=a, cubic=True), sigma, seed)


def skewed():
    """Rattled 4-atom triclinic cell whose vectors (3.1–3.5 Å) are shorter than 4.5 and 6 Å cutoffs."""
    cell = np.array([[3.3, 0.0, 0.0], [1.5, 3.0, 0.0], [-0.9, 1.1, 3.4]])
    frac = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.3, 0.5], [0.75, 0.8, 0.45]]
    atoms = rattle(Atoms("ZnZnOO", scaled_positions=frac, cell=cell, pbc=True), 0.1, 0)
    assert ase_neighbor_list("d", atoms, 6.0).min() > 1.5
    return atoms


def triclinic():
    """Skewed 2-atom cell whose vectors (3.0–3.2 Å) are all shorter than a 4.5 Å cutoff."""
    cell = np.array([[3.0, 0.0, 0.0], [1.4, 2.8, 0.0], [0.8, 1.0, 2.9]])
    atoms = Atoms("ZnO", scaled_positions=[[0.0, 0.0, 0.0], [0.45, 0.5, 0.55]], cell=cell, pbc=True)
    assert ase_neighbor_list("d", atoms, 4.5).min() > 2.0
    return atoms


def cluster(n=10):
    """Isolated cluster of the first ``n`` ≤ 10 of ZnOZnOZnOZnOOZn, in a 5 Å box, atoms > 1.7 Å apart."""
    symbols = "ZnOZnOZnOZnOOZn"
    rng = np.random.default_rng(3)
    positions = []
    while len(positions) < 10:
        x = rng.uniform(0, 5.0, 3)
        if all(np.linalg.norm(x - y) > 1.7 for y in positions):
            positions.append(x)
    return Atoms(symbols, positions=positions, pbc=False)[:n]
