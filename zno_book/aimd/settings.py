"""DFT settings for ab-initio MD and the one function that turns a setting into a GPAW calculator.

:class:`AIMDSetting` describes a candidate (plane waves or LCAO, cutoff or basis, k-points, SCF
criteria) and is recorded in every output. :data:`SETTINGS` holds the named candidates of the pilot;
``SETTINGS["book"]`` is the book's reference setting (:class:`zno_book.reference.engine.DFTSettings`:
plane waves 800 eV, PBE, Fermi–Dirac 0.05 eV, Γ-centred k-density 2.5 Å). :class:`DFTStepper` keeps
one calculator alive so that every call after the first restarts the SCF from the previous density
and wave functions, as in MD, and reports the wall time and SCF iterations of each call.
Units: eV, Å, s.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from ase import Atoms

from zno_book.reference.engine import DFTSettings, engine_version, kpoint_mesh

__all__ = [
    "BOOK",
    "SETTINGS",
    "AIMDSetting",
    "DFTStepper",
    "StepResult",
    "engine_version",
    "make_calculator",
]


@dataclasses.dataclass(frozen=True)
class AIMDSetting:
    """One DFT setting for MD steps.

    Parameters
    ----------
    name : str
        Short label used in file names and tables.
    mode : {"pw", "lcao"}
        GPAW plane-wave or LCAO mode.
    ecut : float or None
        Plane-wave cutoff (eV); PW mode only.
    basis : str or None
        LCAO basis set name (e.g. "dzp"); LCAO mode only.
    kpt_density : float or None
        Γ-centred k-point density (Å, as in :func:`zno_book.reference.engine.kpoint_mesh`);
        None means the Γ point only.
    xc : str
        Exchange–correlation functional.
    smearing : float
        Fermi–Dirac width (eV).
    convergence : tuple of (str, float)
        GPAW SCF criteria that replace its defaults (energy 5e-4 eV/electron, density 1e-4,
        eigenstates 4e-8 eV²/electron); empty = defaults. A tuple of pairs keeps the class hashable.
    compute_stress : bool
        Whether MD steps also compute the stress tensor.
    """

    name: str
    mode: str = "pw"
    ecut: float | None = 800.0
    basis: str | None = None
    kpt_density: float | None = None
    xc: str = "PBE"
    smearing: float = 0.05
    convergence: tuple = ()
    compute_stress: bool = True

    def __post_init__(self):
        if self.mode == "pw" and not (self.ecut and self.ecut > 0 and self.basis is None):
            raise ValueError(f"{self.name}: PW mode needs ecut > 0 (eV) and no basis")
        if self.mode == "lcao" and (self.basis is None or self.ecut is not None):
            raise ValueError(f"{self.name}: LCAO mode needs a basis and no ecut")
        if self.mode not in ("pw", "lcao"):
            raise ValueError(f"{self.name}: mode must be 'pw' or 'lcao', got {self.mode!r}")

    def kpts(self, atoms: Atoms) -> tuple[int, int, int]:
        """The Γ-centred k-point mesh of this setting for ``atoms``.

        Parameters
        ----------
        atoms : ase.Atoms
            The cell.

        Returns
        -------
        tuple of 3 int
            (1, 1, 1) for a Γ-only setting (``kpt_density`` None), else
            :func:`zno_book.reference.engine.kpoint_mesh` at ``kpt_density``.
        """
        if self.kpt_density is None:
            return (1, 1, 1)
        return kpoint_mesh(atoms, self.kpt_density)

    def as_dict(self) -> dict:
        """JSON-ready description (convergence as a dict)."""
        out = dataclasses.asdict(self)
        out["convergence"] = dict(self.convergence)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> AIMDSetting:
        """The setting written by :meth:`as_dict`.

        Parameters
        ----------
        data : dict
            The fields of :class:`AIMDSetting`, ``convergence`` as a dict (missing or None: GPAW's
            defaults).

        Returns
        -------
        AIMDSetting

        Raises
        ------
        ValueError
            If mode, cutoff and basis do not fit together (see the class).
        """
        data = dict(data)
        data["convergence"] = tuple(sorted(dict(data.get("convergence") or {}).items()))
        return cls(**data)


def _book() -> AIMDSetting:
    ref = DFTSettings()
    if (ref.code, ref.mode) != ("gpaw", "pw"):
        raise RuntimeError(f"the book's engine is {ref.code}/{ref.mode}; AIMD settings assume GPAW PW")
    return AIMDSetting("book", "pw", ecut=ref.ecut, kpt_density=ref.kpt_density, xc=ref.xc,
                       smearing=ref.smearing)


#: the book's reference setting, as an AIMD setting
BOOK = _book()

#: the candidates of the pilot, by name
SETTINGS: dict[str, AIMDSetting] = {s.name: s for s in (
    BOOK,
    AIMDSetting("pw800_gamma", "pw", ecut=800.0),
    AIMDSetting("pw600_gamma", "pw", ecut=600.0),
    AIMDSetting("pw500_gamma", "pw", ecut=500.0),
    AIMDSetting("pw400_gamma", "pw", ecut=400.0),
    # GPAW's default density criterion (1e-4 electrons/electron, which sets the forces) with the
    # eigenstate criterion relaxed from 4e-8 to 1e-6 eV²/electron: in the warm steps of the pilot's logs
    # the density converges ~4 SCF iterations before the eigenstates do
    AIMDSetting("pw400_gamma_scf", "pw", ecut=400.0, convergence=(("eigenstates", 1e-6),)),
    # GPAW 26.7 has no LCAO stress ('FDPotentialCalculator' object has no attribute 'stress')
    AIMDSetting("lcao_dzp_gamma", "lcao", ecut=None, basis="dzp", compute_stress=False),
)}


def make_calculator(atoms: Atoms, setting: AIMDSetting, txt: str | None = None):
    """A serial GPAW calculator for ``atoms`` with ``setting``.

    The book setting gives the same GPAW parameters as :func:`zno_book.reference.engine.make_calculator`
    (checked by the pilot, whose book-setting runs reproduce the stored reference forces).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure; its cell sets the k-point mesh (:meth:`AIMDSetting.kpts`). Not modified.
    setting : AIMDSetting
        Plane waves (cutoff, eV) or LCAO (basis), functional, Fermi–Dirac width (eV), SCF criteria.
    txt : str, optional
        GPAW's log file (None: no log).

    Returns
    -------
    gpaw.GPAW
        Not attached to ``atoms``.
    """
    from gpaw import GPAW, PW, FermiDirac
    kwargs = {"xc": setting.xc, "occupations": FermiDirac(setting.smearing), "txt": txt,
              "kpts": {"size": setting.kpts(atoms), "gamma": True}}
    if setting.convergence:
        kwargs["convergence"] = dict(setting.convergence)
    if setting.mode == "pw":
        return GPAW(mode=PW(setting.ecut), **kwargs)
    return GPAW(mode="lcao", basis=setting.basis, **kwargs)


@dataclasses.dataclass
class StepResult:
    """One DFT evaluation.

    Parameters
    ----------
    energy : float
        Mermin free energy (eV, consistent with the forces).
    energy_zero_smearing : float
        Energy extrapolated to zero smearing (eV).
    forces : numpy.ndarray
        (n_atoms, 3) eV/Å.
    stress : numpy.ndarray or None
        (6,) Voigt (xx yy zz yz xz xy) eV/Å³, ASE sign (positive = tensile); None if not computed.
    start : {"cold", "warm"}
        First SCF of this calculator, or restarted from the previous step.
    scf_iterations : int
        SCF iterations of this evaluation.
    wall_time_s : float
        Wall time of energy + forces (+ stress), s.
    stress_time_s : float
        Wall time of the stress part alone, s.
    cpu_time_s : float
        CPU time of this (serial) process over the same span as ``wall_time_s``, s: the one-core
        cost, which the wall time overstates when other processes compete for the core.
    """

    energy: float
    energy_zero_smearing: float
    forces: np.ndarray
    stress: np.ndarray | None
    start: str
    scf_iterations: int
    wall_time_s: float
    stress_time_s: float
    cpu_time_s: float

    def info(self) -> dict:
        """The scalar fields, JSON-ready."""
        return {"energy": float(self.energy), "energy_zero_smearing": float(self.energy_zero_smearing),
                "start": self.start, "scf_iterations": int(self.scf_iterations),
                "wall_time_s": float(self.wall_time_s), "stress_time_s": float(self.stress_time_s),
                "cpu_time_s": float(self.cpu_time_s)}


class DFTStepper:
    """A persistent GPAW calculator, so that MD steps restart the SCF from the previous step.

    The first evaluation is cold; later ones restart from the previous step's density and wave
    functions (GPAW moves them with the atoms).

    Parameters
    ----------
    atoms : Atoms
        Defines the cell and composition; every later call must keep both.
    setting : AIMDSetting
        The DFT setting (:func:`make_calculator`).
    txt : str or None
        GPAW log file (None: no log).
    """

    def __init__(self, atoms: Atoms, setting: AIMDSetting, txt: str | None = None):
        self.setting = setting
        self.calc = make_calculator(atoms, setting, txt=txt)
        self.calls = 0
        self._cell = atoms.cell.array.copy()
        self._numbers = atoms.numbers.copy()

    def attach(self, atoms: Atoms) -> None:
        """Make this stepper's calculator the calculator of ``atoms``, and set ``atoms.pbc`` to True.

        Parameters
        ----------
        atoms : ase.Atoms
            Same cell (within ``np.allclose``) and atomic numbers, in the same order, as at
            construction; modified in place.

        Raises
        ------
        ValueError
            If the cell or the atomic numbers differ.
        """
        if not (np.allclose(atoms.cell.array, self._cell) and np.array_equal(atoms.numbers, self._numbers)):
            raise ValueError("DFTStepper is bound to one cell and composition")
        atoms.pbc = True
        atoms.calc = self.calc

    def evaluate(self, atoms: Atoms, stress: bool | None = None) -> StepResult:
        """Energy, forces and, if asked, stress of ``atoms``, timed: the DFT of one MD step.

        Parameters
        ----------
        atoms : ase.Atoms
            The positions to evaluate (same cell and atomic numbers as at construction); the
            calculator is attached to it (:meth:`attach`).
        stress : bool, optional
            Also compute the stress (default: the setting's ``compute_stress``).

        Returns
        -------
        StepResult
            "cold" for this stepper's first call, "warm" after it.

        Raises
        ------
        ValueError
            If the cell or the atomic numbers differ from the construction's.
        """
        self.attach(atoms)
        start, cpu = time.perf_counter(), time.process_time()
        atoms.get_forces()
        return self.collect(atoms, time.perf_counter() - start, time.process_time() - cpu, stress)

    def collect(self, atoms: Atoms, elapsed_s: float, cpu_s: float, stress: bool | None = None) -> StepResult:
        """The :class:`StepResult` of the evaluation that has just happened at ``atoms``.

        For a force call made elsewhere, e.g. inside an ASE MD step. Computes the stress if asked (its
        time added to the given ones) and counts the call (the first is "cold").

        Parameters
        ----------
        atoms : ase.Atoms
            The atoms whose calculator, this stepper's, has just computed energy and forces.
        elapsed_s : float
            Wall time of that evaluation (s).
        cpu_s : float
            CPU time of this process during it (s).
        stress : bool, optional
            Compute the stress (default: the setting's ``compute_stress``).

        Returns
        -------
        StepResult
        """
        want_stress = self.setting.compute_stress if stress is None else stress
        t0, c0 = time.perf_counter(), time.process_time()
        sigma = np.array(atoms.get_stress(voigt=True)) if want_stress else None
        stress_time = time.perf_counter() - t0 if want_stress else 0.0
        stress_cpu = time.process_time() - c0 if want_stress else 0.0
        result = StepResult(
            energy=float(atoms.get_potential_energy(force_consistent=True)),
            energy_zero_smearing=float(atoms.get_potential_energy()),
            forces=np.array(atoms.get_forces(apply_constraint=False)), stress=sigma,
            start="cold" if self.calls == 0 else "warm",
            scf_iterations=int(self.calc.dft.scf_loop.niter),
            wall_time_s=float(elapsed_s + stress_time), stress_time_s=float(stress_time),
            cpu_time_s=float(cpu_s + stress_cpu))
        self.calls += 1
        return result
