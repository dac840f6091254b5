"""The ZnO structures of the book: :mod:`mliplib.builders` with the ZnO symbols and parameters.

Every builder is deterministic (explicit seeds), so a task name of the reference plan fully identifies
its structure. Lengths in Å, densities in g/cm³.
"""

from __future__ import annotations

from ase import Atoms

from mliplib.builders import (
    binary_crystal,
    cluster_cut,
    random_cubic_cell,
    random_packing,
    ring,
    sodalite_cage,
    supercell_of,
    wurtzite_slab,
)
from zno_book.constants import PACKING_DISTANCES, POLYMORPH_PARAMETERS, POLYMORPHS, ZNO

__all__ = [
    "POLYMORPHS",
    "POLYMORPH_PARAMETERS",
    "cage_cluster",
    "ionic_packing",
    "nonpolar_slab",
    "polymorph",
    "polymorphs",
    "random_liquid",
    "ring_cluster",
    "transition_path",
    "wurtzite_cluster",
]


def polymorph(name: str, cubic: bool = False, **params: float) -> Atoms:
    """Primitive (or conventional cubic, ``cubic=True``) cell of a ZnO polymorph.

    Parameters
    ----------
    name : str
        One of :data:`~zno_book.constants.POLYMORPHS`.
    cubic : bool
        Conventional cubic cell for zincblende and rocksalt.
    **params : float
        Overrides of :data:`~zno_book.constants.POLYMORPH_PARAMETERS` (a, c in Å; u, x fractional).

    Returns
    -------
    ase.Atoms
        Zn first, ``info["phase"] = name``.
    """
    if name not in POLYMORPH_PARAMETERS:
        raise ValueError(f"unknown polymorph {name!r}; choose one of {POLYMORPHS}")
    return binary_crystal(name, ZNO, cubic=cubic, **{**POLYMORPH_PARAMETERS[name], **params})


def polymorphs() -> dict[str, Atoms]:
    """The starting cells of every polymorph, ``{name: polymorph(name)}`` in the order of POLYMORPHS
    (e.g. ``bulk_summary(calc=..., structures=polymorphs())``).

    Returns
    -------
    dict of str to ase.Atoms
    """
    return {name: polymorph(name) for name in POLYMORPHS}


def transition_path(lam: float) -> Atoms:
    """A cell on the wurtzite → h-BN path: u, a and c interpolated linearly.

    Parameters
    ----------
    lam : float
        Path coordinate in [0, 1] (0: wurtzite, 1: h-BN-like, u = 1/2).

    Returns
    -------
    ase.Atoms
        Primitive cell, ``info["phase"] = "wurtzite-hbn"``.
    """
    w, h = POLYMORPH_PARAMETERS["wurtzite"], POLYMORPH_PARAMETERS["hbn"]
    a = (1 - lam) * w["a"] + lam * h["a"]
    c = (1 - lam) * w["c"] + lam * h["c"]
    u = (1 - lam) * w["u"] + lam * 0.5
    atoms = binary_crystal("wurtzite", ZNO, a=a, c=c, u=u)
    atoms.info["phase"] = "wurtzite-hbn"
    return atoms


def nonpolar_slab(miller: str, layers: int, vacuum: float, a: float, c: float, u: float) -> Atoms:
    """Symmetric, stoichiometric wurtzite ZnO slab of the non-polar (10-10) or (11-20) surface.

    A (10-10) layer is a ZnO double layer (two atomic planes, 0.95 and 1.90 Å apart at a = 3.29 Å), an
    (11-20) layer a single atomic plane (planes a/2 apart); see :func:`mliplib.builders.wurtzite_slab`.

    Parameters
    ----------
    miller : {"10-10", "11-20"}
        The surface.
    layers : int
        Repeats of the surface cell along the normal.
    vacuum : float
        Vacuum (Å) on each side.
    a, c : float
        Lattice parameters (Å).
    u : float
        Internal parameter (fractional).

    Returns
    -------
    ase.Atoms
        pbc (True, True, False), ``info["surface"] = miller``.
    """
    return wurtzite_slab(ZNO, miller, layers, vacuum, a, c, u)


def random_liquid(n_formula: int, density: float, seed: int, min_distance: float = 1.7) -> Atoms:
    """Random cubic (ZnO)_n cell (:func:`mliplib.builders.random_cubic_cell`).

    Parameters
    ----------
    n_formula : int
        ZnO units.
    density : float
        g/cm³.
    seed : int
        Random seed.
    min_distance : float
        No pair closer than this (Å), whatever the species.

    Returns
    -------
    ase.Atoms
    """
    return random_cubic_cell(ZNO, n_formula, density, seed, min_distance)


def ionic_packing(n_formula: int, density: float, seed: int = 0, min_distances: dict | None = None,
                  max_iterations: int = 5000, tolerance: float = 0.02) -> Atoms:
    """Random cubic (ZnO)_n cell with crystal-like closest distances, the start of every liquid run
    (:func:`mliplib.builders.random_packing` from a random cell with 1 Å).

    Parameters
    ----------
    n_formula : int
        ZnO units.
    density : float
        g/cm³.
    seed : int
        Random seed.
    min_distances : dict, optional
        ``{(A, B): Å}``; default :data:`~zno_book.constants.PACKING_DISTANCES`.
    max_iterations : int
        Push steps before giving up.
    tolerance : float
        Largest overlap (Å) left.

    Returns
    -------
    ase.Atoms
    """
    return random_packing(ZNO, n_formula, density, PACKING_DISTANCES if min_distances is None else min_distances,
                          seed=seed, start_distance=1.0, max_iterations=max_iterations, tolerance=tolerance)


def wurtzite_cluster(n_formula: int, seed: int = 0) -> Atoms:
    """Stoichiometric (ZnO)_n cut from wurtzite: the n Zn and n O atoms closest to a point near the Zn
    centroid of a 5×5×3 supercell (:func:`mliplib.builders.cluster_cut`).

    Parameters
    ----------
    n_formula : int
        ZnO units.
    seed : int
        Seed of the centre's random offset (0.1 Å).

    Returns
    -------
    ase.Atoms
        Isolated cluster.
    """
    p = POLYMORPH_PARAMETERS["wurtzite"]
    return cluster_cut(supercell_of(binary_crystal("wurtzite", ZNO, **p), (5, 5, 3)), n_formula, seed=seed)


def ring_cluster(n_formula: int, bond: float = 1.86) -> Atoms:
    """Planar (ZnO)_n ring, Zn and O alternating (:func:`mliplib.builders.ring`).

    Parameters
    ----------
    n_formula : int
        ZnO units.
    bond : float
        Zn–O distance (Å).

    Returns
    -------
    ase.Atoms
    """
    return ring(ZNO, n_formula, bond)


def cage_cluster(kind: str = "sodalite12", bond: float = 1.93) -> Atoms:
    """A bubble (cage) cluster of ZnO; ``"sodalite12"``: the (ZnO)_12 truncated octahedron
    (:func:`mliplib.builders.sodalite_cage`), the classic low-energy cage of Zn12O12.

    Parameters
    ----------
    kind : str
        Only ``"sodalite12"`` is built in.
    bond : float
        Zn–O edge length (Å).

    Returns
    -------
    ase.Atoms
    """
    if kind != "sodalite12":
        raise ValueError(f"unknown cage {kind!r}; only 'sodalite12' is built in")
    return sodalite_cage(ZNO, bond)
