"""The nanoparticles chapter's cluster analysis: :mod:`mliplib.properties.nanoparticles` with the ZnO
bond cutoffs (:data:`~zno_book.constants.ZNO_BOND_CUTOFFS`: Zn–O < 2.5 Å), the ZnO formula unit and the
smallest physical distance (:data:`~zno_book.constants.MIN_DISTANCE`, 1.2 Å).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms

from mliplib.properties import nanoparticles
from zno_book.constants import MIN_DISTANCE, ZNO_BOND_CUTOFFS

__all__ = [
    "MIN_DISTANCE",
    "ZNO_BOND_CUTOFFS",
    "bond_lengths",
    "cluster_diagnostics",
    "compare_structures",
    "coordination_histogram",
    "formula_units",
    "fragments",
    "ring_geometry",
]


def formula_units(atoms: Atoms) -> int:
    """n for a structure that is exactly (ZnO)_n; ValueError otherwise.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    int
    """
    return nanoparticles.formula_units(atoms, "ZnO")


def coordination_histogram(atoms: Atoms, species: str | None = None) -> dict[int, int]:
    """{Zn–O coordination number: number of atoms} (of ``species``, or all atoms).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    species : str, optional
        "Zn" or "O" (default: every atom).

    Returns
    -------
    dict of int to int
    """
    return nanoparticles.coordination_histogram(atoms, ZNO_BOND_CUTOFFS, species)


def bond_lengths(atoms: Atoms) -> np.ndarray:
    """Zn–O bond lengths (Å), each bond once, shape (n_bonds,).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    numpy.ndarray
    """
    return nanoparticles.bond_lengths(atoms, ZNO_BOND_CUTOFFS)


def fragments(atoms: Atoms) -> np.ndarray:
    """Label of the connected piece of the Zn–O bond graph each atom belongs to, shape (n_atoms,).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    numpy.ndarray of int
    """
    return nanoparticles.fragments(atoms, ZNO_BOND_CUTOFFS)


def compare_structures(structures: Mapping[str, Atoms], references: Mapping[str, Atoms],
                       permute: bool = True) -> list[dict]:
    """:func:`mliplib.properties.nanoparticles.compare_structures` with Zn–O bonds.

    Parameters
    ----------
    structures, references : mapping of str to ase.Atoms
        Structures and references of the same names.
    permute : bool
        Match like atoms by assignment.

    Returns
    -------
    list of dict
    """
    return nanoparticles.compare_structures(structures, references, ZNO_BOND_CUTOFFS, permute)


def cluster_diagnostics(atoms: Atoms, energy: float | None = None, bulk_energy: float | None = None,
                        start_energy: float | None = None) -> dict:
    """:func:`mliplib.properties.nanoparticles.cluster_diagnostics` of a (ZnO)_n cluster (Zn–O bonds,
    atoms closer than MIN_DISTANCE flagged).

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster.
    energy : float, optional
        Its energy (eV).
    bulk_energy : float, optional
        Energy per ZnO of the bulk crystal (eV).
    start_energy : float, optional
        Energy (eV) of the relaxation's start.

    Returns
    -------
    dict
    """
    return nanoparticles.cluster_diagnostics(atoms, ZNO_BOND_CUTOFFS, "ZnO", MIN_DISTANCE, energy=energy,
                                             bulk_energy=bulk_energy, start_energy=start_energy)


def ring_geometry(atoms: Atoms) -> dict:
    """:func:`mliplib.properties.nanoparticles.ring_geometry` of a (ZnO)_n ring (keys ``angle_zn``,
    ``angle_o``, ``radius_zn``, ``radius_o``, ...).

    Parameters
    ----------
    atoms : ase.Atoms
        The ring.

    Returns
    -------
    dict
    """
    return nanoparticles.ring_geometry(atoms, ZNO_BOND_CUTOFFS)
