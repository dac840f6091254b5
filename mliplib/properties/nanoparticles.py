"""Nanoparticles (isolated clusters): relaxation with a kept trajectory, RMSD after optimal superposition
(Kabsch; optionally with the best assignment of like atoms), coordination histograms, bond graphs, a
comparison table and sanity diagnostics of a relaxed cluster. Build clusters with
:mod:`mliplib.builders` (``cluster_cut``, ``ring``, ``sodalite_cage``, ``in_box``).

Bonds are pairs closer than species-pair cutoffs ``{(A, B): Å}`` (see
:func:`~mliplib.properties.structure.coordination_numbers`), which every bond-based function takes as
an argument: they depend on the material, e.g. ``{("Zn", "O"): 2.5}`` for ZnO.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.formula import Formula
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mliplib.neighbors import neighbor_list
from mliplib.properties.relax import RelaxLog, relax
from mliplib.properties.structure import (
    coordination_numbers,
    cutoff_matrix,
    shortest_distance,
)

__all__ = [
    "Alignment",
    "align",
    "aligned_rmsd",
    "bond_lengths",
    "cluster_diagnostics",
    "compare_structures",
    "coordination_histogram",
    "formula_units",
    "fragments",
    "kabsch",
    "relax_cluster",
    "ring_geometry",
]


def relax_cluster(atoms: Atoms, calc, fmax: float = 0.05, steps: int = 300,
                  optimizer: str = "BFGS") -> tuple[Atoms, RelaxLog]:
    """Relax the positions of an isolated cluster (cell untouched), keeping every step.

    A model failure (NaN, calculator error) stops the run: see ``log.failure``.

    Parameters
    ----------
    atoms : ase.Atoms
        The start (not modified).
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    fmax : float
        Force criterion (eV/Å).
    steps : int
        Most optimiser steps.
    optimizer : str
        ASE optimiser name (see :func:`~mliplib.properties.relax.relax`).

    Returns
    -------
    tuple
        (relaxed ase.Atoms, :class:`~mliplib.properties.relax.RelaxLog` with ``trajectory``).
    """
    return relax(atoms, calc, fmax=fmax, cell=False, steps=steps, optimizer=optimizer, keep_trajectory=True)


def kabsch(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Proper rotation minimising Σ |R p_k − q_k|² (Kabsch algorithm, no reflection).

    Parameters
    ----------
    p, q : numpy.ndarray, shape (n, 3)
        Centred point sets.

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        The rotation R.
    """
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

    Parameters
    ----------
    a, b : ase.Atoms
        Same number of atoms; same composition (``permute=True``) or same species order.
    permute : bool
        Match like atoms by assignment instead of by index.
    max_candidates : int
        Starting orientations tried with ``permute=True``.

    Returns
    -------
    Alignment
        RMSD (Å), rotation, translation, permutation and the aligned copy of ``a``.
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
    """RMSD between two structures after optimal superposition (:func:`align`).

    Parameters
    ----------
    a, b : ase.Atoms
        The structures.
    permute : bool
        Match like atoms by assignment (see :func:`align`).

    Returns
    -------
    float
        RMSD (Å).
    """
    return align(a, b, permute=permute).rmsd


def coordination_histogram(atoms: Atoms, cutoffs, species: str | None = None) -> dict[int, int]:
    """How many atoms have each coordination number.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    cutoffs : float or mapping
        As in :func:`~mliplib.properties.structure.coordination_numbers`.
    species : str, optional
        Count only the atoms of this species (default: all).

    Returns
    -------
    dict of int to int
        {coordination number: number of atoms}, sorted.
    """
    cn = coordination_numbers(atoms, cutoffs)
    if species is not None:
        cn = cn[np.array(atoms.get_chemical_symbols()) == species]
    return dict(sorted(Counter(cn.tolist()).items()))


def _mean_bond(atoms: Atoms, cutoffs) -> float:
    table, r_max = cutoff_matrix(cutoffs)
    nl = neighbor_list(atoms, r_max)
    d = nl.distances()
    d = d[d < table[atoms.numbers[nl.i], atoms.numbers[nl.j]]]
    return float(d.mean()) if len(d) else float("nan")


