"""Structure builders for the ZnO reference data: polymorphs, perturbations, slabs, clusters, liquid.

Every builder is deterministic (explicit seeds) so that a task name fully identifies its structure.
Lengths in Å, angles in degrees, temperatures in K.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk, make_supercell, surface
from ase.spacegroup import crystal

#: Starting lattice parameters (Å) close to PBE values; the E–V curves refine them.
POLYMORPH_PARAMETERS = {
    "wurtzite": {"a": 3.29, "c": 5.30, "u": 0.38},  # B4, P6_3mc
    "zincblende": {"a": 4.63},  # B3, F-43m
    "rocksalt": {"a": 4.33},  # B1, Fm-3m
    "cscl": {"a": 2.68},  # B2, Pm-3m
    "hbn": {"a": 3.43, "c": 4.50},  # B_k "5-5", P6_3/mmc (wurtzite with u = 1/2)
    "bct": {"a": 5.62, "c": 3.26, "x": 0.18},  # BCT-4, P4_2/mnm, Zn 4f (x,x,0), O 4g (x,-x,0)
}
POLYMORPHS = tuple(POLYMORPH_PARAMETERS)


def polymorph(name: str, cubic: bool = False, **params: float) -> Atoms:
    """Primitive (or conventional cubic, ``cubic=True``) cell of a ZnO polymorph.

    ``params`` override the defaults in :data:`POLYMORPH_PARAMETERS` (a, c in Å; u, x fractional).
    """
    if name not in POLYMORPH_PARAMETERS:
        raise ValueError(f"unknown polymorph {name!r}; choose one of {POLYMORPHS}")
    p = {**POLYMORPH_PARAMETERS[name], **params}
    if name == "wurtzite":
        atoms = bulk("ZnO", "wurtzite", a=p["a"], c=p["c"], u=p["u"])
    elif name == "hbn":
        atoms = bulk("ZnO", "wurtzite", a=p["a"], c=p["c"], u=0.5)
    elif name == "zincblende":
        atoms = bulk("ZnO", "zincblende", a=p["a"], cubic=cubic)
    elif name == "rocksalt":
        atoms = bulk("ZnO", "rocksalt", a=p["a"], cubic=cubic)
    elif name == "cscl":
        atoms = bulk("ZnO", "cesiumchloride", a=p["a"])
    else:  # bct
        x = p["x"]
        atoms = crystal(["Zn", "O"], basis=[(x, x, 0.0), (x, -x, 0.0)], spacegroup=136,
                        cellpar=[p["a"], p["a"], p["c"], 90, 90, 90])
    atoms.info["phase"] = name
    return atoms


def supercell_of(atoms: Atoms, reps) -> Atoms:
    """Diagonal supercell ``reps = (n1, n2, n3)`` keeping ``info``."""
    big = make_supercell(atoms, np.diag(reps))
    big.info.update(atoms.info)
    return big


def strained(atoms: Atoms, strain) -> Atoms:
    """Apply a homogeneous strain: a scalar (isotropic, linear) or a 3×3 symmetric tensor ε."""
    eps = np.eye(3) * float(strain) if np.isscalar(strain) else np.asarray(strain, float)
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
    return out


def random_shear(magnitude: float, seed: int) -> np.ndarray:
    """Random traceless symmetric strain tensor with off-diagonal components in ±``magnitude``."""
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
    """Gaussian random displacements of standard deviation ``sigma`` (Å) on every Cartesian component."""
    out = atoms.copy()
    rng = np.random.default_rng(seed)
    out.positions += rng.normal(0.0, sigma, out.positions.shape)
    return out


def transition_path(lam: float) -> Atoms:
    """Wurtzite → h-BN path: u, a and c interpolated linearly with ``lam`` in [0, 1]."""
    w, h = POLYMORPH_PARAMETERS["wurtzite"], POLYMORPH_PARAMETERS["hbn"]
    a = (1 - lam) * w["a"] + lam * h["a"]
    c = (1 - lam) * w["c"] + lam * h["c"]
    u = (1 - lam) * w["u"] + lam * 0.5
    atoms = bulk("ZnO", "wurtzite", a=a, c=c, u=u)
    atoms.info["phase"] = "wurtzite-hbn"
    return atoms


def nonpolar_slab(miller: str, layers: int, vacuum: float, a: float, c: float, u: float) -> Atoms:
    """Symmetric, stoichiometric wurtzite slab of the non-polar (10-10) or (11-20) surface.

    ``layers`` counts repeats of the surface cell along the normal (z): a (10-10) layer is a ZnO double
    layer (two atomic planes, 0.95 and 1.90 Å apart at a = 3.29 Å), an (11-20) layer a single atomic
    plane (planes a/2 apart); ``vacuum`` (Å) is added on each side.
    The cell is periodic in x and y only (pbc z False) so that it also works as an isolated-slab model.
    """
    indices = {"10-10": (1, 0, 0), "11-20": (1, 1, 0)}
    if miller not in indices:
        raise ValueError(f"unknown surface {miller!r}; choose one of {tuple(indices)}")
    conv = bulk("ZnO", "wurtzite", a=a, c=c, u=u)
    # periodic=False: with periodic=True, ase.build.surface wraps the scaled positions along the normal
    # too, and an atom of the bottom plane at a height of −1e-16 (rounding, for some a, c, u) jumps to the
    # top: a slab with half-filled outer planes and twofold-coordinated atoms. Where that does not
    # happen (e.g. at plan.SURFACE) both settings give the same positions.
    slab = surface(conv, indices[miller], layers, vacuum=vacuum, periodic=False)
    slab.pbc = (True, True, False)
    slab.info["surface"] = miller
    return slab


def random_liquid(n_formula: int, density: float, seed: int, min_distance: float = 1.7) -> Atoms:
    """Random cubic (ZnO)_n cell at ``density`` (g/cm³) with no pair closer than ``min_distance`` (Å)."""
    mass = n_formula * (65.38 + 15.999) / 6.02214076e23  # g
    length = (mass / density * 1e24) ** (1 / 3)  # Å
    rng = np.random.default_rng(seed)
    symbols = ["Zn", "O"] * n_formula
    positions = []
    while len(positions) < len(symbols):
        trial = rng.uniform(0, length, 3)
        d = np.array(positions) - trial if positions else np.zeros((0, 3))
        d -= length * np.round(d / length)
        if not len(d) or np.min(np.linalg.norm(d, axis=1)) > min_distance:
            positions.append(trial)
    return Atoms(symbols, positions=positions, cell=[length] * 3, pbc=True)


def wurtzite_cluster(n_formula: int, seed: int = 0) -> Atoms:
    """Stoichiometric (ZnO)_n cut from wurtzite: the n Zn and n O atoms closest to a bond centre."""
    p = POLYMORPH_PARAMETERS["wurtzite"]
    big = supercell_of(bulk("ZnO", "wurtzite", a=p["a"], c=p["c"], u=p["u"]), (5, 5, 3))
    centre = big.positions[big.numbers == 30].mean(axis=0) + np.random.default_rng(seed).normal(0, 0.1, 3)
    keep = []
    for z in (30, 8):
        idx = np.flatnonzero(big.numbers == z)
        dist = np.linalg.norm(big.positions[idx] - centre, axis=1)
        keep.extend(idx[np.argsort(dist)[:n_formula]])
    cluster = big[sorted(keep)]
    cluster.pbc = False
    cluster.cell = None
    return cluster


def ring_cluster(n_formula: int, bond: float = 1.86) -> Atoms:
    """Planar (ZnO)_n ring with alternating Zn and O, Zn–O distance ``bond`` (Å)."""
    m = 2 * n_formula
    radius = bond / (2 * np.sin(np.pi / m))
    angles = 2 * np.pi * np.arange(m) / m
    positions = radius * np.column_stack([np.cos(angles), np.sin(angles), np.zeros(m)])
    return Atoms(["Zn", "O"] * n_formula, positions=positions)


def cage_cluster(kind: str = "sodalite12", bond: float = 1.93) -> Atoms:
    """Bubble (cage) clusters built from hexagons and squares of alternating Zn and O.

    ``"sodalite12"``: the (ZnO)_12 truncated octahedron (6 squares, 8 hexagons), the classic
    low-energy cage of Zn12O12. Vertices are the permutations of (0, ±1, ±2) scaled so that edges
    equal ``bond``; Zn and O alternate along every edge (the graph is bipartite).
    """
    if kind != "sodalite12":
        raise ValueError(f"unknown cage {kind!r}; only 'sodalite12' is built in")
    from itertools import permutations, product
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
    return Atoms(["Zn" if col == 0 else "O" for col in colour], positions=verts)


def isolated_atom(symbol: str) -> Atoms:
    """One atom at the origin (put it in a box with :func:`in_box`)."""
    return Atoms(symbol, positions=[[0.0, 0.0, 0.0]])


def in_box(atoms: Atoms, vacuum: float) -> Atoms:
    """Centre an isolated cluster in an orthorhombic box with ``vacuum`` (Å) on every side; pbc False."""
    out = atoms.copy()
    out.pbc = False
    out.center(vacuum=vacuum)
    return out
