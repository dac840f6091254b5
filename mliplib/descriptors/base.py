"""What every atomic-environment descriptor in mliplib shares: species, one validated input path, gradients.

Gradients are stored per neighbour pair, with respect to the pair vector r_ij = r_j − r_i (+ image
shift): ``values[p, f, :] = ∂G_{i_p, f} / ∂r_{i_p j_p}``. Any energy E(G) then has

    F_j −= g_p,  F_i += g_p,  virial W −= r_p ⊗ g_p,   with g_p = Σ_f (∂E/∂G_{i_p f}) values[p, f],

so forces and stress come from two contractions and periodic images need no special case.

Every entry point of every descriptor (:meth:`Descriptor.compute`, :meth:`Descriptor.forces_and_virial`,
:meth:`Descriptor.values_forces_and_virial`) goes through :meth:`Descriptor.pairs` (a passed neighbour
list is checked by :func:`mliplib.neighbors.check_pairs`, overlapping atoms are refused, pairs at or
beyond the cutoff dropped) and ends in the one scatter kernel :func:`scatter_forces_and_virial`. A
subclass supplies only its kernel, :meth:`Descriptor._evaluate`, and its parameters.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from numba import njit

from mliplib.neighbors import Pairs, check_pairs, neighbor_list

#: Å; pairs closer than this are overlapping atoms, for which no descriptor is defined (an error)
MIN_DISTANCE = 1e-8

#: kernel modes (what :meth:`Descriptor._evaluate` fills besides G)
VALUES, GRADIENTS, FORCES = 0, 1, 2

#: descriptor kind (class name) → class, filled as subclasses are defined; read by descriptor_from_dict
KINDS: dict[str, type] = {}


@njit(cache=True)
def scatter_forces_and_virial(i, j, vectors, gpair, n_atoms):
    """Forces and virial from per-pair energy gradients: F_j −= g_p, F_i += g_p, W −= r_p ⊗ g_p.

    Parameters
    ----------
    i, j : numpy.ndarray, shape (n_pairs,), int64
        Centre and neighbour of each pair.
    vectors : numpy.ndarray, shape (n_pairs, 3)
        r_ij in Å.
    gpair : numpy.ndarray, shape (n_pairs, 3)
        g_p = ∂E/∂r_ij in eV/Å.
    n_atoms : int
        Number of atoms.

    Returns
    -------
    forces : numpy.ndarray, shape (n_atoms, 3)
        −∂E/∂r_a in eV/Å.
    virial : numpy.ndarray, shape (3, 3)
        W in eV (ASE stress = −W / volume).
    """
    forces = np.zeros((n_atoms, 3))
    virial = np.zeros((3, 3))
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        for x in range(3):
            g = gpair[p, x]
            forces[b, x] -= g
            forces[a, x] += g
            for y in range(3):
                virial[y, x] -= vectors[p, y] * g
    return forces, virial


@njit(cache=True)
def pair_energy_gradients(i, values, dE_dG):
    """g_p = Σ_f dE_dG[i_p, f] values[p, f, :] for stored per-pair gradients.

    Parameters
    ----------
    i : numpy.ndarray, shape (n_pairs,), int64
        Centre of each pair.
    values : numpy.ndarray, shape (n_pairs, n_features, 3)
        ∂G_{i_p f}/∂r_p in [G]/Å.
    dE_dG : numpy.ndarray, shape (n_atoms, n_features)
        ∂E/∂G in eV/[G].

    Returns
    -------
    numpy.ndarray, shape (n_pairs, 3)
        ∂E/∂r_p in eV/Å.
    """
    out = np.zeros((i.shape[0], 3))
    for p in range(i.shape[0]):
        a = i[p]
        for f in range(values.shape[1]):
            w = dE_dG[a, f]
            for x in range(3):
                out[p, x] += w * values[p, f, x]
    return out


@njit(cache=True)
def _shortest_pair(vectors):
    """(index, squared length) of the shortest pair vector; (−1, inf) for none."""
    best, shortest = np.inf, -1
    for p in range(vectors.shape[0]):
        d2 = vectors[p, 0] * vectors[p, 0] + vectors[p, 1] * vectors[p, 1] + vectors[p, 2] * vectors[p, 2]
        if d2 < best:
            best, shortest = d2, p
    return shortest, best


@njit(cache=True)
def _pairs_within(i, j, shifts, vectors, cutoff):
    """The pairs with |r_ij| < cutoff, in the same order (the input arrays themselves when all are)."""
    cut2 = cutoff * cutoff
    keep = np.empty(i.shape[0], np.bool_)
    count = 0
    for p in range(i.shape[0]):
        keep[p] = vectors[p, 0] * vectors[p, 0] + vectors[p, 1] * vectors[p, 1] + vectors[p, 2] * vectors[p, 2] < cut2
        count += keep[p]
    if count == i.shape[0]:
        return i, j, shifts, vectors
    i2, j2 = np.empty(count, np.int64), np.empty(count, np.int64)
    s2, v2 = np.empty((count, 3), np.int64), np.empty((count, 3))
    q = 0
    for p in range(i.shape[0]):
        if keep[p]:
            i2[q], j2[q] = i[p], j[p]
            for x in range(3):
                s2[q, x] = shifts[p, x]
                v2[q, x] = vectors[p, x]
            q += 1
    return i2, j2, s2, v2


@dataclasses.dataclass
class Gradients:
    """Per-pair descriptor gradients of one structure.

    Attributes
    ----------
    i, j : numpy.ndarray, shape (n_pairs,), int64
        Centre and neighbour indices (pairs within the cutoff, i ascending).
    vectors : numpy.ndarray, shape (n_pairs, 3)
        r_ij in Å.
    values : numpy.ndarray, shape (n_pairs, n_features, 3)
        ∂G_i/∂r_ij in [G]/Å.
    n_atoms : int
        Atoms in the structure.
    """

    i: np.ndarray
    j: np.ndarray
    vectors: np.ndarray
    values: np.ndarray
    n_atoms: int

    def forces_and_virial(self, dE_dG: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forces and virial of an energy with per-atom derivatives ``dE_dG``.

        Parameters
        ----------
        dE_dG : numpy.ndarray, shape (n_atoms, n_features)
            ∂E/∂G in eV/[G].

        Returns
        -------
        forces : numpy.ndarray, shape (n_atoms, 3)
            eV/Å.
        virial : numpy.ndarray, shape (3, 3)
            eV (ASE stress = −W / volume).
        """
        gpair = pair_energy_gradients(self.i, self.values, np.ascontiguousarray(dE_dG, dtype=np.float64))
        return scatter_forces_and_virial(self.i, self.j, self.vectors, gpair, self.n_atoms)

    def forces(self, dE_dG: np.ndarray) -> np.ndarray:
        """Forces for per-atom energy derivatives; see :meth:`forces_and_virial`.

        Parameters
        ----------
        dE_dG : numpy.ndarray, shape (n_atoms, n_features)
            ∂E/∂G of every atom, eV per descriptor unit.

        Returns
        -------
        numpy.ndarray, shape (n_atoms, 3)
            Forces in eV/Å.
        """
        return self.forces_and_virial(dE_dG)[0]

    def virial(self, dE_dG: np.ndarray) -> np.ndarray:
        """Virial for per-atom energy derivatives; see :meth:`forces_and_virial`.

        Parameters
        ----------
        dE_dG : numpy.ndarray, shape (n_atoms, n_features)
            ∂E/∂G of every atom, eV per descriptor unit.

        Returns
        -------
        numpy.ndarray, shape (3, 3)
            Virial W in eV; ASE stress is −W/V.
        """
        return self.forces_and_virial(dE_dG)[1]

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays, in bytes."""
        return self.values.nbytes + self.vectors.nbytes + self.i.nbytes + self.j.nbytes


def species_numbers(species) -> np.ndarray:
    """Sorted unique atomic numbers of ``species``.

    Parameters
    ----------
    species : iterable of str or int
        Element symbols or atomic numbers.

    Returns
    -------
    numpy.ndarray, shape (n_species,), int64

    Raises
    ------
    ValueError
        For an unknown element or an empty list.
    """
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
    """Base class of the atomic-environment descriptors: validated inputs, values, gradients, forces.

    Subclasses set ``species_z`` (sorted atomic numbers), ``cutoff`` (Å), ``feature_names`` and
    ``centre_resolved`` (True when features already encode the centre's element, so a linear model
    shares one weight vector across elements; False when a model needs one weight vector per element),
    and implement :meth:`_evaluate` (the kernel) and :meth:`to_dict`. Defining a subclass registers it
    for :func:`descriptor_from_dict` under its class name.
    """

    species_z: np.ndarray
    cutoff: float
    feature_names: list
    centre_resolved: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        KINDS[cls.__name__] = cls

    @property
    def species(self) -> list[str]:
        """Element symbols, sorted by atomic number."""
        return [chemical_symbols[z] for z in self.species_z]

    @property
    def n_features(self) -> int:
        """Number of features (columns of G)."""
        return len(self.feature_names)

    def species_index(self, atoms: Atoms) -> np.ndarray:
        """Index into ``species_z`` of every atom.

        Parameters
        ----------
        atoms : ase.Atoms

        Returns
        -------
        numpy.ndarray, shape (n_atoms,), int64

        Raises
        ------
        ValueError
            For elements the descriptor does not know.
        """
        if not isinstance(atoms, Atoms):
            raise TypeError(f"expected an ase.Atoms, got {type(atoms).__name__}")
        numbers = atoms.numbers
        unknown = sorted(set(numbers.tolist()) - set(self.species_z.tolist()))
        if unknown:
            names = ", ".join(chemical_symbols[z] for z in unknown)
            raise ValueError(f"atoms contain {names}, which this descriptor does not know "
                             f"(species {self.species}); build the descriptor with those elements")
        return np.searchsorted(self.species_z, numbers).astype(np.int64)

    def neighbors(self, atoms: Atoms) -> Pairs:
        """The neighbour list this descriptor needs: ``neighbor_list(atoms, self.cutoff)``.

        Parameters
        ----------
        atoms : ase.Atoms

        Returns
        -------
        mliplib.neighbors.Pairs
        """
        return neighbor_list(atoms, self.cutoff)

    def pairs(self, atoms: Atoms, neighbors: Pairs | None = None) -> Pairs:
        """The validated pairs the kernels use: every pair with |r_ij| < cutoff, in CSR order.

        Parameters
        ----------
        atoms : ase.Atoms
        neighbors : mliplib.neighbors.Pairs or None
            A list of ``atoms`` complete within ``pairs.cutoff`` ≥ ``self.cutoff`` (e.g. from
            :class:`mliplib.neighbors.NeighborList` with a skin), checked by
            :func:`mliplib.neighbors.check_pairs`; None builds one.

        Returns
        -------
        mliplib.neighbors.Pairs
            The pairs within the cutoff (longer ones dropped), ``cutoff`` = ``self.cutoff``.

        Raises
        ------
        ValueError
            For a stale, incomplete or malformed list, and for overlapping atoms (closer than
            :data:`MIN_DISTANCE`).
        """
        if neighbors is None:
            pairs = neighbor_list(atoms, self.cutoff)
        else:
            check_pairs(atoms, neighbors, self.cutoff)
            pairs = neighbors
        i, j, shifts, vectors = (np.ascontiguousarray(x, dtype=d)
                                 for x, d in zip(pairs, (np.int64, np.int64, np.int64, np.float64)))
        p, d2 = _shortest_pair(vectors)
        if d2 < MIN_DISTANCE ** 2:
            a, b, shift = int(i[p]), int(j[p]), tuple(int(s) for s in shifts[p])
            symbols = atoms.get_chemical_symbols()
            what = (f"atom {a} ({symbols[a]}) and its periodic image {shift}" if a == b else
                    f"atoms {a} ({symbols[a]}) and {b} ({symbols[b]}, image shift {shift})")
            raise ValueError(f"{what} overlap ({np.sqrt(d2):.3g} Å apart, closer than {MIN_DISTANCE} Å); "
                             f"the descriptor is undefined there: remove the duplicate atom")
        return Pairs(*_pairs_within(i, j, shifts, vectors, self.cutoff), self.cutoff)

    def _evaluate(self, mode: int, species: np.ndarray, offsets: np.ndarray, j: np.ndarray,
                  vectors: np.ndarray, dE_dG: np.ndarray, G: np.ndarray, grad: np.ndarray,
                  gpair: np.ndarray) -> None:
        """The kernel: fill G and, by ``mode``, ``grad`` (GRADIENTS) or ``gpair`` (FORCES).

        Called with validated inputs only: ``species`` (n_atoms,) indices into ``species_z``, the CSR
        row pointer ``offsets`` (n_atoms + 1,), neighbours ``j`` (n_pairs,) and ``vectors``
        (n_pairs, 3) of pairs with MIN_DISTANCE ≤ r < cutoff; ``G`` (n_atoms, n_features) zeroed;
        ``grad`` (n_pairs, n_features, 3) zeroed in mode GRADIENTS (empty otherwise) to receive
        ∂G_if/∂r_p; ``dE_dG`` (n_atoms, n_features) and ``gpair`` (n_pairs, 3) in mode FORCES (empty
        otherwise) to receive Σ_f dE_dG[i, f] ∂G_if/∂r_p.
        """
        raise NotImplementedError

    def _run(self, atoms: Atoms, mode: int, neighbors, dE_dG=None):
        species = self.species_index(atoms)
        pairs = self.pairs(atoms, neighbors)
        n, F, n_pairs = len(atoms), self.n_features, len(pairs.i)
        G = np.zeros((n, F))
        grad = np.zeros((n_pairs if mode == GRADIENTS else 0, F, 3))
        gpair = np.zeros((n_pairs if mode == FORCES else 0, 3))
        if dE_dG is None:
            dE_dG = np.zeros((0, F))
        if n:
            self._evaluate(mode, species, pairs.offsets(n), pairs.j, pairs.vectors, dE_dG, G, grad, gpair)
        return G, pairs, grad, gpair

    def _dE_dG(self, atoms: Atoms, dE_dG) -> np.ndarray:
        dE_dG = np.ascontiguousarray(dE_dG, dtype=np.float64)
        if dE_dG.shape != (len(atoms), self.n_features):
            raise ValueError(f"dE_dG must have shape (n_atoms, n_features) = ({len(atoms)}, {self.n_features}); "
                             f"got {dE_dG.shape}")
        return dE_dG

    def compute(self, atoms: Atoms, gradients: bool = False, neighbors: Pairs | None = None):
        """Descriptor values, and optionally their per-pair gradients.

        Parameters
        ----------
        atoms : ase.Atoms
        gradients : bool
            Also return the per-pair gradients. They take n_pairs × n_features × 24 bytes; for forces
            and stress prefer :meth:`forces_and_virial`.
        neighbors : mliplib.neighbors.Pairs or None
            See :meth:`pairs`; a stale or too short list is refused.

        Returns
        -------
        G : numpy.ndarray, shape (n_atoms, n_features), float64
        gradients : Gradients
            Only with ``gradients=True``: ∂G_i/∂r_ij for every pair with r_ij < cutoff.
        """
        if not gradients:
            return self._run(atoms, VALUES, neighbors)[0]
        G, pairs, grad, _ = self._run(atoms, GRADIENTS, neighbors)
        return G, Gradients(pairs.i, pairs.j, pairs.vectors, grad, len(atoms))

    def forces_and_virial(self, atoms: Atoms, dE_dG: np.ndarray, neighbors: Pairs | None = None):
        """Forces and virial of an energy E(G) with known ∂E/∂G, contracted on the fly.

        Memory is O(n_pairs), not O(n_pairs × n_features): no per-pair gradient is stored.

        Parameters
        ----------
        atoms : ase.Atoms
        dE_dG : numpy.ndarray, shape (n_atoms, n_features)
            ∂E/∂G in eV/[G].
        neighbors : mliplib.neighbors.Pairs or None
            See :meth:`pairs`.

        Returns
        -------
        forces : numpy.ndarray, shape (n_atoms, 3)
            eV/Å.
        virial : numpy.ndarray, shape (3, 3)
            W = −Σ_pairs r_ij ⊗ ∂E/∂r_ij in eV (ASE stress = −W / volume).
        """
        return self.values_forces_and_virial(atoms, dE_dG, neighbors)[1:]

    def values_forces_and_virial(self, atoms: Atoms, dE_dG: np.ndarray, neighbors: Pairs | None = None):
        """G, forces and virial in one kernel pass, for a ∂E/∂G known before G (a linear model's weights).

        Parameters
        ----------
        atoms : ase.Atoms
        dE_dG : numpy.ndarray, shape (n_atoms, n_features)
            ∂E/∂G in eV/[G].
        neighbors : mliplib.neighbors.Pairs or None
            See :meth:`pairs`.

        Returns
        -------
        G : numpy.ndarray, shape (n_atoms, n_features)
            Equal to ``compute(atoms)``.
        forces : numpy.ndarray, shape (n_atoms, 3)
            eV/Å, equal to ``forces_and_virial(atoms, dE_dG)[0]``.
        virial : numpy.ndarray, shape (3, 3)
            eV, equal to ``forces_and_virial(atoms, dE_dG)[1]``.
        """
        dE_dG = self._dE_dG(atoms, dE_dG)
        G, pairs, _, gpair = self._run(atoms, FORCES, neighbors, dE_dG)
        forces, virial = scatter_forces_and_virial(pairs.i, pairs.j, pairs.vectors, gpair, len(atoms))
        return G, forces, virial

    def to_dict(self) -> dict:
        """JSON-serialisable parameters that rebuild this descriptor with :func:`descriptor_from_dict`."""
        raise NotImplementedError


def descriptor_from_dict(d: dict) -> Descriptor:
    """Rebuild a descriptor saved with ``to_dict``.

    Parameters
    ----------
    d : dict
        ``{"kind": class name, **constructor parameters}``.

    Returns
    -------
    Descriptor

    Raises
    ------
    ValueError
        For a kind no descriptor class registered.
    """
    kind = d.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown descriptor kind {kind!r}; expected one of {sorted(KINDS)}")
    return KINDS[kind](**{k: v for k, v in d.items() if k != "kind"})
