"""Neighbour lists: a Numba cell list, O(N), for any cell and any subset of periodic directions.

``neighbor_list(atoms, cutoff)`` returns the *full* list (both i→j and j→i) in CSR order (i ascending):
``Pairs(i, j, shifts, vectors)`` with r_ij = r_j − r_i + shifts @ cell and |r_ij| < cutoff.
Cutoffs larger than the cell are fine (many images); isolated systems need no cell at all.
:class:`NeighborList` adds a skin for MD: the list is rebuilt only when an atom moved more than skin/2.

How the cell list works (``engine="mliplib"``, the default):

1. a *search cell* is chosen: the real cell vectors along periodic axes, and along the other axes
   orthogonal vectors spanning the atoms (so isolated clusters and slabs need no cell);
2. atoms are wrapped into the cell along periodic axes (the integer wraps are added back to the
   shifts) and counting-sorted into a grid of bins about cutoff/2 wide (distance between opposite bin
   faces ≥ cutoff/``BIN_DIVISIONS``), so that the atoms of a bin are contiguous in memory;
3. each bin scans the bins within ``reach`` (per axis: enough bins to cover the cutoff, more than one
   cell's worth when the cutoff exceeds the cell) as a few contiguous runs of atoms, each with one image
   shift;
4. a first pass counts the neighbours of every atom, the output arrays are allocated once (by numpy,
   which asks the kernel for huge pages), and a second pass writes them in CSR order.

``engine="vesin"`` uses the C++ library `vesin` (optional dependency) and reorders its output into the
same CSR order; see ``benchmarks/neighbors.py`` for the comparison.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from ase import Atoms
from ase.geometry import minkowski_reduce
from numba import njit, prange

MAX_BINS_PER_ATOM = 4  # caps the bin grid of sparse (e.g. isolated) systems
BIN_DIVISIONS = 2  # bins ≥ cutoff/2 wide, 5×5×5 scanned: 15.6 rc³ searched instead of 27 rc³ with cutoff-wide bins
PARALLEL_MIN_ATOMS = 20_000  # below this, threads cost more than they save (measured in benchmarks/neighbors.py)
ENGINES = ("mliplib", "vesin")
#: Å; a periodic lattice with a shorter vector is refused (every atom would overlap its own image)
MIN_IMAGE_DISTANCE = 0.5
#: cells; atoms farther outside the cell along a periodic direction are refused (precision lost)
MAX_CELLS_AWAY = 1e6
#: Å; pair vectors that differ more from r_j − r_i + shifts @ cell mark a list as stale
STALE_TOLERANCE = 1e-6
DEFAULT_ENGINE = "mliplib"  # fastest in benchmarks/neighbors.py (see benchmarks/README.md)


class _PairArrays(NamedTuple):
    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    vectors: np.ndarray


class Pairs(_PairArrays):
    """Full neighbour list: a named 4-tuple ``(i, j, shifts, vectors)`` that also knows its cutoff.

    Parameters
    ----------
    i, j : numpy.ndarray, shape (n_pairs,), int64
        Centre and neighbour indices, ``i`` ascending (CSR order).
    shifts : numpy.ndarray, shape (n_pairs, 3), int64
        Cell offsets of the neighbour's image: r_ij = r_j − r_i + shifts @ cell.
    vectors : numpy.ndarray, shape (n_pairs, 3), float64
        r_ij in Å.
    cutoff : float or None
        Distance in Å within which the list is complete (every pair with |r_ij| < cutoff is in it);
        ``None`` when unknown. Set by :func:`neighbor_list` and :meth:`NeighborList.update`; descriptors
        refuse a list whose cutoff is unknown or shorter than theirs. Not a tuple field, so
        ``i, j, shifts, vectors = pairs`` unpacks as before.
    """

    cutoff = None

    def __new__(cls, i, j, shifts, vectors, cutoff=None):
        pairs = super().__new__(cls, i, j, shifts, vectors)
        pairs.cutoff = None if cutoff is None else float(cutoff)
        return pairs

    def __getnewargs__(self):
        return (*self, self.cutoff)

    def offsets(self, n_atoms: int) -> np.ndarray:
        """CSR row pointer.

        Parameters
        ----------
        n_atoms : int
            Number of atoms of the structure.

        Returns
        -------
        numpy.ndarray, shape (n_atoms + 1,), int64
            Pairs of atom a are ``offsets[a]:offsets[a + 1]``.
        """
        return np.searchsorted(self.i, np.arange(n_atoms + 1)).astype(np.int64)

    def distances(self) -> np.ndarray:
        """Pair distances |r_ij|, shape (n_pairs,), in Å."""
        return np.sqrt(np.einsum("pk,pk->p", self.vectors, self.vectors))


def check_atoms(atoms: Atoms) -> None:
    """Raise a clear ValueError, before any search, for positions or cells no neighbour search can take.

    Refused: NaN or infinite positions or cell entries; periodic cell vectors that are zero or linearly
    dependent; a periodic lattice with a vector shorter than :data:`MIN_IMAGE_DISTANCE` (every atom
    would overlap its own image, and the search would list millions of images); atoms more than
    :data:`MAX_CELLS_AWAY` cells outside the cell along a periodic direction (so far out their positions
    have lost the precision of a bond length; wrapping them, ``atoms.wrap()``, changes nothing physical).
    Far away along a non-periodic direction is legal.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Raises
    ------
    ValueError
        Naming the atoms or the cell lengths at fault and what to do.
    """
    positions = atoms.positions
    if not np.all(np.isfinite(positions)):
        bad = np.flatnonzero(~np.all(np.isfinite(positions), axis=1))
        raise ValueError(f"atoms {bad[:10].tolist()} have NaN or infinite positions; fix the structure first")
    cell = atoms.cell.array
    if not np.all(np.isfinite(cell)):
        raise ValueError("the cell contains NaN or infinite entries")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        return
    periodic = cell[pbc]
    metric = periodic @ periodic.T
    scale = np.prod(np.diag(metric))
    if not scale > 0 or np.linalg.det(metric) <= 1e-12 * scale:
        raise ValueError(f"the cell vectors along periodic directions {np.flatnonzero(pbc).tolist()} "
                         f"are zero or linearly dependent (zero volume); give a proper cell or set pbc False "
                         f"along those directions")
    to_fractional = periodic.T @ np.linalg.inv(metric)  # (3, n_periodic): coordinates along the periodic axes
    # every lattice vector is at least as long as the smallest spacing of lattice planes; only when that
    # cheap bound is too short is the shortest vector looked for (Minkowski reduction)
    if 1.0 / np.linalg.norm(to_fractional, axis=0).max() < MIN_IMAGE_DISTANCE:
        reduced, _ = minkowski_reduce(cell, pbc=pbc)
        shortest = np.linalg.norm(reduced[pbc], axis=1).min()
        if shortest < MIN_IMAGE_DISTANCE:
            lengths = ", ".join(f"{x:.3g}" for x in atoms.cell.lengths())
            raise ValueError(f"the periodic lattice has a vector of {shortest:.3g} Å (cell lengths {lengths} Å, "
                             f"pbc {pbc.tolist()}): every atom would be that close to its own periodic image, "
                             f"closer than {MIN_IMAGE_DISTANCE} Å; is the cell in Å, and the right one?")
    if len(positions):
        fractional = positions @ to_fractional
        far = np.flatnonzero(np.any(np.abs(fractional) > MAX_CELLS_AWAY, axis=1))
        if len(far):
            raise ValueError(f"atoms {far[:10].tolist()} lie up to {np.abs(fractional).max():.3g} cells outside "
                             f"the cell along periodic directions (more than {MAX_CELLS_AWAY:.0e}), where their "
                             f"positions have lost precision; wrap them into the cell first (atoms.wrap(), "
                             f"which changes nothing physical)")


def check_pairs(atoms: Atoms, pairs: Pairs, cutoff: float) -> None:
    """Raise a clear ValueError unless ``pairs`` is a current, complete list of ``atoms`` within ``cutoff``.

    Checked: the type (a :class:`Pairs`), consistent array lengths, indices inside the structure, CSR
    order (i ascending), a known list cutoff ≥ ``cutoff`` (so no pair within ``cutoff`` can be missing),
    the atoms themselves (:func:`check_atoms`), and every vector equal to r_j − r_i + shifts @ cell
    within :data:`STALE_TOLERANCE` (a list built for other positions, cell or structure is stale).
    Costs one pass over the pairs.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure the list must describe.
    pairs : Pairs
        The list, e.g. from :func:`neighbor_list` or :meth:`NeighborList.update`.
    cutoff : float
        Distance in Å within which the list must be complete (a descriptor's cutoff).

    Raises
    ------
    ValueError
        Saying what does not match and how to obtain a valid list.
    """
    how = f"use neighbor_list(atoms, {cutoff:g}) or NeighborList(cutoff ≥ {cutoff:g}).update(atoms)"
    if not isinstance(pairs, Pairs):
        raise TypeError(f"neighbors must be a mliplib.neighbors.Pairs; got {type(pairs).__name__}; {how}")
    if pairs.cutoff is None or not pairs.cutoff >= cutoff:
        known = "unknown" if pairs.cutoff is None else f"{pairs.cutoff:g} Å"
        raise ValueError(f"neighbors is complete only within {known}, less than the {cutoff:g} Å needed "
                         f"(pairs could be missing); {how}")
    i, j, shifts, vectors = (np.asarray(x) for x in pairs)
    n = len(atoms)
    if i.ndim != 1 or j.shape != i.shape or shifts.shape != (len(i), 3) or vectors.shape != (len(i), 3):
        raise ValueError(f"neighbors: i, j (n_pairs,), shifts and vectors (n_pairs, 3) have inconsistent "
                         f"shapes {i.shape}, {j.shape}, {shifts.shape}, {vectors.shape}; {how}")
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"neighbors refer to atoms outside 0..{n - 1}: the list was built for another "
                         f"structure; {how}")
    if np.any(np.diff(i) < 0):
        raise ValueError(f"neighbors.i must be sorted ascending (CSR order), as neighbor_list returns it; {how}")
    check_atoms(atoms)
    if len(i):
        error = _max_vector_error(np.ascontiguousarray(atoms.positions, dtype=np.float64),
                                  np.ascontiguousarray(atoms.cell.array, dtype=np.float64),
                                  i.astype(np.int64, copy=False), j.astype(np.int64, copy=False),
                                  shifts.astype(np.int64, copy=False), vectors.astype(np.float64, copy=False))
        if not error <= STALE_TOLERANCE:
            raise ValueError(f"neighbors.vectors differ from the atoms' positions and cell by up to {error:.3g} Å: "
                             f"the list is stale or for another structure; {how}")


def _check_cutoff(cutoff) -> float:
    cutoff = float(cutoff)
    if not cutoff > 0 or not np.isfinite(cutoff):
        raise ValueError(f"cutoff must be a positive finite length in Å, got {cutoff}")
    return cutoff


def _check_engine(engine) -> str:
    engine = DEFAULT_ENGINE if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return engine


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
        if not np.isfinite(hi - lo):
            raise ValueError(f"the atoms span more than 1e308 Å along non-periodic direction {axis}; "
                             f"bring them closer together")
        matrix[axis] = direction * max((hi - lo) * (1 + 1e-9) + 1e-6, cutoff)
        origin += direction * lo
    return matrix, origin


def _grid(matrix: np.ndarray, cutoff: float, n_atoms: int):
    """Bins per axis and how many bins to scan each way. Returns (inverse, n_bins, reach)."""
    inverse = np.linalg.inv(matrix)
    # distance between opposite faces per axis, 1 / |column k of the inverse|, computed from unit rows so
    # that a huge axis (an atom 1e300 Å away along a non-periodic direction) does not underflow
    largest = np.abs(matrix).max(axis=1)
    lengths = largest * np.linalg.norm(matrix / largest[:, None], axis=1)  # no overflow of squares
    plane = lengths / np.linalg.norm(np.linalg.inv(matrix / lengths[:, None]), axis=0)
    # the margin keeps bins ≥ cutoff/BIN_DIVISIONS wide despite rounding, so reach stays BIN_DIVISIONS
    # capped in floating point first: an atom far away along a non-periodic axis spans a huge search cell
    # (1e300 Å is legal), whose bin count would not fit an integer; the loop below coarsens it further
    n_bins = np.clip(np.floor(plane * BIN_DIVISIONS / (cutoff * (1 + 1e-9))), 1, MAX_BINS_PER_ATOM * n_atoms)
    n_bins = n_bins.astype(np.int64)
    while np.prod(n_bins.astype(float)) > MAX_BINS_PER_ATOM * n_atoms and n_bins.max() > 1:
        axis = np.argmax(n_bins)  # coarsen the finest axis only: sparse along one axis ≠ sparse along all
        n_bins[axis] = max(1, n_bins[axis] // 2)
    # a neighbour within the cutoff is at most cutoff / plane cells, i.e. ceil(cutoff * n_bins / plane)
    # bins, away along each axis; the tiny factor only errs on the safe side
    reach = np.ceil(cutoff * n_bins / plane * (1 + 1e-12)).astype(np.int64)
    return inverse, n_bins, reach


def neighbor_list(atoms: Atoms, cutoff: float, engine: str | None = None) -> Pairs:
    """All pairs with |r_ij| < ``cutoff``, both directions, i ascending.

    Periodic along ``atoms.pbc`` only; triclinic cells, cutoffs larger than the cell and isolated
    clusters are handled.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure; checked by :func:`check_atoms` first.
    cutoff : float
        Cutoff radius in Å, > 0.
    engine : {"mliplib", "vesin"} or None
        ``"mliplib"``: this module's Numba cell list; ``"vesin"``: the optional C++ library. Both give
        the same pairs in CSR order (the order of j within a row differs). None: :data:`DEFAULT_ENGINE`.

    Returns
    -------
    Pairs
        ``(i, j, shifts, vectors)`` with ``cutoff`` set; i, j (n_pairs,) int64, shifts (n_pairs, 3)
        int64, vectors (n_pairs, 3) float64 in Å, r_ij = r_j − r_i + shifts @ cell.

    Raises
    ------
    ValueError
        For a non-positive or non-finite cutoff, an unknown engine, or atoms :func:`check_atoms` refuses.
    """
    cutoff = _check_cutoff(cutoff)
    engine = _check_engine(engine)
    check_atoms(atoms)
    n = len(atoms)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Pairs(empty, empty.copy(), np.zeros((0, 3), np.int64), np.zeros((0, 3)), cutoff)
    if engine == "vesin":
        return _vesin_pairs(atoms, cutoff)
    pbc = np.asarray(atoms.pbc, dtype=np.bool_)
    positions = np.ascontiguousarray(atoms.positions, dtype=np.float64)
    cell = np.ascontiguousarray(atoms.cell.array, dtype=np.float64)
    matrix, origin = _search_cell(atoms, cutoff)
    inverse, n_bins, reach = _grid(matrix, cutoff, n)
    start, order, xs, ys, zs, wraps = _bin_atoms(positions, cell, inverse, origin, pbc, n_bins)
    parallel = n >= PARALLEL_MIN_ATOMS and numba.get_num_threads() > 1
    n_chunks = min(len(start) - 1, 64 * numba.get_num_threads()) if parallel else 1
    count = _count_parallel if parallel else _count_serial
    fill = _fill_parallel if parallel else _fill_serial
    counts = np.empty(n, np.int64)
    count(start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, n_chunks, counts)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    n_pairs = int(offsets[-1])
    # allocated by numpy, not inside Numba: numpy asks for transparent huge pages, which makes the first
    # touch of these (often 100 MB+) arrays several times cheaper
    i = np.empty(n_pairs, np.int64)
    j = np.empty(n_pairs, np.int64)
    shifts = np.empty((n_pairs, 3), np.int64)
    vectors = np.empty((n_pairs, 3), np.float64)
    fill(start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, n_chunks, offsets,
         i, j, shifts, vectors)
    return Pairs(i, j, shifts, vectors, cutoff)


# ---------------------------------------------------------------------------------------------------
# Numba kernels


@njit(cache=True)
def _bin_atoms(positions, cell, inverse, origin, pbc, n_bins):
    """Wrap atoms into the cell along periodic axes and counting-sort them by bin.

    Returns start (n_cells + 1,) (atoms of bin c are sorted slots start[c]:start[c+1]), order (n,)
    (original index of each slot), xs, ys, zs (n,) wrapped Cartesian positions by slot and wraps (n, 3)
    (integer cell offsets removed by wrapping, by slot: position = wrapped + wraps @ cell).
    """
    n = positions.shape[0]
    n0, n1, n2 = n_bins[0], n_bins[1], n_bins[2]
    n_cells = n0 * n1 * n2
    wrap = np.zeros((n, 3), np.int64)
    atom_bin = np.empty(n, np.int64)
    bins = np.empty(3, np.int64)
    for a in range(n):
        for k in range(3):
            f = ((positions[a, 0] - origin[0]) * inverse[0, k] + (positions[a, 1] - origin[1]) * inverse[1, k]
                 + (positions[a, 2] - origin[2]) * inverse[2, k])
            if pbc[k]:
                w = np.floor(f)
                f -= w
                wrap[a, k] = np.int64(w)
            b = np.int64(np.floor(f * n_bins[k]))  # rounding or a non-periodic edge: clamp
            bins[k] = min(max(b, 0), n_bins[k] - 1)
        atom_bin[a] = (bins[0] * n1 + bins[1]) * n2 + bins[2]
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
    xs = np.empty(n)
    ys = np.empty(n)
    zs = np.empty(n)
    wraps = np.empty((n, 3), np.int64)
    for q in range(n):
        a = order[q]
        w0, w1, w2 = wrap[a, 0], wrap[a, 1], wrap[a, 2]
        xs[q] = positions[a, 0] - (w0 * cell[0, 0] + w1 * cell[1, 0] + w2 * cell[2, 0])
        ys[q] = positions[a, 1] - (w0 * cell[0, 1] + w1 * cell[1, 1] + w2 * cell[2, 1])
        zs[q] = positions[a, 2] - (w0 * cell[0, 2] + w1 * cell[1, 2] + w2 * cell[2, 2])
        wraps[q, 0] = w0
        wraps[q, 1] = w1
        wraps[q, 2] = w2
    return start, order, xs, ys, zs, wraps


@njit(cache=True, inline="always")
def _image_bin(t, n, periodic):
    """Bin index t (may lie outside 0..n−1) → (image shift, bin in 0..n−1, valid); invalid outside a
    non-periodic axis."""
    if periodic:
        s = t // n
        return s, t - s * n, True
    return 0, t, 0 <= t < n


@njit(cache=True)
def _segments(c, n_bins, reach, pbc, cell, start, seg_lo, seg_hi, seg_shift, seg_vec):
    """Atoms to scan around home bin c: runs of sorted slots seg_lo[s]:seg_hi[s], each with one image
    shift seg_shift[s] (integer) / seg_vec[s] (Å). Bins adjacent along the last axis with the same
    shift are merged into one run. Returns the number of runs."""
    n0, n1, n2 = n_bins[0], n_bins[1], n_bins[2]
    h0 = c // (n1 * n2)
    h1 = (c // n2) % n1
    h2 = c % n2
    n_seg = 0
    for d0 in range(-reach[0], reach[0] + 1):
        s0, b0, ok0 = _image_bin(h0 + d0, n0, pbc[0])
        if not ok0:
            continue
        for d1 in range(-reach[1], reach[1] + 1):
            s1, b1, ok1 = _image_bin(h1 + d1, n1, pbc[1])
            if not ok1:
                continue
            row = (b0 * n1 + b1) * n2
            row_first = n_seg
            for d2 in range(-reach[2], reach[2] + 1):
                s2, b2, ok2 = _image_bin(h2 + d2, n2, pbc[2])
                if not ok2:
                    continue
                lo = start[row + b2]
                hi = start[row + b2 + 1]
                if hi == lo:
                    continue
                last = n_seg - 1
                if n_seg > row_first and seg_shift[last, 2] == s2 and seg_hi[last] == lo:
                    seg_hi[last] = hi
                    continue
                seg_lo[n_seg] = lo
                seg_hi[n_seg] = hi
                seg_shift[n_seg, 0] = s0
                seg_shift[n_seg, 1] = s1
                seg_shift[n_seg, 2] = s2
                for k in range(3):
                    seg_vec[n_seg, k] = s0 * cell[0, k] + s1 * cell[1, k] + s2 * cell[2, k]
                n_seg += 1
    return n_seg


@njit(cache=True)
def _gather(c, n_bins, reach, pbc, cell, start, order, xs, ys, zs, wraps, work):
    """Candidates of home bin c, copied contiguously with their image shift applied: positions
    (cx, cy, cz), original index cj, shift cs (image shift minus the candidate's own wrap) and czero
    (True when the image shift is zero, where the home atom itself is found). Grows the buffers in
    ``work`` when needed; returns (number of candidates, work)."""
    seg_lo, seg_hi, seg_shift, seg_vec, cx, cy, cz, cj, cs, czero = work
    ns = _segments(c, n_bins, reach, pbc, cell, start, seg_lo, seg_hi, seg_shift, seg_vec)
    total = 0
    for s in range(ns):
        total += seg_hi[s] - seg_lo[s]
    if total > cx.shape[0]:
        size = 2 * total
        cx, cy, cz = np.empty(size), np.empty(size), np.empty(size)
        cj, cs, czero = np.empty(size, np.int64), np.empty((size, 3), np.int64), np.empty(size, np.bool_)
        work = (seg_lo, seg_hi, seg_shift, seg_vec, cx, cy, cz, cj, cs, czero)
    m = 0
    for s in range(ns):
        vx, vy, vz = seg_vec[s, 0], seg_vec[s, 1], seg_vec[s, 2]
        s0, s1, s2 = seg_shift[s, 0], seg_shift[s, 1], seg_shift[s, 2]
        zero = s0 == 0 and s1 == 0 and s2 == 0
        for q in range(seg_lo[s], seg_hi[s]):
            cx[m] = xs[q] + vx
            cy[m] = ys[q] + vy
            cz[m] = zs[q] + vz
            cj[m] = order[q]
            cs[m, 0] = s0 - wraps[q, 0]
            cs[m, 1] = s1 - wraps[q, 1]
            cs[m, 2] = s2 - wraps[q, 2]
            czero[m] = zero
            m += 1
    return total, work


@njit(cache=True)
def _work_buffers(reach):
    max_seg = (2 * reach[0] + 1) * (2 * reach[1] + 1) * (2 * reach[2] + 1)
    return (np.empty(max_seg, np.int64), np.empty(max_seg, np.int64), np.empty((max_seg, 3), np.int64),
            np.empty((max_seg, 3)), np.empty(0), np.empty(0), np.empty(0), np.empty(0, np.int64),
            np.empty((0, 3), np.int64), np.empty(0, np.bool_))


@njit(cache=True)
def _count_chunk(k, n_chunks, start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, counts):
    n_cells = start.shape[0] - 1
    work = _work_buffers(reach)
    cut2 = cutoff * cutoff
    for c in range(k * n_cells // n_chunks, (k + 1) * n_cells // n_chunks):
        if start[c] == start[c + 1]:
            continue
        n_cand, work = _gather(c, n_bins, reach, pbc, cell, start, order, xs, ys, zs, wraps, work)
        cx, cy, cz = work[4], work[5], work[6]
        for qa in range(start[c], start[c + 1]):
            xa, ya, za = xs[qa], ys[qa], zs[qa]
            count = -1  # the atom itself is always a candidate, at distance exactly 0
            for m in range(n_cand):
                dx = cx[m] - xa
                dy = cy[m] - ya
                dz = cz[m] - za
                count += dx * dx + dy * dy + dz * dz < cut2
            counts[order[qa]] = count


@njit(cache=True)
def _fill_chunk(k, n_chunks, start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, offsets,
                i_out, j_out, s_out, v_out):
    n_cells = start.shape[0] - 1
    work = _work_buffers(reach)
    hits = np.empty(0, np.int64)
    d2 = np.empty(0)
    cut2 = cutoff * cutoff
    for c in range(k * n_cells // n_chunks, (k + 1) * n_cells // n_chunks):
        if start[c] == start[c + 1]:
            continue
        n_cand, work = _gather(c, n_bins, reach, pbc, cell, start, order, xs, ys, zs, wraps, work)
        cx, cy, cz, cj, cs, czero = work[4], work[5], work[6], work[7], work[8], work[9]
        if hits.shape[0] < n_cand:
            hits = np.empty(cx.shape[0], np.int64)
            d2 = np.empty(cx.shape[0])
        for qa in range(start[c], start[c + 1]):
            xa, ya, za = xs[qa], ys[qa], zs[qa]
            # 1) the same test as in _count_chunk, compressed without a data-dependent branch
            for m in range(n_cand):
                dx = cx[m] - xa
                dy = cy[m] - ya
                dz = cz[m] - za
                d2[m] = dx * dx + dy * dy + dz * dz
            n_hits = 0
            for m in range(n_cand):
                hits[n_hits] = m
                n_hits += d2[m] < cut2
            # 2) the row of atom a
            a = order[qa]
            p = offsets[a]
            end = offsets[a + 1]
            wa0, wa1, wa2 = wraps[qa, 0], wraps[qa, 1], wraps[qa, 2]
            for h in range(n_hits):
                m = hits[h]
                if cj[m] == a and czero[m]:
                    continue  # the atom itself
                if p == end:  # cannot happen (same test as the count); guards memory all the same
                    break
                j_out[p] = cj[m]
                # image shift between the wrapped atoms, corrected for the wrapping of both
                s_out[p, 0] = cs[m, 0] + wa0
                s_out[p, 1] = cs[m, 1] + wa1
                s_out[p, 2] = cs[m, 2] + wa2
                v_out[p, 0] = cx[m] - xa
                v_out[p, 1] = cy[m] - ya
                v_out[p, 2] = cz[m] - za
                i_out[p] = a
                p += 1


@njit(cache=True)
def _count_serial(start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, n_chunks, counts):
    for k in range(n_chunks):
        _count_chunk(k, n_chunks, start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, counts)


@njit(cache=True, parallel=True)
def _count_parallel(start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, n_chunks, counts):
    for k in prange(n_chunks):
        _count_chunk(k, n_chunks, start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, counts)


@njit(cache=True)
def _fill_serial(start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, n_chunks, offsets,
                 i_out, j_out, s_out, v_out):
    for k in range(n_chunks):
        _fill_chunk(k, n_chunks, start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, offsets,
                    i_out, j_out, s_out, v_out)


@njit(cache=True, parallel=True)
def _fill_parallel(start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, n_chunks, offsets,
                   i_out, j_out, s_out, v_out):
    for k in prange(n_chunks):
        _fill_chunk(k, n_chunks, start, order, xs, ys, zs, wraps, n_bins, reach, pbc, cell, cutoff, offsets,
                    i_out, j_out, s_out, v_out)


@njit(cache=True)
def _pair_vectors(positions, cell, i, j, shifts):
    """r_ij = r_j − r_i + shifts @ cell (numpy's tiny (n,3)@(3,3) matmul can be slow under load)."""
    out = np.empty((i.shape[0], 3))
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        s0, s1, s2 = shifts[p, 0], shifts[p, 1], shifts[p, 2]
        for k in range(3):
            out[p, k] = positions[b, k] - positions[a, k] + s0 * cell[0, k] + s1 * cell[1, k] + s2 * cell[2, k]
    return out


@njit(cache=True)
def _max_vector_error(positions, cell, i, j, shifts, vectors):
    """max over pairs and components of |vectors − (r_j − r_i + shifts @ cell)| (NaN if any is NaN)."""
    worst = 0.0
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        s0, s1, s2 = shifts[p, 0], shifts[p, 1], shifts[p, 2]
        for k in range(3):
            expect = positions[b, k] - positions[a, k] + s0 * cell[0, k] + s1 * cell[1, k] + s2 * cell[2, k]
            d = abs(vectors[p, k] - expect)
            if np.isnan(d):
                return d
            worst = max(worst, d)
    return worst


@njit(cache=True)
def _csr_permutation(i, n):
    """Stable counting sort of pair rows by i: returns the permutation and the row pointer."""
    offsets = np.zeros(n + 1, np.int64)
    for p in range(i.shape[0]):
        offsets[i[p] + 1] += 1
    for a in range(n):
        offsets[a + 1] += offsets[a]
    fill = offsets[:-1].copy()
    perm = np.empty(i.shape[0], np.int64)
    for p in range(i.shape[0]):
        perm[fill[i[p]]] = p
        fill[i[p]] += 1
    return perm, offsets


# ---------------------------------------------------------------------------------------------------
# vesin engine


def _vesin_pairs(atoms: Atoms, cutoff: float) -> Pairs:
    try:
        import vesin
    except ImportError as error:
        raise ImportError("engine='vesin' needs the optional package vesin (pip install vesin); "
                          "engine='mliplib' needs nothing extra") from error
    calculator = vesin.NeighborList(cutoff=cutoff, full_list=True)
    # copy=False: views into the calculator's buffers, valid while it lives (until we return)
    i, j, shifts, vectors = calculator.compute(
        np.ascontiguousarray(atoms.positions, dtype=np.float64), atoms.cell.array, atoms.pbc,
        quantities="ijSD", copy=False)
    # vesin's convention (checked in tests): vectors = r_j − r_i + shifts @ cell, as ours and ASE's;
    # its pairs come in no particular order: a stable counting sort by i gives our CSR order
    perm, _ = _csr_permutation(i.astype(np.int64), len(atoms))
    pairs = Pairs(i[perm].astype(np.int64), j[perm].astype(np.int64), shifts[perm].astype(np.int64),
                  vectors[perm], cutoff)
    del calculator
    return pairs


class NeighborList:
    """Verlet list with a skin for MD: rebuilt only when an atom moved more than skin/2.

    Parameters
    ----------
    cutoff : float
        The cutoff in Å the caller needs (e.g. a descriptor's).
    skin : float
        Extra distance in Å, ≥ 0: the list is built with ``cutoff + skin`` and reused while no atom has
        moved more than ``skin / 2`` since the build (and numbers, cell and pbc are unchanged).
    engine : {"mliplib", "vesin"} or None
        As in :func:`neighbor_list`.

    Attributes
    ----------
    pairs : Pairs or None
        The list of the last build.
    builds : int
        How many times the list was built.
    """

    def __init__(self, cutoff: float, skin: float = 0.5, engine: str | None = None):
        if not skin >= 0:
            raise ValueError(f"skin must be ≥ 0 Å, got {skin}")
        self.cutoff, self.skin = _check_cutoff(cutoff), float(skin)
        self.engine = None if engine is None else _check_engine(engine)
        self.pairs = None
        self.builds = 0
        self._ref = None

    def _largest_move(self, atoms: Atoms) -> float:
        """Largest displacement (Å) of an atom since the build; inf when the list must be rebuilt."""
        if self.pairs is None:
            return np.inf
        positions, numbers, cell, pbc = self._ref
        if (len(atoms) != len(numbers) or not np.array_equal(atoms.numbers, numbers)
                or not np.array_equal(atoms.cell.array, cell) or not np.array_equal(atoms.pbc, pbc)):
            return np.inf
        moved = np.sqrt(np.max(np.sum((atoms.positions - positions) ** 2, axis=1))) if len(atoms) else 0.0
        return moved if moved <= 0.5 * self.skin else np.inf  # NaN positions also rebuild (and raise)

    def update(self, atoms: Atoms) -> Pairs:
        """The pairs of ``atoms``, rebuilt or reused.

        Parameters
        ----------
        atoms : ase.Atoms
            The current structure.

        Returns
        -------
        Pairs
            Current vectors; complete within ``pairs.cutoff`` = cutoff + skin − 2 × (largest move since
            the build) ≥ ``cutoff``. May contain pairs up to cutoff + 2 × skin apart.
        """
        moved = self._largest_move(atoms)
        if not np.isfinite(moved):
            self.pairs = neighbor_list(atoms, self.cutoff + self.skin, engine=self.engine)
            self._ref = (atoms.positions.copy(), atoms.numbers.copy(), atoms.cell.array.copy(), atoms.pbc.copy())
            self.builds += 1
            return self.pairs
        p = self.pairs
        vectors = _pair_vectors(np.ascontiguousarray(atoms.positions, dtype=np.float64),
                                np.ascontiguousarray(atoms.cell.array, dtype=np.float64), p.i, p.j, p.shifts)
        return Pairs(p.i, p.j, p.shifts, vectors, max(self.cutoff, self.cutoff + self.skin - 2 * moved))
