"""Geometry optimisation with any ASE calculator: positions, optionally the cell (FrechetCellFilter).

``relax(atoms, calc, ...)`` never modifies ``atoms``; it returns a relaxed copy carrying the final
energy/forces(/stress) in a :class:`~ase.calculators.singlepoint.SinglePointCalculator`, and a
:class:`RelaxLog`. Non-finite energies or forces stop the optimisation (``log.failure`` says why)
instead of raising, so a study can report a model that breaks down.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS

from mliplib.md import CALCULATOR_FAILURES

OPTIMIZERS = {"BFGS": BFGS, "FIRE": FIRE, "LBFGS": LBFGS}


@dataclasses.dataclass
class RelaxLog:
    """History of one relaxation: one entry per optimiser step, the initial state included.

    energies (n,) eV; fmax (n,) eV/Å (largest force; with a cell filter the stress enters as
    generalised forces); volumes (n,) Å³ (NaN for non-periodic systems); trajectory: the structures
    (only when ``keep_trajectory``); failure: None or why the run was stopped early.
    """

    energies: np.ndarray
    fmax: np.ndarray
    volumes: np.ndarray
    converged: bool
    steps: int
    trajectory: list | None = None
    failure: str | None = None


def _check_calc(calc) -> None:
    if calc is None or not hasattr(calc, "get_potential_energy"):
        raise TypeError(f"calc must be an ASE calculator, got {type(calc).__name__}")


def snapshot(atoms: Atoms, stress: bool = False) -> Atoms:
    """A copy of ``atoms`` holding its current results in a single-point calculator.

    Parameters
    ----------
    atoms : ase.Atoms
        With a calculator attached.
    stress : bool
        Also store the stress (eV/Å³) when the calculator provides it.

    Returns
    -------
    ase.Atoms
        With a :class:`~ase.calculators.singlepoint.SinglePointCalculator` holding energy (eV), forces
        (eV/Å) and, if asked and available, stress.
    """
    out = atoms.copy()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if stress:
        try:
            results["stress"] = atoms.get_stress()
        except PropertyNotImplementedError:  # ASE's answer of a calculator without stress
            pass
    out.calc = SinglePointCalculator(out, **results)
    return out


def relax(atoms: Atoms, calc, fmax: float = 0.01, cell: bool = True, constant_volume: bool = False,
          steps: int = 300, optimizer: str = "BFGS", maxstep: float | None = None,
          keep_trajectory: bool = False) -> tuple[Atoms, RelaxLog]:
    """Relax positions and, with ``cell=True``, the cell (via :class:`ase.filters.FrechetCellFilter`).

    Parameters
    ----------
    atoms : ase.Atoms
        The start (not modified).
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    fmax : float
        Convergence threshold, eV/Å (for the cell: the filter's generalised forces, stress × volume per
        atom-equivalent).
    cell : bool
        Relax the cell too (needs a cell periodic along x, y and z).
    constant_volume : bool
        Relax the cell shape (c/a, angles) at fixed volume.
    steps : int
        Maximum optimiser steps.
    optimizer : {"BFGS", "FIRE", "LBFGS"}
        The ASE optimiser.
    maxstep : float, optional
        Largest step, Å (the optimiser's default if None).
    keep_trajectory : bool
        Keep a snapshot of every step in the log.

    Returns
    -------
    relaxed : ase.Atoms
        A relaxed copy with its results in a single-point calculator.
    log : RelaxLog
        Energies (eV), largest forces (eV/Å), volumes (Å³) per step, convergence and the failure, if any.

    Raises
    ------
    ValueError
        An unknown optimiser, fmax ≤ 0, ``constant_volume`` without ``cell``, or a cell relaxation of a
        system that is not periodic along all three directions.
    """
    _check_calc(calc)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {tuple(OPTIMIZERS)}")
    if not fmax > 0:
        raise ValueError(f"fmax must be > 0 eV/Å, got {fmax}")
    if constant_volume and not cell:
        raise ValueError("constant_volume=True only makes sense with cell=True")
    periodic = bool(np.all(atoms.pbc)) and atoms.cell.rank == 3
    if cell and not periodic:
        raise ValueError("cell relaxation needs a cell periodic along x, y and z; use cell=False for "
                         "slabs and clusters")
    work = atoms.copy()
    work.calc = calc
    target = FrechetCellFilter(work, constant_volume=constant_volume) if cell else work
    kwargs = {"logfile": None}
    if maxstep is not None:
        kwargs["maxstep"] = maxstep
    opt = OPTIMIZERS[optimizer](target, **kwargs)
    energies, fmaxes, volumes, frames = [], [], [], []
    converged, failure = False, None
    try:
        for converged in opt.irun(fmax=fmax, steps=steps):
            energy = work.get_potential_energy()
            forces = target.get_forces()
            energies.append(energy)
            fmaxes.append(float(np.sqrt(np.max(np.sum(forces ** 2, axis=1)))) if len(forces) else 0.0)
            volumes.append(work.get_volume() if periodic else np.nan)
            if keep_trajectory:
                frames.append(snapshot(work))
            if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
                failure = "non-finite energy or forces"
                converged = False
                break
    except CALCULATOR_FAILURES as error:  # e.g. NaN positions, overlapping atoms
        failure = f"{type(error).__name__}: {error}"
        converged = False
    if failure is None:
        relaxed = snapshot(work, stress=periodic)
    else:
        relaxed = work.copy()
    log = RelaxLog(np.array(energies), np.array(fmaxes), np.array(volumes), bool(converged),
                   max(len(energies) - 1, 0), frames if keep_trajectory else None, failure)
    return relaxed, log
