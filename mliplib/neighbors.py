"""Neighbour lists: a Numba cell list, O(N), for any cell and any subset of periodic directions.

``neighbor_list(atoms, cutoff)`` returns the *full* list (both i→j and j→i) in CSR order (i ascending):
``Pairs(i, j, shifts, vectors)`` with r_ij = r_j − r_i + shifts @ cell and |r_ij| < cutoff.
Cutoffs larger than the cell are fine (many images); isolated systems need no cell at all.
:class:`NeighborList` adds a skin for MD: the list is rebuilt only when an atom moved more than skin/2.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from ase import Atoms
from numba import njit, prange

MAX_BINS_PER_ATOM = 4  # caps the bin grid of sparse (e.g. isolated) systems


class Pairs(NamedTuple):
    """Full neighbour list. i, j: (n_pairs,) int64; shifts: (n_pairs, 3) int64 cell offsets of j;
    vectors: (n_pairs, 3) float64 r_ij in Å."""

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    vectors: np.ndarray

    def offsets(self, n_atoms: int) -> np.ndarray:
        """CSR row pointer (n_atoms + 1,): pairs of atom a are ``offsets[a]:offsets[a + 1]``."""
        return np.searchsorted(self.i, np.arange(n_atoms + 1)).astype(np.int64)

    def distances(self) -> np.ndarray:
        return np.sqrt(np.einsum("pk,pk->p", self.vectors, self.vectors))


def check_atoms(atoms: Atoms) -> None:
    """Raise a clear error for positions or cells the neighbour search cannot handle."""
    positions = atoms.positions
    if not np.all(np.isfinite(positions)):
        bad = np.flatnonzero(~np.all(np.isfinite(positions), axis=1))
        raise ValueError(f"atoms {bad[:10].tolist()} have NaN or infinite positions; fix the structure first")
    cell = atoms.cell.array
    if not np.all(np.isfinite(cell)):
        raise ValueError("the cell contains NaN or infinite entries")
    periodic = cell[atoms.pbc]
    if len(periodic):
        gram = np.linalg.det(periodic @ periodic.T)
        scale = np.prod(np.einsum("ij,ij->i", periodic, periodic))
        if not scale > 0 or gram <= 1e-12 * scale:
            raise ValueError(f"the cell vectors along periodic directions {np.flatnonzero(atoms.pbc).tolist()} "
                             f"are zero or linearly dependent (zero volume); give a proper cell or set pbc False "
                             f"along those directions")


def _search_cell(atoms: Atoms, cutoff: float):
    """Cell used for binning: the real vectors along periodic axes, orthogonal boxes spanning the atoms
    along the others. Returns (matrix (3,3) rows, origin (3,))."""
    pbc = atoms.pbc
    cell = atoms.cell.array.copy()
    if pbc.all():
        return cell, np.zeros(3)
    periodic = cell[pbc]
    # orthonormal directions perpendicular to the periodic vectors
    if len(periodic):
        q, _ = np.linalg.qr(np.column_stack([periodic.T, np.eye(3)]))
        free = q[:, len(periodic):3].T
    else:
        free = np.eye(3)
    matrix = cell.copy()
    origin = np.zeros(3)
    positions = atoms.positions
    for axis, direction in zip(np.flatnonzero(~pbc), free):
        proj = positions @ direction
        lo, hi = proj.min(), proj.max()
        matrix[axis] = direction * max(hi - lo + 1e-6, cutoff)
        origin += direction * lo
    return matrix, origin


def neighbor_list(atoms: Atoms, cutoff: float) -> Pairs:
    """All pairs with |r_ij| < ``cutoff`` (Å), both directions, i ascending.

    Periodic along ``atoms.pbc`` only; triclinic cells, cutoffs larger than the cell and isolated
    clusters are handled. Raises ValueError for NaN/inf positions, a non-positive cutoff or a
    zero-volume cell along a periodic direction.
    """
    cutoff = float(cutoff)
    if not cutoff > 0 or not np.isfinite(cutoff):
        raise ValueError(f"cutoff must be a positive finite length in Å, got {cutoff}")
    check_atoms(atoms)
    n = len(atoms)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Pairs(empty, empty, np.zeros((0, 3), np.int64), np.zeros((0, 3)))
    pbc = np.asarray(atoms.pbc, dtype=np.bool_)
    matrix, origin = _search_cell(atoms, cutoff)
    inverse = np.linalg.inv(matrix)
    frac = (atoms.positions - origin) @ inverse
    wrap = np.where(pbc, np.floor(frac), 0.0)
    frac = frac - wrap
    plane = 1.0 / np.linalg.norm(inverse, axis=0)  # distance between opposite faces, per axis
    n_bins = np.maximum(1, np.floor(plane / cutoff)).astype(np.int64)
    while np.prod(n_bins) > MAX_BINS_PER_ATOM * n and n_bins.max() > 1:
        n_bins = np.maximum(1, n_bins // 2)
    reach = np.ceil(cutoff * n_bins / plane).astype(np.int64)
    i, j, shifts = _cell_list_pairs(frac, matrix, pbc, n_bins, reach, cutoff)
    shifts += wrap.astype(np.int64)[i] - wrap.astype(np.int64)[j]
    vectors = atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array
    return Pairs(i, j, shifts, vectors)


@njit(cache=True)
def _bin_of(frac, n_bins):
    b = np.empty(3, np.int64)
    for k in range(3):
        x = int(np.floor(frac[k] * n_bins[k]))
        b[k] = min(max(x, 0), n_bins[k] - 1)
    return b


@njit(cache=True, parallel=True)
def _cell_list_pairs(frac, matrix, pbc, n_bins, reach, cutoff):
    n = frac.shape[0]
    n_cells = n_bins[0] * n_bins[1] * n_bins[2]
    atom_bin = np.empty(n, np.int64)
    for a in range(n):
        b = _bin_of(frac[a], n_bins)
        atom_bin[a] = (b[0] * n_bins[1] + b[1]) * n_bins[2] + b[2]
    start = np.zeros(n_cells + 1, np.int64)
    for a in range(n):
        start[atom_bin[a] + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    order = np.empty(n, np.int64)
    fill = start[:-1].copy()
    for a in range(n):
        order[fill[atom_bin[a]]] = a
        fill[atom_bin[a]] += 1
    cart = frac @ matrix
    cut2 = cutoff * cutoff
    counts = np.zeros(n, np.int64)
    for a in prange(n):
        counts[a] = _visit(a, frac, cart, matrix, pbc, n_bins, reach, start, order, cut2,
                           np.empty(0, np.int64), np.empty((0, 3), np.int64), 0, False)
    offsets = np.zeros(n + 1, np.int64)
    for a in range(n):
        offsets[a + 1] = offsets[a] + counts[a]
    j_out = np.empty(offsets[n], np.int64)
    s_out = np.empty((offsets[n], 3), np.int64)
    i_out = np.empty(offsets[n], np.int64)
    for a in prange(n):
        _visit(a, frac, cart, matrix, pbc, n_bins, reach, start, order, cut2, j_out, s_out, offsets[a], True)
        for p in range(offsets[a], offsets[a + 1]):
            i_out[p] = a
    return i_out, j_out, s_out


@njit(cache=True)
def _visit(a, frac, cart, matrix, pbc, n_bins, reach, start, order, cut2, j_out, s_out, first, write):
    """Count (write=False) or store (write=True, from index ``first``) the neighbours of atom a."""
    home = _bin_of(frac[a], n_bins)
    count = 0
    shift = np.empty(3, np.int64)
    nb = np.empty(3, np.int64)
    for d0 in range(-reach[0], reach[0] + 1):
        for d1 in range(-reach[1], reach[1] + 1):
            for d2 in range(-reach[2], reach[2] + 1):
                ok = True
                for k, d in enumerate((d0, d1, d2)):
                    t = home[k] + d
                    if pbc[k]:
                        shift[k] = t // n_bins[k]
                        nb[k] = t - shift[k] * n_bins[k]
                    elif t < 0 or t >= n_bins[k]:
                        ok = False
                    else:
                        shift[k] = 0
                        nb[k] = t
                if not ok:
                    continue
                dx = shift[0] * matrix[0, 0] + shift[1] * matrix[1, 0] + shift[2] * matrix[2, 0]
                dy = shift[0] * matrix[0, 1] + shift[1] * matrix[1, 1] + shift[2] * matrix[2, 1]
                dz = shift[0] * matrix[0, 2] + shift[1] * matrix[1, 2] + shift[2] * matrix[2, 2]
                c = (nb[0] * n_bins[1] + nb[1]) * n_bins[2] + nb[2]
                for q in range(start[c], start[c + 1]):
                    b = order[q]
                    if b == a and shift[0] == 0 and shift[1] == 0 and shift[2] == 0:
                        continue
                    vx = cart[b, 0] + dx - cart[a, 0]
                    vy = cart[b, 1] + dy - cart[a, 1]
                    vz = cart[b, 2] + dz - cart[a, 2]
                    if vx * vx + vy * vy + vz * vz < cut2:
                        if write:
                            j_out[first + count] = b
                            s_out[first + count, 0] = shift[0]
                            s_out[first + count, 1] = shift[1]
                            s_out[first + count, 2] = shift[2]
                        count += 1
    return count


class NeighborList:
    """Verlet list with a skin for MD: ``update(atoms)`` returns current :class:`Pairs` with cutoff
    ``cutoff + skin``; it is rebuilt only when an atom moved more than skin/2, or numbers, cell or pbc
    changed. Descriptors ignore the pairs beyond their own cutoff.
    """

    def __init__(self, cutoff: float, skin: float = 0.5):
        if skin < 0:
            raise ValueError(f"skin must be ≥ 0 Å, got {skin}")
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.pairs = None
        self.builds = 0
        self._ref = None

    def _stale(self, atoms: Atoms) -> bool:
        if self.pairs is None:
            return True
        positions, numbers, cell, pbc = self._ref
        if (len(atoms) != len(numbers) or not np.array_equal(atoms.numbers, numbers)
                or not np.array_equal(atoms.cell.array, cell) or not np.array_equal(atoms.pbc, pbc)):
            return True
        moved = np.max(np.sum((atoms.positions - positions) ** 2, axis=1)) if len(atoms) else 0.0
        return moved > (0.5 * self.skin) ** 2

    def update(self, atoms: Atoms) -> Pairs:
        if self._stale(atoms):
            self.pairs = neighbor_list(atoms, self.cutoff + self.skin)
            self._ref = (atoms.positions.copy(), atoms.numbers.copy(), atoms.cell.array.copy(), atoms.pbc.copy())
            self.builds += 1
            return self.pairs
        check_atoms(atoms)
        p = self.pairs
        vectors = atoms.positions[p.j] - atoms.positions[p.i] + p.shifts @ atoms.cell.array
        return Pairs(p.i, p.j, p.shifts, vectors)
