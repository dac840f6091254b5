"""What every atomic-environment descriptor in mliplib shares: species handling, input checks, gradients.

Gradients are stored per neighbour pair, with respect to the pair vector r_ij = r_j − r_i (+ image
shift): ``values[p, f, :] = ∂G_{i_p, f} / ∂r_{i_p j_p}``. Any energy E(G) then has

    F_j −= g_p,  F_i += g_p,  virial W −= r_p ⊗ g_p,   with g_p = Σ_f (∂E/∂G_{i_p f}) values[p, f],

so forces and stress come from two contractions and periodic images need no special case.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from numba import njit


@dataclasses.dataclass
class Gradients:
    """Per-pair descriptor gradients of one structure.

    i, j: (n_pairs,) int64 centre and neighbour indices; vectors: (n_pairs, 3) r_ij in Å;
    values: (n_pairs, n_features, 3) ∂G_i/∂r_ij in [G]/Å; n_atoms: atoms in the structure.
    """

    i: np.ndarray
    j: np.ndarray
    vectors: np.ndarray
    values: np.ndarray
    n_atoms: int

    def forces(self, dE_dG: np.ndarray) -> np.ndarray:
        """Forces (n_atoms, 3) in eV/Å for per-atom energy derivatives ``dE_dG`` (n_atoms, n_features)."""
        return contract_forces(self.i, self.j, self.values, np.ascontiguousarray(dE_dG, dtype=np.float64),
                               self.n_atoms)

    def virial(self, dE_dG: np.ndarray) -> np.ndarray:
        """Virial W (3, 3) in eV; ASE stress is −W/V."""
        return contract_virial(self.i, self.vectors, self.values,
                               np.ascontiguousarray(dE_dG, dtype=np.float64))

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.vectors.nbytes + self.i.nbytes + self.j.nbytes


@njit(cache=True)
def contract_forces(i, j, values, dE_dG, n_atoms):
    forces = np.zeros((n_atoms, 3))
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        for f in range(values.shape[1]):
            w = dE_dG[a, f]
            if w != 0.0:
                for x in range(3):
                    g = w * values[p, f, x]
                    forces[b, x] -= g
                    forces[a, x] += g
    return forces


@njit(cache=True)
def contract_virial(i, vectors, values, dE_dG):
    virial = np.zeros((3, 3))
    for p in range(i.shape[0]):
        a = i[p]
        for x in range(3):
            g = 0.0
            for f in range(values.shape[1]):
                g += dE_dG[a, f] * values[p, f, x]
            for y in range(3):
                virial[y, x] -= vectors[p, y] * g
    return virial


def species_numbers(species) -> np.ndarray:
    """Sorted unique atomic numbers from symbols or numbers; raises on unknown elements."""
    out = set()
    for s in species:
        if isinstance(s, str):
            if s not in atomic_numbers:
                raise ValueError(f"unknown element symbol {s!r} in species")
            out.add(atomic_numbers[s])
        else:
            z = int(s)
            if not 0 < z < len(chemical_symbols):
                raise ValueError(f"unknown atomic number {s!r} in species")
            out.add(z)
    if not out:
        raise ValueError("species is empty: list the elements the descriptor should know, e.g. ['Zn', 'O']")
    return np.array(sorted(out), dtype=np.int64)


class Descriptor:
    """Base class: ``compute(atoms, gradients=False)`` → G (n_atoms, n_features) [, Gradients].

    Subclasses set ``species_z`` (sorted atomic numbers), ``cutoff`` (Å), ``feature_names`` and
    ``centre_resolved`` (True when features already encode the centre's element, so a linear model
    shares one weight vector across elements; False when a model needs one weight vector per element).
    """

    species_z: np.ndarray
    cutoff: float
    feature_names: list
    centre_resolved: bool = False

    @property
    def species(self) -> list[str]:
        return [chemical_symbols[z] for z in self.species_z]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def species_index(self, atoms: Atoms) -> np.ndarray:
        """Index into ``species_z`` of every atom; raises on elements the descriptor does not know."""
        numbers = atoms.numbers
        unknown = sorted(set(numbers.tolist()) - set(self.species_z.tolist()))
        if unknown:
            names = ", ".join(chemical_symbols[z] for z in unknown)
            raise ValueError(f"atoms contain {names}, which this descriptor does not know "
                             f"(species {self.species}); build the descriptor with those elements")
        return np.searchsorted(self.species_z, numbers).astype(np.int64)

    def neighbors(self, atoms: Atoms, neighbors=None):
        """The pair list to use: ``neighbors`` if given (any cutoff ≥ ours; longer pairs are ignored)."""
        from mliplib.neighbors import neighbor_list
        return neighbor_list(atoms, self.cutoff) if neighbors is None else neighbors

    def compute(self, atoms: Atoms, gradients: bool = False, neighbors=None):
        raise NotImplementedError

    def forces_and_virial(self, atoms: Atoms, dE_dG: np.ndarray, neighbors=None):
        """Forces (n_atoms, 3) and virial (3, 3) for ∂E/∂G (n_atoms, n_features), without storing gradients."""
        raise NotImplementedError

    def values_forces_and_virial(self, atoms: Atoms, dE_dG: np.ndarray, neighbors=None):
        """(G, forces, virial) for a ∂E/∂G known before G (a linear model's weights): what an MD step of a
        linear potential needs. Subclasses whose force kernel also fills G override this with a single
        pass; this default makes two (``compute`` then ``forces_and_virial``)."""
        G = self.compute(atoms, neighbors=neighbors)
        forces, virial = self.forces_and_virial(atoms, dE_dG, neighbors=neighbors)
        return G, forces, virial

    def to_dict(self) -> dict:
        """JSON-serialisable parameters that rebuild this descriptor with :func:`descriptor_from_dict`."""
        raise NotImplementedError


def descriptor_from_dict(d: dict) -> Descriptor:
    """Rebuild a descriptor saved with ``to_dict``."""
    from mliplib.descriptors import BehlerParrinello, PLIP
    kinds = {"BehlerParrinello": BehlerParrinello, "PLIP": PLIP}
    kind = d.get("kind")
    if kind not in kinds:
        raise ValueError(f"unknown descriptor kind {kind!r}; expected one of {sorted(kinds)}")
    params = {k: v for k, v in d.items() if k != "kind"}
    return kinds[kind](**params)
