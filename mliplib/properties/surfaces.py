"""Surface energies of slabs: γ = (E_slab − N E_bulk) / (2 A), in J/m².

:func:`relaxed_surface_energy` builds a non-polar wurtzite ZnO slab with
:func:`~mliplib.reference.structures.nonpolar_slab` and the bulk cell with the same a, c, u, and
evaluates both with one calculator, unrelaxed and after relaxing the ions (the in-plane lattice stays
that of the given a, c, so slab and bulk share the same strain; pass the model's own lattice parameters
to get its own surface energy).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms

from mliplib.properties.bulk import n_formula_units
from mliplib.properties.relax import RelaxLog, relax, snapshot
from mliplib.reference.structures import nonpolar_slab, polymorph

__all__ = ["EV_PER_A2_TO_J_PER_M2", "surface_energy", "surface_area", "SurfaceResult", "relaxed_surface_energy"]

#: 1 eV/Å² in J/m² (1.602176634e-19 J / 1e-20 m²).
EV_PER_A2_TO_J_PER_M2 = 16.02176634


def surface_energy(slab_energy: float, n_formula_slab: float, bulk_energy_per_formula: float,
                   area: float) -> float:
    """γ = (E_slab − N E_bulk) / (2 A) in J/m², for a slab with two equivalent faces.

    slab_energy (eV), n_formula_slab (formula units in the slab), bulk_energy_per_formula (eV/f.u.),
    area (Å², of one face).
    """
    if not area > 0:
        raise ValueError(f"area must be positive (Å²), got {area}")
    if not n_formula_slab > 0:
        raise ValueError(f"n_formula_slab must be positive, got {n_formula_slab}")
    return (slab_energy - n_formula_slab * bulk_energy_per_formula) / (2.0 * area) * EV_PER_A2_TO_J_PER_M2


def surface_area(slab: Atoms) -> float:
    """Area (Å²) of one face of a slab whose surface plane is spanned by cell vectors a1, a2."""
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


def relaxed_surface_energy(calc, miller: str, layers: int, vacuum: float, a: float, c: float, u: float,
                           fmax: float = 0.03, steps: int = 200) -> SurfaceResult:
    """Surface energy of the non-polar wurtzite ``miller`` ("10-10" or "11-20") surface with ``calc``.

    Slab: ``nonpolar_slab(miller, layers, vacuum, a, c, u)``; bulk: the primitive wurtzite cell with the
    same a, c (Å), u. Unrelaxed γ uses both as built; relaxed γ relaxes the ions of both (cells fixed,
    ``fmax`` eV/Å, ``steps``). A failed relaxation gives NaN for the relaxed γ (see the logs).
    """
    slab = nonpolar_slab(miller, layers, vacuum, a, c, u)
    bulk = polymorph("wurtzite", a=a, c=c, u=u)
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
