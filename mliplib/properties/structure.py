"""Structural analysis on top of :func:`mliplib.neighbors.neighbor_list`: partial radial distribution
functions g(r), coordination numbers and bond-angle distributions (Numba histogram kernels).

All functions take one ``Atoms`` or a list of frames (averaged). Lengths in Å, angles in degrees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from itertools import combinations_with_replacement

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from numba import njit

from mliplib.neighbors import neighbor_list

__all__ = [
    "RDF",
    "BondAngles",
    "bond_angle_distribution",
    "coordination_numbers",
    "cutoff_matrix",
    "rdf",
    "shortest_distance",
    "shortest_pair_distance",
]


def _frames(atoms_or_frames) -> list[Atoms]:
    frames = [atoms_or_frames] if isinstance(atoms_or_frames, Atoms) else list(atoms_or_frames)
    if not frames:
        raise ValueError("no frames given")
    if not all(isinstance(f, Atoms) for f in frames):
        raise TypeError("expected an ase.Atoms or a sequence of ase.Atoms")
    return frames


def shortest_distance(atoms: Atoms) -> float:
    """Smallest interatomic distance, periodic images included along the periodic axes of ``atoms`` (an
    atom's own images too, in small cells). O(N): neighbour lists of growing cutoff, from 2 Å, until one
    finds a pair.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    float
        Distance (Å); inf for an isolated structure of fewer than two atoms.
    """
    if len(atoms) == 0 or (len(atoms) == 1 and not atoms.pbc.any()):
        return float("inf")
    cutoff = 2.0
    while True:
        pairs = neighbor_list(atoms, cutoff)
        if len(pairs.i):
            return float(pairs.distances().min())
        cutoff *= 2


def shortest_pair_distance(atoms_or_frames, a: str, b: str, reach: float = 4.0) -> float:
    """Shortest a–b distance over one structure or several frames, periodic images included.

    Parameters
    ----------
    atoms_or_frames : ase.Atoms or sequence of ase.Atoms
        The structure(s).
    a, b : str
        Chemical symbols of the pair (a == b for like atoms).
    reach : float
        Largest distance looked at (Å).

    Returns
    -------
    float
        Distance (Å); inf if no a–b pair is closer than ``reach``.
    """
    out = np.inf
    for atoms in _frames(atoms_or_frames):
        nl = neighbor_list(atoms, reach)
        keep = (atoms.symbols[nl.i] == a) & (atoms.symbols[nl.j] == b)
        if keep.any():
            out = min(out, nl.distances()[keep].min())
    return float(out)


def _number(symbol: str) -> int:
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown chemical symbol {symbol!r}")
    return atomic_numbers[symbol]


@njit(cache=True)
def _pair_histogram(i, j, d, numbers, r_max, n_bins, counts):
    """counts[Z_i, Z_j, bin] += 1 for every pair with d < r_max (counts: (119, 119, n_bins))."""
    scale = n_bins / r_max
    for p in range(i.shape[0]):
        b = int(d[p] * scale)
        if b < n_bins:
            counts[numbers[i[p]], numbers[j[p]], b] += 1.0


@dataclasses.dataclass
class RDF:
    """r (n_bins,) bin centres (Å); edges (n_bins + 1,); g: {(A, B): (n_bins,)} partial g(r) (symmetric in
    A, B) plus "total"; normalisation: "ideal-gas" (dimensionless, → 1 for an uncorrelated system) or
    "density" (Å⁻³, isolated systems without a reference density); n_frames averaged."""

    r: np.ndarray
    edges: np.ndarray
    g: dict
    normalisation: str
    n_frames: int

    def __getitem__(self, pair):
        if pair == "total" or pair in self.g:
            return self.g[pair]
        if isinstance(pair, tuple) and tuple(reversed(pair)) in self.g:
            return self.g[tuple(reversed(pair))]
        raise KeyError(f"no g(r) for {pair!r}; available: {list(self.g)}")

    def first_peak(self, pair) -> float:
        """Position of the maximum of g for ``pair``.

        Parameters
        ----------
        pair : tuple of two str or "total"
            The species pair.

        Returns
        -------
        float
            r (Å).
        """
        return float(self.r[np.argmax(self[pair])])

    def first_minimum(self, pair, after: float = 1.5, before: float = 3.5) -> float:
        """Position of the minimum of g for ``pair`` between its first peak and ``before``.

        Parameters
        ----------
        pair : tuple of two str or "total"
            The species pair.
        after, before : float
            The first peak is the maximum of g on (after, before) (Å); the minimum is sought between it
            and ``before``.

        Returns
        -------
        float
            r (Å).
        """
        r, y = self.r, self[pair]
        peak = np.argmax(np.where((r > after) & (r < before), y, -1))
        window = (r > r[peak]) & (r < before)
        return float(r[window][np.argmin(y[window])])


def rdf(atoms_or_frames, r_max: float, n_bins: int = 200, pairs: Sequence[tuple[str, str]] | None = None,
        density: float | None = None) -> RDF:
    """Partial radial distribution functions g_AB(r) on [0, r_max) with ``n_bins`` bins, averaged over frames.

    pairs: species pairs such as ``[("Zn", "O"), ("O", "O")]`` (default: all pairs present). Periodic
    frames (pbc along x, y, z):
    g_AB(r) = Σ_frames n_AB(r) / Σ_frames [N_A (N_B − δ_AB)/V · 4π/3 (r₂³ − r₁³)], with n_AB the number
    of (A, B) pairs in the shell, so an ideal gas gives exactly 1 on average (images beyond the cell
    are counted, r_max may exceed the cell). Isolated or slab frames: with
    ``density`` (a reference number density, atoms/Å³, e.g. of the bulk) the same formula uses
    N_B/V → density · N_B/N; without it g is the mean number density (Å⁻³) of B atoms at distance r
    from an A atom, n_AB / (N_A · shell volume), and ``normalisation`` is "density".

    Parameters
    ----------
    atoms_or_frames : ase.Atoms or sequence of ase.Atoms
        The frames (all periodic or all not).
    r_max : float
        Range (Å).
    n_bins : int
        Bins on [0, r_max).
    pairs : sequence of (str, str), optional
        Species pairs (default: all pairs present).
    density : float, optional
        Reference number density (atoms/Å³) for non-periodic frames.

    Returns
    -------
    RDF
    """
    frames = _frames(atoms_or_frames)
    r_max, n_bins = float(r_max), int(n_bins)
    if not r_max > 0 or n_bins < 1:
        raise ValueError(f"need r_max > 0 Å and n_bins ≥ 1, got {r_max}, {n_bins}")
    if density is not None and not density > 0:
        raise ValueError(f"density must be a positive number density (atoms/Å³), got {density}")
    species = sorted({s for f in frames for s in f.get_chemical_symbols()})
    if pairs is None:
        pairs = list(combinations_with_replacement(species, 2))
    pairs = [tuple(p) for p in pairs]
    for p in pairs:
        if len(p) != 2:
            raise ValueError(f"pairs must be (A, B) tuples of symbols, got {p!r}")
        for s in p:
            _number(s)
    periodic = [bool(np.all(f.pbc)) and f.cell.rank == 3 for f in frames]
    if any(periodic) and not all(periodic):
        raise ValueError("mix of periodic and non-periodic frames")
    ideal = periodic[0] or density is not None
    edges = np.linspace(0.0, r_max, n_bins + 1)
    shell = 4.0 * np.pi / 3.0 * (edges[1:] ** 3 - edges[:-1] ** 3)
    counts = np.zeros((119, 119, n_bins))
    expected = {p: np.zeros(n_bins) for p in pairs + ["total"]}
    for frame in frames:
        nl = neighbor_list(frame, r_max)
        _pair_histogram(nl.i, nl.j, nl.distances(), frame.numbers.astype(np.int64), r_max, n_bins, counts)
        n = len(frame)
        rho = (n / frame.get_volume() if periodic[0] else density) if ideal else None
        for p in pairs + ["total"]:
            na = n if p == "total" else np.count_nonzero(frame.numbers == _number(p[0]))
            nb = n if p == "total" else np.count_nonzero(frame.numbers == _number(p[1]))
            if ideal:
                same = 1 if (p == "total" or p[0] == p[1]) else 0
                expected[p] += na * (nb - same) * rho / n * shell
            else:
                expected[p] += na * shell
    g = {}
    for p in pairs + ["total"]:
        c = counts.sum(axis=(0, 1)) if p == "total" else counts[_number(p[0]), _number(p[1])]
        with np.errstate(invalid="ignore", divide="ignore"):
            g[p] = np.where(expected[p] > 0, c / np.where(expected[p] > 0, expected[p], 1.0), 0.0)
    return RDF(0.5 * (edges[1:] + edges[:-1]), edges, g, "ideal-gas" if ideal else "density", len(frames))


def cutoff_matrix(cutoffs: float | Mapping[tuple[str, str], float]) -> tuple[np.ndarray, float]:
    """Pair cutoffs as a table indexed by atomic numbers.

    Parameters
    ----------
    cutoffs : float or mapping
        One radius (Å) for all pairs, or ``{(A, B): radius}`` (symmetric; pairs not listed get 0).

    Returns
    -------
    tuple
        (numpy.ndarray of shape (119, 119): cutoff of each pair of atomic numbers, 0 = not counted;
        float: the largest cutoff).
    """
    table = np.zeros((119, 119))
    if isinstance(cutoffs, Mapping):
        if not cutoffs:
            raise ValueError("cutoffs is empty")
        for pair, rc in cutoffs.items():
            if len(pair) != 2 or not rc > 0:
                raise ValueError(f"cutoffs must map (A, B) symbol pairs to positive lengths (Å), "
                                 f"got {pair}: {rc}")
            a, b = _number(pair[0]), _number(pair[1])
            table[a, b] = table[b, a] = float(rc)
    else:
        if not float(cutoffs) > 0:
            raise ValueError(f"cutoff must be positive (Å), got {cutoffs}")
        table[:] = float(cutoffs)
    return table, float(table.max())


def coordination_numbers(atoms: Atoms, cutoffs: float | Mapping[tuple[str, str], float]) -> np.ndarray:
    """Number of neighbours of each atom, (n_atoms,) int.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    cutoffs : float or mapping
        One radius (Å) for all pairs, or {(A, B): radius} (symmetric; pairs not listed are not counted),
        e.g. ``{("Zn", "O"): 2.5}`` for Zn–O bonds only.

    Returns
    -------
    numpy.ndarray of int, shape (n_atoms,)
    """
    table, r_max = cutoff_matrix(cutoffs)
    nl = neighbor_list(atoms, r_max)
    keep = nl.distances() < table[atoms.numbers[nl.i], atoms.numbers[nl.j]]
    return np.bincount(nl.i[keep], minlength=len(atoms))


@njit(cache=True)
def _angle_histogram(offsets, vectors, dist, centre, keep, n_bins, counts):
    """counts[bin] += 1 for every pair of kept neighbours (p < q) of each centre atom."""
    width = 180.0 / n_bins
    total = 0
    for a in range(centre.shape[0]):
        if not centre[a]:
            continue
        for p in range(offsets[a], offsets[a + 1]):
            if not keep[p]:
                continue
            for q in range(p + 1, offsets[a + 1]):
                if not keep[q]:
                    continue
                c = (vectors[p, 0] * vectors[q, 0] + vectors[p, 1] * vectors[q, 1]
                     + vectors[p, 2] * vectors[q, 2]) / (dist[p] * dist[q])
                c = min(1.0, max(-1.0, c))
                b = min(int(np.degrees(np.arccos(c)) / width), n_bins - 1)
                counts[b] += 1.0
                total += 1
    return total


@dataclasses.dataclass
class BondAngles:
    """angles (n_bins,) bin centres in degrees on [0, 180]; density (n_bins,) 1/degree, unit area;
    n_triplets counted (over all frames)."""

    angles: np.ndarray
    density: np.ndarray
    n_triplets: int

    def mean(self) -> float:
        """Mean angle of the distribution.

        Returns
        -------
        float
            Degrees.
        """
        return float(np.sum(self.angles * self.density) / np.sum(self.density))


def bond_angle_distribution(atoms_or_frames, centre: str | None, neighbour: str | None, cutoff: float,
                            n_bins: int = 180) -> BondAngles:
    """Distribution of the angles neighbour–centre–neighbour (degrees) for neighbours closer than
    ``cutoff`` (Å); ``centre``/``neighbour`` are chemical symbols or None (any species). E.g. the
    O–Zn–O angles of wurtzite: ``bond_angle_distribution(atoms, "Zn", "O", 2.5)`` (≈ 109.5°).

    Parameters
    ----------
    atoms_or_frames : ase.Atoms or sequence of ase.Atoms
        The frames.
    centre, neighbour : str or None
        Species of the centre and of its two neighbours (None: any).
    cutoff : float
        Neighbour cutoff (Å).
    n_bins : int
        Bins on [0°, 180°].

    Returns
    -------
    BondAngles
    """
    frames = _frames(atoms_or_frames)
    if not cutoff > 0 or int(n_bins) < 1:
        raise ValueError(f"need cutoff > 0 Å and n_bins ≥ 1, got {cutoff}, {n_bins}")
    n_bins = int(n_bins)
    zc = None if centre is None else _number(centre)
    zn = None if neighbour is None else _number(neighbour)
    counts = np.zeros(n_bins)
    total = 0
    for frame in frames:
        nl = neighbor_list(frame, cutoff)
        numbers = frame.numbers
        is_centre = np.ones(len(frame), bool) if zc is None else numbers == zc
        keep = np.ones(len(nl.i), bool) if zn is None else numbers[nl.j] == zn
        total += _angle_histogram(nl.offsets(len(frame)), nl.vectors, nl.distances(), is_centre, keep,
                                  n_bins, counts)
    width = 180.0 / n_bins
    density = counts / (total * width) if total else counts
    return BondAngles((np.arange(n_bins) + 0.5) * width, density, int(total))