def compare_structures(structures: Mapping[str, Atoms], references: Mapping[str, Atoms], cutoffs,
                       permute: bool = True) -> list[dict]:
    """Table comparing each structure with the reference of the same name (e.g. model vs DFT relaxed
    clusters).

    Parameters
    ----------
    structures, references : mapping of str to ase.Atoms
        Names missing in ``references`` raise KeyError.
    cutoffs : float or mapping
        Bond cutoffs (see :func:`~mliplib.properties.structure.coordination_numbers`).
    permute : bool
        Match like atoms by assignment (see :func:`align`).

    Returns
    -------
    list of dict
        One row per structure: name, n_atoms, rmsd (Å, :func:`aligned_rmsd`), max_deviation (Å, largest
        atomic distance after alignment), mean_bond / mean_bond_ref (Å), mean_cn / mean_cn_ref (bonds
        per atom).
    """
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
    """i, j (i < j) and lengths (Å) of the bonds within ``cutoffs``."""
    table, r_max = cutoff_matrix(cutoffs)
    nl = neighbor_list(atoms, r_max)
    d = nl.distances()
    keep = (d < table[atoms.numbers[nl.i], atoms.numbers[nl.j]]) & (nl.i < nl.j)
    return nl.i[keep], nl.j[keep], d[keep]


def bond_lengths(atoms: Atoms, cutoffs) -> np.ndarray:
    """Lengths of the bonds, each once.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    cutoffs : float or mapping
        Bond cutoffs (see :func:`~mliplib.properties.structure.coordination_numbers`).

    Returns
    -------
    numpy.ndarray, shape (n_bonds,)
        Lengths (Å).
    """
    return _bonds(atoms, cutoffs)[2]


def fragments(atoms: Atoms, cutoffs) -> np.ndarray:
    """The connected piece of the bond graph each atom belongs to (an intact cluster has one label).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    cutoffs : float or mapping
        Bond cutoffs (see :func:`~mliplib.properties.structure.coordination_numbers`).

    Returns
    -------
    numpy.ndarray of int, shape (n_atoms,)
        Labels 0, 1, ...
    """
    n = len(atoms)
    if n == 0:
        return np.zeros(0, dtype=int)
    i, j, _ = _bonds(atoms, cutoffs)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def formula_units(atoms: Atoms, formula: str) -> int:
    """n for a structure that is exactly (``formula``)_n; ValueError otherwise (other elements, another
    stoichiometry). Unlike :func:`mliplib.properties.bulk.n_formula_units` it checks the composition.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    formula : str
        The formula unit, e.g. ``"ZnO"`` or ``"Al2O3"``.

    Returns
    -------
    int
    """
    unit = Formula(formula).count()
    have = Counter(atoms.get_chemical_symbols())
    n = len(atoms) // sum(unit.values())
    if n == 0 or have != {element: n * count for element, count in unit.items()}:
        raise ValueError(f"not a stoichiometric ({formula})_n structure: {atoms.get_chemical_formula()}")
    return n


