"""Surface energies of slabs: γ = (E_slab − N E_bulk) / (2 A), in J/m².

:func:`relaxed_surface_energy` evaluates a slab and its bulk cell (e.g. a non-polar wurtzite slab of
:func:`mliplib.builders.wurtzite_slab` and :func:`mliplib.builders.binary_crystal` with the same a, c,
u) with one calculator, unrelaxed and after relaxing the ions (the cells stay fixed, so slab and bulk
share the same strain; build both with the model's own lattice parameters to get its own surface
energy). :func:`surface_energies_from_frames` computes the same two numbers from stored relaxations
(first and final frame of each slab and of the bulk), and :func:`surface_relaxation` measures how a
relaxation moved the atoms of each face of an AB slab (inward/outward displacement per atomic plane,
tilt of the A–B bonds in the outermost plane).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from mliplib.properties.bulk import n_formula_units
from mliplib.properties.relax import RelaxLog, relax, snapshot

__all__ = [
    "EV_PER_A2_TO_J_PER_M2",
    "SurfaceRelaxation",
    "SurfaceResult",
    "relaxed_surface_energy",
    "slab_layers",
    "surface_area",
    "surface_energies_from_frames",
    "surface_energy",
    "surface_relaxation",
]

#: 1 eV/Å² in J/m² (1.602176634e-19 J / 1e-20 m²).
EV_PER_A2_TO_J_PER_M2 = 16.02176634


def surface_energy(slab_energy: float, n_formula_slab: float, bulk_energy_per_formula: float,
                   area: float) -> float:
    """γ = (E_slab − N E_bulk) / (2 A), for a slab with two equivalent faces.

    Parameters
    ----------
    slab_energy : float
        E_slab (eV).
    n_formula_slab : float
        N, formula units in the slab.
    bulk_energy_per_formula : float
        E_bulk (eV/f.u.).
    area : float
        A, the area of one face (Å²).

    Returns
    -------
    float
        γ (J/m²).
    """
    if not area > 0:
        raise ValueError(f"area must be positive (Å²), got {area}")
    if not n_formula_slab > 0:
        raise ValueError(f"n_formula_slab must be positive, got {n_formula_slab}")
    return (slab_energy - n_formula_slab * bulk_energy_per_formula) / (2.0 * area) * EV_PER_A2_TO_J_PER_M2


def surface_area(slab: Atoms) -> float:
    """Area of one face of a slab whose surface plane is spanned by cell vectors a1, a2.

    Parameters
    ----------
    slab : ase.Atoms
        The slab.

    Returns
    -------
    float
        |a1 × a2| (Å²).
    """
    return float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))


@dataclasses.dataclass
class SurfaceResult:
    """γ (J/m²) unrelaxed and relaxed; bulk energies in eV/f.u.; area Å²; the four structures and the
    relaxation logs."""

    gamma_unrelaxed: float
    gamma_relaxed: float
    area: float
    n_formula: int
    bulk_energy_unrelaxed: float
    bulk_energy_relaxed: float
    slab: Atoms
    relaxed_slab: Atoms
    bulk: Atoms
    relaxed_bulk: Atoms
    slab_log: RelaxLog
    bulk_log: RelaxLog

    @property
    def max_displacement(self) -> float:
        """Largest displacement (Å) of an atom of the slab during its relaxation (NaN if it failed);
        tenths of an Å for a surface that relaxes, several Å for one that falls apart."""
        if self.slab_log.failure:
            return float("nan")
        return float(np.max(np.linalg.norm(self.relaxed_slab.positions - self.slab.positions, axis=1)))


def relaxed_surface_energy(calc, slab: Atoms, bulk: Atoms, fmax: float = 0.03, steps: int = 200) -> SurfaceResult:
    """Surface energy of a symmetric slab with ``calc``, unrelaxed and with relaxed ions.

    Unrelaxed γ uses slab and bulk as given; relaxed γ relaxes the ions of both (cells fixed). A failed
    relaxation gives NaN for the relaxed γ (see the logs).

    Parameters
    ----------
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    slab : ase.Atoms
        Stoichiometric slab with two equivalent faces, surface plane spanned by a1, a2 (e.g.
        :func:`mliplib.builders.wurtzite_slab`).
    bulk : ase.Atoms
        The bulk cell with the slab's in-plane lattice (e.g. :func:`mliplib.builders.binary_crystal`
        with the same a, c, u).
    fmax : float
        Force criterion (eV/Å).
    steps : int
        Most optimiser steps per relaxation.

    Returns
    -------
    SurfaceResult
    """
    n_slab, n_bulk = n_formula_units(slab), n_formula_units(bulk)
    area = surface_area(slab)
    evaluated = []
    for atoms in (slab, bulk):
        work = atoms.copy()
        work.calc = calc
        evaluated.append(snapshot(work))
    slab0, bulk0 = evaluated
    e_bulk0 = bulk0.get_potential_energy() / n_bulk
    gamma0 = surface_energy(slab0.get_potential_energy(), n_slab, e_bulk0, area)
    relaxed_bulk, bulk_log = relax(bulk, calc, fmax=fmax, cell=False, steps=steps)
    relaxed_slab, slab_log = relax(slab, calc, fmax=fmax, cell=False, steps=steps)
    if bulk_log.failure or slab_log.failure:
        e_bulk, gamma = float("nan"), float("nan")
    else:
        e_bulk = relaxed_bulk.get_potential_energy() / n_bulk
        gamma = surface_energy(relaxed_slab.get_potential_energy(), n_slab, e_bulk, area)
    return SurfaceResult(float(gamma0), float(gamma), area, n_slab, float(e_bulk0), float(e_bulk), slab0,
                         relaxed_slab, bulk0, relaxed_bulk, slab_log, bulk_log)


# ------------------------------------------------------------------------------------------ structure
def _normal(slab: Atoms) -> np.ndarray:
    n = np.cross(slab.cell[0], slab.cell[1])
    norm = np.linalg.norm(n)
    if not norm > 0:
        raise ValueError("the slab's cell vectors a1, a2 must span the surface plane (got a degenerate cell)")
    return n / norm


def slab_layers(slab: Atoms, tol: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atomic planes of a slab whose surface plane is spanned by a1, a2.

    Heights h = r·n along the unit normal n ∝ a1 × a2 are sorted and split into planes wherever two
    consecutive heights differ by more than ``tol`` (Å). Returns ``(layer, side, height)``, each of shape
    (n_atoms,): ``layer`` counts planes from the atom's own face (0 = outermost), ``side`` is +1 for the
    upper half of the slab (outward normal +n) and −1 for the lower half (outward −n), height in Å.

    Parameters
    ----------
    slab : ase.Atoms
        The slab.
    tol : float
        Gap (Å) that separates two planes.

    Returns
    -------
    tuple of three numpy.ndarray, shape (n_atoms,)
        (layer, side, height).
    """
    if len(slab) == 0:
        raise ValueError("empty slab")
    if not tol > 0:
        raise ValueError(f"tol must be > 0 Å, got {tol}")
    height = slab.positions @ _normal(slab)
    order = np.argsort(height)
    plane = np.zeros(len(slab), int)
    plane[order] = np.concatenate([[0], np.cumsum(np.diff(height[order]) > tol)])
    n_planes = plane.max() + 1
    side = np.where(plane >= n_planes / 2, 1, -1)
    layer = np.where(side > 0, n_planes - 1 - plane, plane)
    return layer, side, height


