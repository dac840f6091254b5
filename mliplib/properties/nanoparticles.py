"""Nanoparticles (isolated clusters): relaxation with a kept trajectory, RMSD after optimal superposition
(Kabsch; optionally with the best assignment of like atoms), coordination histograms and a comparison
table. Build clusters with :mod:`mliplib.reference.structures` (``ring_cluster``, ``cage_cluster``,
``wurtzite_cluster``, ``in_box``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.formula import Formula
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mliplib.neighbors import neighbor_list
from mliplib.properties.relax import RelaxLog, relax
from mliplib.properties.structure import _cutoff_matrix, coordination_numbers, shortest_distance

__all__ = ["ZNO_BOND_CUTOFFS", "MIN_DISTANCE", "relax_cluster", "kabsch", "Alignment", "align", "aligned_rmsd",
           "coordination_histogram", "compare_structures", "bond_lengths", "fragments",
           "formula_units", "cluster_diagnostics", "ring_geometry"]

#: Zn–O bond cutoff (Å) between the first (≈1.8–2.1 Å) and second (≈3.2 Å) shells.
ZNO_BOND_CUTOFFS = {("Zn", "O"): 2.5}
#: Atoms closer than this (Å) are unphysical for ZnO: the shortest Zn–O bond (ZnO molecule) is ≈ 1.7 Å.
MIN_DISTANCE = 1.2


def relax_cluster(atoms: Atoms, calc, fmax: float = 0.05, steps: int = 300,
                  optimizer: str = "BFGS") -> tuple[Atoms, RelaxLog]:
    """Relax the positions of an isolated cluster (cell untouched); ``log.trajectory`` keeps every step.
    fmax eV/Å. A model failure (NaN, calculator error) stops the run: see ``log.failure``."""
    return relax(atoms, calc, fmax=fmax, cell=False, steps=steps, optimizer=optimizer, keep_trajectory=True)


def kabsch(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Proper rotation R (3×3) minimising Σ |R p_k − q_k|² for centred point sets p, q of shape (n, 3)."""
    h = p.T @ q
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


@dataclasses.dataclass
class Alignment:
    """rmsd (Å) of ``a`` superposed on ``b``; rotation (3×3) and translation (3,) with
    a_aligned = a[permutation] @ rotation.T + translation ≈ b; aligned: that copy of ``a``."""

    rmsd: float
    rotation: np.ndarray
    translation: np.ndarray
    permutation: np.ndarray
    aligned: Atoms


def _check_pair(a: Atoms, b: Atoms, permute: bool) -> None:
    if len(a) != len(b):
        raise ValueError(f"structures differ in size ({len(a)} vs {len(b)} atoms)")
    if permute:
        if Counter(a.numbers.tolist()) != Counter(b.numbers.tolist()):
            raise ValueError(f"compositions differ: {a.get_chemical_formula()} vs {b.get_chemical_formula()}")
    elif not np.array_equal(a.numbers, b.numbers):
        raise ValueError("the atoms are not in the same order (species differ index by index); "
                         "use permute=True")
    if len(a) == 0:
        raise ValueError("empty structures")


