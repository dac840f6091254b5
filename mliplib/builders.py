"""Structure builders for any binary AB compound: crystal structures, strained and rattled cells, non-polar
wurtzite slabs, clusters (cuts of a crystal, rings, a sodalite cage) and random packings for liquids.

Every builder takes the chemical symbols and the geometric parameters explicitly and is deterministic:
random ones take an explicit seed. Lengths in Å, densities in g/cm³, angles in degrees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import permutations, product

import numpy as np
from ase import Atoms
from ase.build import bulk, make_supercell, surface
from ase.data import atomic_masses, atomic_numbers
from ase.spacegroup import crystal

from mliplib.neighbors import neighbor_list

__all__ = [
    "AB_STRUCTURES",
    "AVOGADRO",
    "binary_crystal",
    "cluster_cut",
    "in_box",
    "isolated_atom",
    "random_cubic_cell",
    "random_packing",
    "random_shear",
    "rattled",
    "ring",
    "sodalite_cage",
    "strained",
    "supercell_of",
    "wurtzite_slab",
]

#: Crystal structures of AB compounds that :func:`binary_crystal` builds, with the parameters each needs:
#: wurtzite (B4, P6_3mc; a, c, u), zincblende (B3; a), rocksalt (B1; a), cscl (B2; a), hbn (B_k "5-5",
#: P6_3/mmc, wurtzite with u = 1/2; a, c), bct (BCT-4, P4_2/mnm, A on 4f (x, x, 0), B on 4g (x, -x, 0); a, c, x).
AB_STRUCTURES = ("wurtzite", "zincblende", "rocksalt", "cscl", "hbn", "bct")
_PARAMETERS = {"wurtzite": ("a", "c", "u"), "zincblende": ("a",), "rocksalt": ("a",), "cscl": ("a",),
               "hbn": ("a", "c"), "bct": ("a", "c", "x")}
#: Avogadro constant (1/mol, exact since the 2019 SI).
AVOGADRO = 6.02214076e23


def _pair(symbols: Sequence[str]) -> tuple[str, str]:
    pair = tuple(symbols)
    if len(pair) != 2 or not all(s in atomic_numbers for s in pair):
        raise ValueError(f"symbols must be two chemical symbols (A, B) such as ('Zn', 'O'), got {symbols!r}")
    return pair


def binary_crystal(structure: str, symbols: Sequence[str], cubic: bool = False, **params: float) -> Atoms:
    """Primitive (or, for zincblende and rocksalt with ``cubic=True``, conventional cubic) cell of an AB
    compound in one of :data:`AB_STRUCTURES`.

    Parameters
    ----------
    structure : str
        One of :data:`AB_STRUCTURES`.
    symbols : sequence of two str
        Chemical symbols (A, B); A is the cation site (the first atom of the cell).
    cubic : bool
        Conventional cubic cell (8 atoms) instead of the primitive one, for zincblende and rocksalt.
    **params : float
        Exactly the parameters the structure needs: ``a``, ``c`` (Å), ``u``, ``x`` (fractional); see
        :data:`AB_STRUCTURES`.

    Returns
    -------
    ase.Atoms
        The periodic cell, with ``info["phase"] = structure``.
    """
    if structure not in _PARAMETERS:
        raise ValueError(f"unknown structure {structure!r}; choose one of {AB_STRUCTURES}")
    a_sym, b_sym = _pair(symbols)
    needed = _PARAMETERS[structure]
    if set(params) != set(needed):
        raise ValueError(f"{structure} takes the parameters {needed}, got {tuple(sorted(params))}")
    p = params
    name = a_sym + b_sym
    if structure == "wurtzite":
        atoms = bulk(name, "wurtzite", a=p["a"], c=p["c"], u=p["u"])
    elif structure == "hbn":
        atoms = bulk(name, "wurtzite", a=p["a"], c=p["c"], u=0.5)
    elif structure == "zincblende":
        atoms = bulk(name, "zincblende", a=p["a"], cubic=cubic)
    elif structure == "rocksalt":
        atoms = bulk(name, "rocksalt", a=p["a"], cubic=cubic)
    elif structure == "cscl":
        atoms = bulk(name, "cesiumchloride", a=p["a"])
    else:  # bct
        x = p["x"]
        atoms = crystal([a_sym, b_sym], basis=[(x, x, 0.0), (x, -x, 0.0)], spacegroup=136,
                        cellpar=[p["a"], p["a"], p["c"], 90, 90, 90])
    atoms.info["phase"] = structure
    return atoms


def supercell_of(atoms: Atoms, reps: Sequence[int]) -> Atoms:
    """Diagonal supercell keeping ``info``.

    Parameters
    ----------
    atoms : ase.Atoms
        The cell to repeat.
    reps : sequence of 3 int
        Repetitions (n1, n2, n3) along the cell vectors.

    Returns
    -------
    ase.Atoms
        ``n1 n2 n3`` times as many atoms, with a copy of ``atoms.info``.
    """
    big = make_supercell(atoms, np.diag(reps))
    big.info.update(atoms.info)
    return big


def strained(atoms: Atoms, strain) -> Atoms:
    """A copy of ``atoms`` under a homogeneous strain (atoms move with the cell).

    Parameters
    ----------
    atoms : ase.Atoms
        The cell to deform.
    strain : float or array_like, shape (3, 3)
        A scalar ε (isotropic, linear: every length scales by 1 + ε) or a symmetric strain tensor ε;
        the cell becomes ``cell @ (1 + ε).T``.

    Returns
    -------
    ase.Atoms
        The strained copy.
    """
    eps = np.eye(3) * float(strain) if np.isscalar(strain) else np.asarray(strain, float)
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
    return out


def random_shear(magnitude: float, seed: int) -> np.ndarray:
    """Random traceless symmetric strain tensor.

    Parameters
    ----------
    magnitude : float
        Bound of the uniform distribution of every component (dimensionless strain).
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        Off-diagonal components in ±``magnitude``; diagonal ones drawn the same way, minus their mean.
    """
    rng = np.random.default_rng(seed)
    eps = np.zeros((3, 3))
    off = rng.uniform(-magnitude, magnitude, 3)
    eps[0, 1] = eps[1, 0] = off[0]
    eps[0, 2] = eps[2, 0] = off[1]
    eps[1, 2] = eps[2, 1] = off[2]
    diag = rng.uniform(-magnitude, magnitude, 3)
    eps[np.diag_indices(3)] = diag - diag.mean()
    return eps


def rattled(atoms: Atoms, sigma: float, seed: int) -> Atoms:
    """A copy of ``atoms`` with Gaussian random displacements.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure to perturb.
    sigma : float
        Standard deviation (Å) of every Cartesian component.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    ase.Atoms
        The displaced copy.
    """
    out = atoms.copy()
    rng = np.random.default_rng(seed)
    out.positions += rng.normal(0.0, sigma, out.positions.shape)
    return out


def wurtzite_slab(symbols: Sequence[str], miller: str, layers: int, vacuum: float, a: float, c: float,
                  u: float) -> Atoms:
    """Symmetric, stoichiometric slab of the non-polar (10-10) or (11-20) surface of a wurtzite AB crystal.

    Parameters
    ----------
    symbols : sequence of two str
        Chemical symbols (A, B).
    miller : {"10-10", "11-20"}
        The surface.
    layers : int
        Repeats of the surface cell along the normal (z): a (10-10) layer is an AB double layer (two
        atomic planes), an (11-20) layer a single atomic plane.
    vacuum : float
        Vacuum (Å) added on each side.
    a, c : float
        Lattice parameters (Å) of the wurtzite crystal.
    u : float
        Internal parameter of wurtzite (fractional).

    Returns
    -------
    ase.Atoms
        Periodic in x and y only (``pbc = (True, True, False)``), with ``info["surface"] = miller``.
    """
    indices = {"10-10": (1, 0, 0), "11-20": (1, 1, 0)}
    if miller not in indices:
        raise ValueError(f"unknown surface {miller!r}; choose one of {tuple(indices)}")
    a_sym, b_sym = _pair(symbols)
    conv = bulk(a_sym + b_sym, "wurtzite", a=a, c=c, u=u)
    # periodic=False: with periodic=True, ase.build.surface wraps the scaled positions along the normal
    # too, and an atom of the bottom plane at a height of −1e-16 (rounding, for some a, c, u) jumps to the
    # top: a slab with half-filled outer planes and twofold-coordinated atoms. Where that does not
    # happen both settings give the same positions.
    slab = surface(conv, indices[miller], layers, vacuum=vacuum, periodic=False)
    slab.pbc = (True, True, False)
    slab.info["surface"] = miller
    return slab


def cluster_cut(crystal_cell: Atoms, n_formula: int, seed: int = 0, jitter: float = 0.1) -> Atoms:
    """Stoichiometric A_n B_n cluster cut from a crystal: the n A and n B atoms closest to a centre.

    Parameters
    ----------
    crystal_cell : ase.Atoms
        A periodic AB crystal large enough to hold the cluster (e.g. a 5×5×3 wurtzite supercell).
        A is the species of its first atom.
    n_formula : int
        Formula units n of the cluster.
    seed : int
        Seed of the random offset of the centre.
    jitter : float
        Standard deviation (Å) of that offset from the centroid of the A atoms (breaks ties between
        equidistant atoms).

    Returns
    -------
    ase.Atoms
        The isolated cluster (no cell, no pbc, empty ``info``), atoms in the crystal's order.
    """
    species = list(dict.fromkeys(crystal_cell.numbers.tolist()))
    if len(species) != 2:
        raise ValueError(f"cluster_cut needs a crystal of two species, got {crystal_cell.get_chemical_formula()}")
    first = crystal_cell.numbers == species[0]
    centre = crystal_cell.positions[first].mean(axis=0) + np.random.default_rng(seed).normal(0, jitter, 3)
    keep = []
    for z in species:
        idx = np.flatnonzero(crystal_cell.numbers == z)
        if len(idx) < n_formula:
            raise ValueError(f"the crystal holds {len(idx)} atoms of species {z}, fewer than n_formula = {n_formula}")
        dist = np.linalg.norm(crystal_cell.positions[idx] - centre, axis=1)
        keep.extend(idx[np.argsort(dist)[:n_formula]])
    cluster = crystal_cell[sorted(keep)]
    cluster.pbc = False
    cluster.cell = None
    cluster.info = {}
    return cluster


def ring(symbols: Sequence[str], n_formula: int, bond: float) -> Atoms:
    """Planar (AB)_n ring, A and B alternating, in the xy plane, centred at the origin.

    Parameters
    ----------
    symbols : sequence of two str
        Chemical symbols (A, B).
    n_formula : int
        Formula units n (2n atoms).
    bond : float
        A–B distance (Å).

    Returns
    -------
    ase.Atoms
        The isolated ring (no cell).
    """
    pair = _pair(symbols)
    m = 2 * n_formula
    radius = bond / (2 * np.sin(np.pi / m))
    angles = 2 * np.pi * np.arange(m) / m
    positions = radius * np.column_stack([np.cos(angles), np.sin(angles), np.zeros(m)])
    return Atoms(list(pair) * n_formula, positions=positions)


def sodalite_cage(symbols: Sequence[str], bond: float) -> Atoms:
    """The (AB)_12 truncated octahedron (6 squares, 8 hexagons), the classic bubble cluster of AB compounds.

    Vertices are the permutations of (0, ±1, ±2) scaled so that edges equal ``bond``; A and B alternate
    along every edge (the edge graph is bipartite; the first vertex in sorted order is A).

    Parameters
    ----------
    symbols : sequence of two str
        Chemical symbols (A, B).
    bond : float
        Edge (A–B) length (Å).

    Returns
    -------
    ase.Atoms
        24 atoms, isolated (no cell).
    """
    a_sym, b_sym = _pair(symbols)
    verts = set()
    for perm in permutations((0, 1, 2)):
        for s1, s2 in product((1, -1), repeat=2):
            v = [0, 0, 0]
            v[perm[1]] = s1 * 1
            v[perm[2]] = s2 * 2
            verts.add(tuple(v))
    verts = np.array(sorted(verts), float) * bond / np.sqrt(2)
    # two-colour the bipartite edge graph (edge length = bond)
    dist = np.linalg.norm(verts[:, None] - verts[None], axis=-1)
    adj = np.isclose(dist, bond)
    colour = -np.ones(len(verts), int)
    colour[0] = 0
    stack = [0]
    while stack:
        v = stack.pop()
        for w in np.flatnonzero(adj[v]):
            if colour[w] < 0:
                colour[w] = 1 - colour[v]
                stack.append(w)
    return Atoms([a_sym if col == 0 else b_sym for col in colour], positions=verts)


def isolated_atom(symbol: str) -> Atoms:
    """One atom at the origin (put it in a box with :func:`in_box`).

    Parameters
    ----------
    symbol : str
        Chemical symbol.

    Returns
    -------
    ase.Atoms
        One atom, no cell.
    """
    return Atoms(symbol, positions=[[0.0, 0.0, 0.0]])


def in_box(atoms: Atoms, vacuum: float) -> Atoms:
    """A copy of an isolated structure centred in an orthorhombic box.

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster or molecule.
    vacuum : float
        Vacuum (Å) on every side.

    Returns
    -------
    ase.Atoms
        The boxed copy, ``pbc`` False.
    """
    out = atoms.copy()
    out.pbc = False
    out.center(vacuum=vacuum)
    return out


def _cell_length(formula_unit: Sequence[str], n_formula: int, density: float) -> float:
    if n_formula < 1 or not density > 0:
        raise ValueError(f"need n_formula ≥ 1 and density > 0 g/cm³, got {n_formula}, {density}")
    unit_mass = sum(atomic_masses[atomic_numbers[s]] for s in formula_unit)  # amu = g/mol
    mass = n_formula * unit_mass / AVOGADRO  # g
    return (mass / density * 1e24) ** (1 / 3)  # Å


def random_cubic_cell(formula_unit: Sequence[str], n_formula: int, density: float, seed: int,
                      min_distance: float) -> Atoms:
    """Cubic periodic cell of ``n_formula`` formula units at uniformly random positions.

    Positions are drawn one by one (random sequential addition) and a trial closer than ``min_distance``
    to an atom already placed (minimum image) is redrawn.

    Parameters
    ----------
    formula_unit : sequence of str
        Symbols of one formula unit, e.g. ``("Zn", "O")``; atoms come in this order, unit after unit.
    n_formula : int
        Formula units in the cell.
    density : float
        Mass density (g/cm³), from the atomic masses of :mod:`ase.data`.
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    min_distance : float
        Smallest allowed distance (Å) between any two atoms.

    Returns
    -------
    ase.Atoms
        The cubic cell (edge from the density), pbc True.
    """
    length = _cell_length(formula_unit, n_formula, density)
    rng = np.random.default_rng(seed)
    symbols = list(formula_unit) * n_formula
    positions = []
    while len(positions) < len(symbols):
        trial = rng.uniform(0, length, 3)
        d = np.array(positions) - trial if positions else np.zeros((0, 3))
        d -= length * np.round(d / length)
        if not len(d) or np.min(np.linalg.norm(d, axis=1)) > min_distance:
            positions.append(trial)
    return Atoms(symbols, positions=positions, cell=[length] * 3, pbc=True)


def random_packing(formula_unit: Sequence[str], n_formula: int, density: float,
                   min_distances: Mapping[tuple[str, str], float], seed: int = 0, start_distance: float = 1.0,
                   max_iterations: int = 5000, tolerance: float = 0.02) -> Atoms:
    """Random cubic cell whose pairs are no closer than species-pair distances: a start for melting a liquid.

    A :func:`random_cubic_cell` (``start_distance``) whose overlapping pairs are then pushed apart along
    their bond (steepest descent on a harmonic overlap penalty) until no pair overlaps by more than
    ``tolerance``. Plain random packings put pairs far inside the repulsive wall of any potential
    trained on crystals, which then explodes within a few femtoseconds.

    Parameters
    ----------
    formula_unit : sequence of str
        Symbols of one formula unit, e.g. ``("Zn", "O")``.
    n_formula : int
        Formula units in the cell.
    density : float
        Mass density (g/cm³).
    min_distances : mapping
        ``{(A, B): Å}``, symmetric; pairs not listed are not constrained.
    seed : int
        Seed of the random start.
    start_distance : float
        Closest distance (Å) of the random start.
    max_iterations : int
        Push steps before giving up (RuntimeError).
    tolerance : float
        Largest overlap (Å) left.

    Returns
    -------
    ase.Atoms
        The packed cell, positions wrapped into it.
    """
    table = np.zeros((119, 119))
    for (a, b), d in min_distances.items():
        if not d > 0:
            raise ValueError(f"min_distances must be positive lengths (Å), got {(a, b)}: {d}")
        table[atomic_numbers[a], atomic_numbers[b]] = table[atomic_numbers[b], atomic_numbers[a]] = d
    atoms = random_cubic_cell(formula_unit, n_formula, density, seed, min_distance=start_distance)
    reach = float(table.max())
    for _ in range(max_iterations):
        nl = neighbor_list(atoms, reach)
        d = nl.distances()
        overlap = np.clip(table[atoms.numbers[nl.i], atoms.numbers[nl.j]] - d, 0.0, None)
        if not len(d) or overlap.max() < tolerance:
            break
        push = (0.25 * overlap / d)[:, None] * nl.vectors  # each pair appears twice (i→j and j→i)
        step = np.zeros_like(atoms.positions)
        np.add.at(step, nl.j, push)
        np.add.at(step, nl.i, -push)
        atoms.positions += step
    else:
        raise RuntimeError(f"no packing of {n_formula} × {''.join(formula_unit)} at {density} g/cm³ with these "
                           f"closest distances after {max_iterations} iterations (largest overlap "
                           f"{overlap.max():.2f} Å)")
    atoms.wrap()
    return atoms