@dataclasses.dataclass
class SurfaceRelaxation:
    """How a relaxation moved the atoms of a symmetric AB slab (both faces averaged).

    displacement: (n_layers, 2) mean outward displacement (Å, > 0 away from the slab) of the A (column 0)
    and B (column 1) atoms of each atomic plane, layer 0 the outermost (NaN where a plane has no such
    atom); tilt_initial, tilt: mean tilt (degrees) out of the surface plane of the A–B bonds within the
    outermost plane (for wurtzite: the dimers of (10-10), the zigzag chains of (11-20)),
    > 0 when B sits further out than A; bond_initial, bond: their mean length (Å); n_bonds: how many
    such bonds (both faces); max_displacement: largest displacement of any atom (Å).
    """

    displacement: np.ndarray
    tilt_initial: float
    tilt: float
    bond_initial: float
    bond: float
    n_bonds: int
    max_displacement: float

    @property
    def surface_a(self) -> float:
        """Outward displacement (Å) of the outermost A atoms (Zn in ZnO)."""
        return float(self.displacement[0, 0])

    @property
    def surface_b(self) -> float:
        """Outward displacement (Å) of the outermost B atoms (O in ZnO)."""
        return float(self.displacement[0, 1])


def _surface_bonds(slab: Atoms, layer: np.ndarray, cutoff: float, species: tuple[int, int]) -> list[tuple[int, int]]:
    """(A, B) index pairs closer than ``cutoff`` with both atoms in the outermost plane of a face."""
    zn = np.flatnonzero((layer == 0) & (slab.numbers == species[0]))
    ox = np.flatnonzero((layer == 0) & (slab.numbers == species[1]))
    pairs = []
    for i in zn:
        if len(ox):
            d = slab.get_distances(i, ox, mic=True)
            pairs.extend((int(i), int(j)) for j in ox[d < cutoff])
    return pairs