def cluster_diagnostics(atoms: Atoms, cutoffs, formula: str, min_distance: float, energy: float | None = None,
                        bulk_energy: float | None = None, start_energy: float | None = None) -> dict:
    """Physical sanity of a relaxed (``formula``)_n cluster, for reporting a model's failure instead of
    crashing.

    The ``problems`` found, empty for a sane cluster: non-finite positions or energy, atoms closer than
    ``min_distance``, a cluster that fell apart (more than one fragment of the bond graph), an energy
    below the bulk crystal (a cluster cannot be more stable than the crystal: a runaway of the model),
    or a relaxation that ended above its start. The last one can pass every other check: ASE's BFGS
    has no line search and accepts uphill steps, so it can jump over a narrow well onto a flat region
    of the model's surface and report convergence there (small forces, not a minimum reached by going
    downhill).

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster.
    cutoffs : float or mapping
        Bond cutoffs (see :func:`~mliplib.properties.structure.coordination_numbers`).
    formula : str
        Its formula unit (the cluster must be exactly (formula)_n, see :func:`formula_units`).
    min_distance : float
        Atoms closer than this (Å) are a problem.
    energy : float, optional
        The cluster's energy (eV).
    bulk_energy : float, optional
        Energy per formula unit of the bulk crystal (eV/f.u.), from the same model or DFT.
    start_energy : float, optional
        Energy (eV) of the structure the relaxation started from.

    Returns
    -------
    dict
        ``shortest`` (Å), ``n_fragments``, ``largest_fragment`` (atoms), ``mean_cn``, ``mean_bond`` (Å),
        ``n_formula``, ``excess_energy`` (eV/f.u. above the bulk, NaN without energies),
        ``relaxation_energy`` (energy − start_energy, eV/f.u., NaN without both) and ``problems``
        (list of str).
    """
    n_formula = formula_units(atoms, formula)
    out = {"shortest": np.nan, "n_fragments": 0, "largest_fragment": 0, "mean_cn": np.nan, "mean_bond": np.nan,
           "n_formula": n_formula, "excess_energy": np.nan, "relaxation_energy": np.nan, "problems": []}
    if not np.all(np.isfinite(atoms.positions)):
        out["problems"].append("non-finite positions")
        return out
    out["shortest"] = shortest_distance(atoms)
    labels = fragments(atoms, cutoffs)
    sizes = np.bincount(labels)
    out["n_fragments"], out["largest_fragment"] = len(sizes), int(sizes.max())
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
                out["problems"].append(f"energy {-out['excess_energy']:.3f} eV/{formula} below the bulk crystal")
        if np.isfinite(energy) and start_energy is not None and np.isfinite(start_energy):
            out["relaxation_energy"] = float((energy - start_energy) / n_formula)
            if out["relaxation_energy"] > 0:
                out["problems"].append(f"ended {out['relaxation_energy']:.3f} eV/{formula} above its start")
    return out


def ring_geometry(atoms: Atoms, cutoffs) -> dict:
    """Shape of an (AB)_n ring. For a planar ring of 2n atoms the two mean angles add up to 360° (n − 1)/n.

    Parameters
    ----------
    atoms : ase.Atoms
        The ring (two species, A and B alternating).
    cutoffs : float or mapping
        Bond cutoffs (see :func:`~mliplib.properties.structure.coordination_numbers`).

    Returns
    -------
    dict
        ``is_ring`` (one piece, every atom with exactly two bonds); ``mean_bond`` and ``bond_range``
        (max − min) of the bond lengths (Å); per species X (lower-case symbol, e.g. ``angle_zn`` and
        ``angle_o`` for ZnO): ``angle_x``, the mean bond angle at the X atoms in degrees (NaN unless
        ``is_ring``), and ``radius_x``, the mean distance of the X atoms from the centroid (Å);
        ``nonplanarity``, the rms distance of the atoms from their best-fit plane (Å).
    """
    species = list(dict.fromkeys(atoms.numbers.tolist()))
    if len(species) != 2:
        raise ValueError(f"ring_geometry needs a ring of two species, got {atoms.get_chemical_formula()}")
    i, j, d = _bonds(atoms, cutoffs)
    x = atoms.positions - atoms.positions.mean(axis=0)
    cn = np.bincount(np.concatenate([i, j]), minlength=len(atoms))
    is_ring = bool(len(atoms) >= 4 and np.all(cn == 2) and len(set(fragments(atoms, cutoffs))) == 1)
    angles = {z: [] for z in species}
    if is_ring:
        for centre in range(len(atoms)):
            a, b = np.concatenate([j[i == centre], i[j == centre]])
            u, v = x[a] - x[centre], x[b] - x[centre]
            cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
            angles[atoms.numbers[centre]].append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    r = np.linalg.norm(x, axis=1)
    names = {z: chemical_symbols[z].lower() for z in species}
    return {"is_ring": is_ring, "mean_bond": float(d.mean()) if len(d) else float("nan"),
            "bond_range": float(d.max() - d.min()) if len(d) else float("nan"),
            **{f"angle_{names[z]}": float(np.mean(angles[z])) if is_ring else float("nan") for z in species},
            "nonplanarity": float(np.linalg.svd(x, compute_uv=False)[-1] / np.sqrt(len(atoms))),
            **{f"radius_{names[z]}": float(r[atoms.numbers == z].mean()) for z in species}}