def _assign(x: np.ndarray, y: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """perm with x[perm[k]] matched to y[k], like species only, minimising Σ |x − y|² (Hungarian)."""
    perm = np.empty(len(y), dtype=int)
    for z in np.unique(numbers[1]):
        ia = np.flatnonzero(numbers[0] == z)
        ib = np.flatnonzero(numbers[1] == z)
        cost = np.sum((y[ib, None, :] - x[None, ia, :]) ** 2, axis=-1)
        rows, cols = linear_sum_assignment(cost)
        perm[ib[rows]] = ia[cols]
    return perm


def _rmsd(x, y) -> float:
    return float(np.sqrt(np.mean(np.sum((x - y) ** 2, axis=1))))


def _refine(x, y, numbers, rotation, max_iter=20):
    """Alternate Hungarian assignment and Kabsch rotation from a starting rotation (centred x, y)."""
    perm = _assign(x @ rotation.T, y, numbers)
    for _ in range(max_iter):
        rotation = kabsch(x[perm], y)
        new = _assign(x @ rotation.T, y, numbers)
        if np.array_equal(new, perm):
            break
        perm = new
    rotation = kabsch(x[perm], y)
    return _rmsd(x[perm] @ rotation.T, y), rotation, perm


def _frame_rotation(p1, p2, q1, q2) -> np.ndarray:
    """Rotation taking the orthonormal frame of (p1, p2) onto that of (q1, q2)."""
    def frame(u, v):
        e1 = u / np.linalg.norm(u)
        e3 = np.cross(u, v)
        e3 /= np.linalg.norm(e3)
        return np.column_stack([e1, np.cross(e3, e1), e3])
    return frame(q1, q2) @ frame(p1, p2).T


def align(a: Atoms, b: Atoms, permute: bool = False, max_candidates: int = 400) -> Alignment:
    """Superpose ``a`` onto ``b`` by translation and proper rotation (no reflection) and report the RMSD.

    permute=False: atoms correspond index by index (Kabsch on the centroids). permute=True: atoms of the
    same species are matched by the Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`);
    as the matching depends on the orientation, starting orientations are generated by mapping two
    anchor atoms of ``a`` (far from the centroid, non-collinear) onto same-species pairs of ``b`` with the
    most similar radii and separation (the ``max_candidates`` best), each refined by alternating
    assignment and Kabsch; the lowest RMSD wins. Positions are used as given (unwrapped clusters).
    """
    _check_pair(a, b, permute)
    x = a.positions - a.positions.mean(axis=0)
    y = b.positions - b.positions.mean(axis=0)
    numbers = (a.numbers, b.numbers)
    if not permute:
        rotation = kabsch(x, y)
        best = (_rmsd(x @ rotation.T, y), rotation, np.arange(len(a)))
    else:
        best = _refine(x, y, numbers, np.eye(3))
        r = np.linalg.norm(x, axis=1)
        if len(a) >= 3 and best[0] > 1e-8:
            k1 = int(np.argmax(r))
            cross = np.linalg.norm(np.cross(x[k1], x), axis=1)
            k2 = int(np.argmax(cross))
            if cross[k2] > 1e-6 * max(r[k1], 1e-12) ** 2:
                rb = np.linalg.norm(y, axis=1)
                c1 = np.flatnonzero(b.numbers == a.numbers[k1])
                c2 = np.flatnonzero(b.numbers == a.numbers[k2])
                d12 = np.linalg.norm(x[k1] - x[k2])
                mismatch = (np.abs(rb[c1, None] - r[k1]) + np.abs(rb[None, c2] - r[k2])
                            + np.abs(np.linalg.norm(y[c1, None] - y[None, c2], axis=-1) - d12))
                mismatch[c1[:, None] == c2[None, :]] = np.inf
                order = np.argsort(mismatch, axis=None)[:max_candidates]
                for flat in order:
                    i1, i2 = np.unravel_index(flat, mismatch.shape)
                    if not np.isfinite(mismatch[i1, i2]):
                        break
                    q1, q2 = y[c1[i1]], y[c2[i2]]
                    if np.linalg.norm(np.cross(q1, q2)) < 1e-9:
                        continue
                    trial = _refine(x, y, numbers, _frame_rotation(x[k1], x[k2], q1, q2))
                    if trial[0] < best[0]:
                        best = trial
                    if best[0] < 1e-8:
                        break
    rmsd, rotation, perm = best
    translation = b.positions.mean(axis=0) - a.positions.mean(axis=0) @ rotation.T
    aligned = a[perm]
    aligned.positions = a.positions[perm] @ rotation.T + translation
    return Alignment(rmsd, rotation, translation, perm, aligned)


def aligned_rmsd(a: Atoms, b: Atoms, permute: bool = False) -> float:
    """RMSD (Å) between ``a`` and ``b`` after optimal superposition; see :func:`align` for ``permute``."""
    return align(a, b, permute=permute).rmsd


def coordination_histogram(atoms: Atoms, cutoffs=None, species: str | None = None) -> dict[int, int]:
    """{coordination number: number of atoms} for the atoms of ``species`` (all if None);
    cutoffs as in :func:`~mliplib.properties.structure.coordination_numbers` (default: Zn–O bonds)."""
    cn = coordination_numbers(atoms, ZNO_BOND_CUTOFFS if cutoffs is None else cutoffs)
    if species is not None:
        cn = cn[np.array(atoms.get_chemical_symbols()) == species]
    return dict(sorted(Counter(cn.tolist()).items()))


def _mean_bond(atoms: Atoms, cutoffs) -> float:
    table, r_max = _cutoff_matrix(cutoffs)
    nl = neighbor_list(atoms, r_max)
    d = nl.distances()
    d = d[d < table[atoms.numbers[nl.i], atoms.numbers[nl.j]]]
    return float(d.mean()) if len(d) else float("nan")


def compare_structures(structures: Mapping[str, Atoms], references: Mapping[str, Atoms], cutoffs=None,
                       permute: bool = True) -> list[dict]:
    """Table comparing each structure with the reference of the same name (e.g. model vs DFT relaxed
    clusters). Row: name, n_atoms, rmsd (Å, :func:`aligned_rmsd`), max_deviation (Å, largest atomic
    distance after alignment), mean_bond / mean_bond_ref (Å), mean_cn / mean_cn_ref (bonds per atom),
    for bonds within ``cutoffs`` (default :data:`ZNO_BOND_CUTOFFS`). Names missing in ``references``
    raise KeyError.
    """
    cutoffs = ZNO_BOND_CUTOFFS if cutoffs is None else cutoffs
    rows = []
    for name, atoms in structures.items():
        if name not in references:
            raise KeyError(f"no reference structure named {name!r}; have {sorted(references)}")
        ref = references[name]
        fit = align(atoms, ref, permute=permute)
        deviation = np.linalg.norm(fit.aligned.positions - ref.positions, axis=1)
        rows.append({"name": name, "n_atoms": len(atoms), "rmsd": fit.rmsd,
                     "max_deviation": float(deviation.max()),
                     "mean_bond": _mean_bond(atoms, cutoffs), "mean_bond_ref": _mean_bond(ref, cutoffs),
                     "mean_cn": float(coordination_numbers(atoms, cutoffs).mean()),
                     "mean_cn_ref": float(coordination_numbers(ref, cutoffs).mean())})
    return rows


def _bonds(atoms: Atoms, cutoffs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """i, j (i < j) and lengths (Å) of the bonds within ``cutoffs`` (default :data:`ZNO_BOND_CUTOFFS`)."""
    table, r_max = _cutoff_matrix(ZNO_BOND_CUTOFFS if cutoffs is None else cutoffs)
    nl = neighbor_list(atoms, r_max)
    d = nl.distances()
    keep = (d < table[atoms.numbers[nl.i], atoms.numbers[nl.j]]) & (nl.i < nl.j)
    return nl.i[keep], nl.j[keep], d[keep]


def bond_lengths(atoms: Atoms, cutoffs=None) -> np.ndarray:
    """Lengths (Å) of the bonds (each once) within ``cutoffs`` (default: Zn–O < 2.5 Å), shape (n_bonds,)."""
    return _bonds(atoms, cutoffs)[2]


def fragments(atoms: Atoms, cutoffs=None) -> np.ndarray:
    """Label (n_atoms,) int of the connected piece of the bond graph each atom belongs to (0, 1, ...;
    bonds within ``cutoffs``, default Zn–O < 2.5 Å). An intact cluster has a single label."""
    n = len(atoms)
    if n == 0:
        return np.zeros(0, dtype=int)
    i, j, _ = _bonds(atoms, cutoffs)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def formula_units(atoms: Atoms, formula: str = "ZnO") -> int:
    """n for a structure that is exactly (``formula``)_n; ValueError otherwise (other elements, another
    stoichiometry). Unlike :func:`mliplib.properties.bulk.n_formula_units` it checks the composition."""
    unit = Formula(formula).count()
    have = Counter(atoms.get_chemical_symbols())
    n = len(atoms) // sum(unit.values())
    if n == 0 or have != {element: n * count for element, count in unit.items()}:
        raise ValueError(f"not a stoichiometric ({formula})_n structure: {atoms.get_chemical_formula()}")
    return n


def cluster_diagnostics(atoms: Atoms, energy: float | None = None, bulk_energy: float | None = None,
                        cutoffs=None, min_distance: float = MIN_DISTANCE,
                        start_energy: float | None = None) -> dict:
    """Physical sanity of a relaxed (ZnO)_n cluster, for reporting a model's failure instead of crashing.

    energy: the cluster's energy (eV); bulk_energy: energy per ZnO of the bulk crystal (eV/f.u.), from
    the same model or DFT; start_energy: the energy (eV) of the structure the relaxation started from.
    Returns ``shortest`` (Å), ``n_fragments`` and ``largest_fragment`` (atoms) of the bond graph,
    ``mean_cn``, ``mean_bond`` (Å), ``n_formula``, ``excess_energy`` (eV per ZnO above the bulk, NaN
    without energies), ``relaxation_energy`` (energy − start_energy, eV per ZnO, NaN without both) and
    ``problems``: a list of readable findings, empty for a sane cluster — non-finite positions or
    energy, atoms closer than ``min_distance`` Å, a cluster that fell apart (more than one fragment), an
    energy below the bulk crystal (a cluster cannot be more stable than the crystal: a runaway of the
    model), or a relaxation that ended above its start. The last one can pass every other check: ASE's
    BFGS has no line search and accepts uphill steps, so it can jump over a narrow well onto a flat
    region of the model's surface and report convergence there (small forces, not a minimum reached
    by going downhill).
    """
    n_formula = formula_units(atoms)
    out = {"shortest": np.nan, "n_fragments": 0, "largest_fragment": 0, "mean_cn": np.nan, "mean_bond": np.nan,
           "n_formula": n_formula, "excess_energy": np.nan, "relaxation_energy": np.nan, "problems": []}
    if not np.all(np.isfinite(atoms.positions)):
        out["problems"].append("non-finite positions")
        return out
    out["shortest"] = shortest_distance(atoms)
    labels = fragments(atoms, cutoffs)
    sizes = np.bincount(labels)
    out["n_fragments"], out["largest_fragment"] = int(len(sizes)), int(sizes.max())
    bonds = bond_lengths(atoms, cutoffs)
    out["mean_cn"] = 2.0 * len(bonds) / len(atoms)
    out["mean_bond"] = float(bonds.mean()) if len(bonds) else float("nan")
    if out["shortest"] < min_distance:
        out["problems"].append(f"atoms {out['shortest']:.2f} Å apart (< {min_distance} Å)")
    if len(sizes) > 1:
        what = "no bonds left" if sizes.max() == 1 else f"largest {sizes.max()} of {len(atoms)} atoms"
        out["problems"].append(f"fell apart into {len(sizes)} pieces ({what})")
    if energy is not None:
        if not np.isfinite(energy):
            out["problems"].append("non-finite energy")
        elif bulk_energy is not None:
            out["excess_energy"] = float(energy / n_formula - bulk_energy)
            if out["excess_energy"] < 0:
                out["problems"].append(f"energy {-out['excess_energy']:.3f} eV/ZnO below the bulk crystal")
        if np.isfinite(energy) and start_energy is not None and np.isfinite(start_energy):
            out["relaxation_energy"] = float((energy - start_energy) / n_formula)
            if out["relaxation_energy"] > 0:
                out["problems"].append(f"ended {out['relaxation_energy']:.3f} eV/ZnO above its start")
    return out


def ring_geometry(atoms: Atoms, cutoffs=None) -> dict:
    """Shape of a (ZnO)_n ring: ``is_ring`` (one piece, every atom with exactly two Zn–O bonds),
    ``mean_bond`` and ``bond_range`` (max − min) of the bond lengths (Å), the mean bond angles at Zn
    (O–Zn–O) and at O (Zn–O–Zn) in degrees (NaN unless ``is_ring``), ``nonplanarity`` (rms distance of
    the atoms from their best-fit plane, Å) and ``radius_zn``, ``radius_o`` (mean distance of the Zn and
    of the O atoms from the centroid, Å). Bonds within ``cutoffs`` (default Zn–O < 2.5 Å). For a planar
    ring of 2n atoms the two mean angles add up to 360° (n − 1)/n.
    """
    i, j, d = _bonds(atoms, cutoffs)
    x = atoms.positions - atoms.positions.mean(axis=0)
    cn = np.bincount(np.concatenate([i, j]), minlength=len(atoms))
    is_ring = bool(len(atoms) >= 4 and np.all(cn == 2) and len(set(fragments(atoms, cutoffs))) == 1)
    angles = {30: [], 8: []}
    if is_ring:
        for centre in range(len(atoms)):
            a, b = np.concatenate([j[i == centre], i[j == centre]])
            u, v = x[a] - x[centre], x[b] - x[centre]
            cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
            angles[atoms.numbers[centre]].append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    r = np.linalg.norm(x, axis=1)
    return {"is_ring": is_ring, "mean_bond": float(d.mean()) if len(d) else float("nan"),
            "bond_range": float(d.max() - d.min()) if len(d) else float("nan"),
            "angle_zn": float(np.mean(angles[30])) if is_ring else float("nan"),
            "angle_o": float(np.mean(angles[8])) if is_ring else float("nan"),
            "nonplanarity": float(np.linalg.svd(x, compute_uv=False)[-1] / np.sqrt(len(atoms))),
            "radius_zn": float(r[atoms.numbers == 30].mean()), "radius_o": float(r[atoms.numbers == 8].mean())}