def _tilt_and_length(slab: Atoms, pairs, side: np.ndarray) -> tuple[float, float]:
    if not pairs:
        return float("nan"), float("nan")
    n = _normal(slab)
    tilts, lengths = [], []
    for i, j in pairs:
        v = slab.get_distance(i, j, mic=True, vector=True)  # A → B
        up = side[i] * (v @ n)  # along the outward normal of this face
        along = np.linalg.norm(v - (v @ n) * n)
        tilts.append(np.degrees(np.arctan2(up, along)))
        lengths.append(np.linalg.norm(v))
    return float(np.mean(tilts)), float(np.mean(lengths))


def surface_relaxation(initial: Atoms, relaxed: Atoms, bond_cutoff: float = 2.4, tol: float = 0.3,
                       species: tuple[str, str] | None = None) -> SurfaceRelaxation:
    """Compare a relaxed AB slab with its starting structure (same atoms, same order, same cell).

    Planes and faces come from ``initial`` (:func:`slab_layers` with ``tol`` Å), so an atom keeps its
    plane however far it moves. Surface bonds: A–B pairs of the outermost plane closer than
    ``bond_cutoff`` in ``initial``; their tilt is measured in both structures.

    Parameters
    ----------
    initial, relaxed : ase.Atoms
        The slab before and after the relaxation.
    bond_cutoff : float
        Largest A–B bond length (Å) counted as a surface bond.
    tol : float
        Gap (Å) that separates two planes.
    species : tuple of two str, optional
        (A, B); default: the two species in their order of first appearance in ``initial``.

    Returns
    -------
    SurfaceRelaxation
    """
    if len(initial) != len(relaxed) or np.any(initial.numbers != relaxed.numbers):
        raise ValueError("initial and relaxed must hold the same atoms in the same order")
    pair = _species_pair(initial, species)
    if not np.allclose(initial.cell.array, relaxed.cell.array, atol=1e-6):
        raise ValueError("initial and relaxed slabs must share the cell (the surface relaxation keeps it fixed)")
    layer, side, _ = slab_layers(initial, tol)
    shift = relaxed.positions - initial.positions
    outward = side * (shift @ _normal(initial))
    n_layers = layer.max() + 1
    displacement = np.full((n_layers, 2), np.nan)
    for k in range(n_layers):
        for col, z in enumerate(pair):
            sel = (layer == k) & (initial.numbers == z)
            if sel.any():
                displacement[k, col] = outward[sel].mean()
    pairs = _surface_bonds(initial, layer, bond_cutoff, pair)
    tilt0, bond0 = _tilt_and_length(initial, pairs, side)
    tilt1, bond1 = _tilt_and_length(relaxed, pairs, side)
    return SurfaceRelaxation(displacement, tilt0, tilt1, bond0, bond1, len(pairs),
                             float(np.max(np.linalg.norm(shift, axis=1))))


