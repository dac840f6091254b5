"""The DFT engine: the one place where the reference code and its settings are chosen.

Swap GPAW for another ASE calculator (CP2K, VASP, Quantum ESPRESSO) by editing :func:`make_calculator`
and :func:`engine_version`; everything else in :mod:`zno_book.reference` only sees an ASE calculator.
GPAW is an optional dependency (the ``dft`` extra): it is imported where it is used, so that the plan,
the runner's bookkeeping and the tests that do not run DFT work without it.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from ase import Atoms


@dataclasses.dataclass(frozen=True)
class DFTSettings:
    """One setting for every frame (bulk, slabs, clusters, liquid) so all comparisons are like for like.

    ecut: plane-wave cutoff (eV). kpt_density: k-points per Å⁻¹ along each reciprocal vector, ASE
    convention n_i = ceil(2π·density·|b_i|) with |b_i| = 1/d_i; Γ only along non-periodic directions.
    smearing: Fermi–Dirac width (eV). compute_stress: whether periodic frames get the stress.
    """

    code: str = "gpaw"
    mode: str = "pw"
    xc: str = "PBE"
    ecut: float = 800.0
    kpt_density: float = 2.5
    smearing: float = 0.05
    setups: str = "paw (gpaw-data)"
    compute_stress: bool = True

    def as_dict(self) -> dict:
        """The settings as a dict (recorded in the data manifest).

        Returns
        -------
        dict
        """
        return dataclasses.asdict(self)


def kpoint_mesh(atoms: Atoms, density: float) -> tuple[int, int, int]:
    """Γ-centred Monkhorst–Pack mesh at fixed density; 1 along non-periodic axes.

    Parameters
    ----------
    atoms : ase.Atoms
        The cell.
    density : float
        k-points per Å⁻¹ along each reciprocal vector: n_i = ceil(2π · density · |b_i|).

    Returns
    -------
    tuple of 3 int
    """
    recip = np.linalg.norm(atoms.cell.reciprocal(), axis=1)
    return tuple(int(max(1, np.ceil(2 * np.pi * density * b))) if pbc else 1
                 for b, pbc in zip(recip, atoms.pbc))


def engine_version() -> str:
    """Name and version of the DFT code (recorded in the data manifest).

    Returns
    -------
    str
        e.g. ``"gpaw 26.7.0"``.
    """
    import gpaw  # optional dependency (dft extra)
    return f"gpaw {gpaw.__version__}"


def make_calculator(atoms: Atoms, settings: DFTSettings, txt: str | None = None):
    """An ASE calculator for ``atoms`` with ``settings`` (GPAW plane waves, serial).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure (its cell sets the k-point mesh).
    settings : DFTSettings
        The settings.
    txt : str, optional
        GPAW's log file (None: no log).

    Returns
    -------
    gpaw.GPAW
    """
    from gpaw import GPAW, PW, FermiDirac  # optional dependency (dft extra)
    if settings.code != "gpaw" or settings.mode != "pw":
        raise ValueError(f"engine {settings.code}/{settings.mode} is not wired in; edit make_calculator")
    return GPAW(mode=PW(settings.ecut), xc=settings.xc,
                kpts={"size": kpoint_mesh(atoms, settings.kpt_density), "gamma": True},
                occupations=FermiDirac(settings.smearing), txt=txt)


def single_point(atoms: Atoms, settings: DFTSettings, txt: str | None = None) -> dict:
    """Energy (eV; the Mermin free energy, consistent with forces and stress), forces (eV/Å) and, for fully
    periodic cells, stress (eV/Å³, Voigt, ASE sign).

    Isolated systems (any non-periodic axis) are computed in a periodic box (plane waves need one) with
    the vacuum already in ``atoms.cell``; their stress is not returned.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    settings : DFTSettings
        The settings.
    txt : str, optional
        GPAW's log file.

    Returns
    -------
    dict
        ``energy`` (eV), ``energy_zero_smearing`` (eV), ``forces`` (n_atoms, 3) eV/Å, ``stress`` (6,) eV/Å³
        for fully periodic cells, ``wall_time_s`` (s) and ``kpts`` (the mesh).
    """
    work = atoms.copy()
    periodic = bool(np.all(atoms.pbc))
    work.pbc = True
    work.calc = make_calculator(atoms, settings, txt=txt)
    start = time.perf_counter()
    free_energy = work.get_potential_energy(force_consistent=True)
    result = {"energy": free_energy, "energy_zero_smearing": work.get_potential_energy(),
              "forces": work.get_forces()}
    if periodic and settings.compute_stress:
        result["stress"] = work.get_stress(voigt=True)
    result["wall_time_s"] = time.perf_counter() - start
    result["kpts"] = kpoint_mesh(atoms, settings.kpt_density)
    return result