def _species_pair(slab: Atoms, species: tuple[str, str] | None) -> tuple[int, int]:
    """Atomic numbers (A, B): of ``species``, or the two species of ``slab`` in order of first appearance."""
    if species is None:
        present = list(dict.fromkeys(slab.numbers.tolist()))
        if len(present) != 2:
            raise ValueError(f"expected a slab of two species, got {slab.get_chemical_formula()}; pass species=(A, B)")
        return present[0], present[1]
    if len(species) != 2 or not all(s in atomic_numbers for s in species):
        raise ValueError(f"species must be two chemical symbols (A, B), got {species!r}")
    return atomic_numbers[species[0]], atomic_numbers[species[1]]


# ---------------------------------------------------------------------------------------- stored frames
def _energy(atoms: Atoms) -> float:
    if "energy" in atoms.info:
        return float(atoms.info["energy"])
    return float(atoms.get_potential_energy())


def _relaxation(frames: list[Atoms], task: str) -> list[Atoms]:
    out = [a for a in frames if a.info.get("task") == task]
    return sorted(out, key=lambda a: int(a.info.get("relax_step", 0)))


def surface_energies_from_frames(frames, bulk_task: str = "surfaces/bulk") -> dict[str, dict]:
    """Surface energies (J/m²) from stored relaxations (frames with ``info["task"]``, ``"relax_step"``,
    ``"relax_final"`` and the energy in ``info["energy"]`` or a calculator, as stored reference data).

    The bulk is the relaxation ``bulk_task``; every other task whose frames are slabs (not periodic along
    a3) is one surface, named by ``info["surface"]`` (else the last part of the task name). Unrelaxed γ:
    first slab frame with the first bulk frame; relaxed γ: final slab frame with the final bulk frame (NaN
    while a relaxation has no ``relax_final`` frame). Returns {surface: {"gamma_unrelaxed",
    "gamma_relaxed", "area" (Å²), "n_formula", "steps", "converged", "e_bulk_unrelaxed",
    "e_bulk_relaxed" (eV/f.u.), "initial", "final" (Atoms), "task"}}.

    Parameters
    ----------
    frames : iterable of ase.Atoms
        The stored relaxation frames.
    bulk_task : str
        The task name of the bulk relaxation.

    Returns
    -------
    dict of str to dict
    """
    frames = list(frames)
    bulk_frames = _relaxation(frames, bulk_task)
    if not bulk_frames:
        raise ValueError(f"no frames of the bulk relaxation {bulk_task!r}")
    n_bulk = n_formula_units(bulk_frames[0])
    e_bulk0 = _energy(bulk_frames[0]) / n_bulk
    bulk_done = bool(bulk_frames[-1].info.get("relax_final", False))
    e_bulk = _energy(bulk_frames[-1]) / n_bulk if bulk_done else float("nan")
    out = {}
    for task in dict.fromkeys(a.info.get("task") for a in frames):
        if task == bulk_task or task is None:
            continue
        steps = _relaxation(frames, task)
        if bool(steps[0].pbc[2]):  # not a slab
            continue
        first, last = steps[0], steps[-1]
        n_slab, area = n_formula_units(first), surface_area(first)
        done = bool(last.info.get("relax_final", False))
        gamma0 = surface_energy(_energy(first), n_slab, e_bulk0, area)
        gamma = surface_energy(_energy(last), n_slab, e_bulk, area) if done else float("nan")
        name = str(first.info.get("surface") or task.rsplit("/", 1)[-1])
        out[name] = {"task": task, "gamma_unrelaxed": float(gamma0), "gamma_relaxed": float(gamma), "area": area,
                     "n_formula": n_slab, "steps": len(steps) - 1,
                     "converged": bool(last.info.get("relax_converged", False)),
                     "e_bulk_unrelaxed": e_bulk0, "e_bulk_relaxed": e_bulk, "initial": first, "final": last}
    return out
