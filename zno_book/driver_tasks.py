"""Small real tasks for the driver's tests and demo (:func:`zno_book.driver.demo_tasks`), one of each kind
the book runs at scale (DFT, fit, MD), and a report of a worker's thread counts.

Every task takes JSON-serialisable keyword arguments and returns what a store saves: a list of labelled
``ase.Atoms`` (:class:`~zno_book.driver.ExtxyzStore`) or a dict of arrays
(:class:`~zno_book.driver.FolderStore`). Results are deterministic (fixed seeds, one thread per worker),
so the same task gives the same numbers on every executor. Tasks that fail on purpose are in
:mod:`zno_book.driver_faults`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numba
import numpy as np
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read
from threadpoolctl import threadpool_info

import mliplib
from mliplib.descriptors import BehlerParrinello
from mliplib.md import run_md
from mliplib.models import LinearPotential

#: the fixed displacement (Å) of the O atom in :func:`gpaw_single_point`, so that forces are non-zero
DISPLACEMENT = (0.05, -0.03, 0.02)


def gpaw_single_point(ecut: float = 300.0, kpts: int = 2, dataset: str = "tiny", a: float = 4.33) -> list[Atoms]:
    """A GPAW single point of the 2-atom rocksalt ZnO cell, a few seconds at the default low cutoff.

    PBE, plane waves, Fermi–Dirac 0.05 eV; the O atom is displaced by :data:`DISPLACEMENT`.

    Parameters
    ----------
    ecut : float
        Plane-wave cutoff (eV).
    kpts : int
        Γ-centred k-mesh ``kpts × kpts × kpts``.
    dataset : str
        ``info["dataset"]`` of the frame (the file it goes to in an ExtxyzStore).
    a : float
        Cubic lattice constant (Å).

    Returns
    -------
    list of ase.Atoms
        One frame: energy (eV, Mermin free energy), forces (eV/Å), stress (eV/Å³, Voigt) in a
        single-point calculator; ``info``: dataset, config_type, kpts, wall_time_s (s).
    """
    from gpaw import GPAW, PW, FermiDirac  # the dft extra: the other tasks run without GPAW

    atoms = bulk("ZnO", "rocksalt", a=a)
    atoms.positions[1] += DISPLACEMENT
    work = atoms.copy()
    work.calc = GPAW(mode=PW(ecut), xc="PBE", kpts={"size": (kpts,) * 3, "gamma": True},
                     occupations=FermiDirac(0.05), txt=None)
    start = time.perf_counter()
    energy = work.get_potential_energy(force_consistent=True)
    results = {"energy": energy, "free_energy": energy, "forces": work.get_forces(),
               "stress": work.get_stress(voigt=True)}
    atoms.info.update(dataset=dataset, config_type="tiny_rocksalt", kpts=f"{kpts} {kpts} {kpts}",
                      wall_time_s=round(time.perf_counter() - start, 2))
    atoms.calc = SinglePointCalculator(atoms, **results)
    return [atoms]


def reference_frames(path: str | Path, n_frames: int) -> list[Atoms]:
    """The first ``n_frames`` frames of a data file, their DFT results where ``LinearPotential.fit`` reads them.

    Parameters
    ----------
    path : str or Path
        An extxyz file of labelled frames (``data/zno`` format: results in a single-point calculator).
    n_frames : int
        Frames to read from the start of the file.

    Returns
    -------
    list of ase.Atoms
        Without calculator; ``info["energy"]`` (eV), ``arrays["forces"]`` (n_atoms, 3) eV/Å and, where the
        frame has one, ``info["stress"]`` (6,) eV/Å³ (Voigt).
    """
    frames = read(path, index=f":{int(n_frames)}")
    for atoms in frames:
        results = atoms.calc.results
        atoms.calc = None
        atoms.info["energy"] = float(results["energy"])
        atoms.arrays["forces"] = np.array(results["forces"], dtype=float)
        if "stress" in results:
            atoms.info["stress"] = np.array(results["stress"], dtype=float)
    return frames


def linear_fit(frames: str, n_frames: int = 6) -> dict:
    """Fit a linear-BP potential (default ZnO ACSFs, RidgeCV) to the first ``n_frames`` frames of ``frames``.

    Parameters
    ----------
    frames : str
        Path of an extxyz file of labelled frames (e.g. ``data/zno/train.extxyz``).
    n_frames : int
        Training frames, from the start of the file.

    Returns
    -------
    dict
        ``weights`` (n_groups, n_features), ``offsets`` (n_species,) eV/atom, and the fitted model's
        ``energy`` (eV) and ``forces`` (n_atoms, 3) eV/Å on the last training frame.
    """
    data = reference_frames(frames, n_frames)
    model = LinearPotential(BehlerParrinello.default_zno()).fit(data)
    prediction = model.predict(data[-1])
    return {"weights": model.weights_, "offsets": model.offsets_, "energy": float(prediction["energy"]),
            "forces": prediction["forces"]}


def md_run(model: str, steps: int = 50, temperature_K: float = 600.0, seed: int = 0) -> dict:
    """MD of 36-atom wurtzite ZnO (3×3×1 cells) with the saved potential ``model``.

    ``steps`` steps of 1 fs, Bussi NVT at ``temperature_K``, seeded.

    Parameters
    ----------
    model : str
        Path of a saved potential (:func:`mliplib.load`).
    steps : int
        MD steps.
    temperature_K : float
        Thermostat target and initial Maxwell–Boltzmann temperature (K).
    seed : int
        Seed of the initial velocities and the thermostat noise.

    Returns
    -------
    dict
        ``positions`` (36, 3) Å and ``velocities`` (36, 3) in ASE units (Å per ASE time unit; times
        ``ase.units.fs`` gives Å/fs) at the end, the sampled ``energy_potential`` (n_samples,) eV and
        ``temperature`` (n_samples,) K (every 10 steps and the last), and ``steps_done``.
    """
    atoms = bulk("ZnO", "wurtzite", a=3.29, c=5.30, u=0.38).repeat((3, 3, 1))
    result = run_md(atoms, mliplib.load(model).calculator(), temperature_K, steps, progress=False, seed=seed)
    return {"positions": result.atoms.positions, "velocities": result.atoms.get_velocities(),
            "energy_potential": result.log.energy_potential, "temperature": result.log.temperature,
            "steps_done": result.steps_done}


def thread_report() -> dict:
    """Threads this process would use, per library.

    The largest BLAS/OpenMP pool loaded (numpy's, and GPAW's if installed), Numba's and PyTorch's
    thread counts, and ``OMP_NUM_THREADS``.

    Returns
    -------
    dict
        ``blas_threads`` (int), ``pools`` (number of pools loaded), ``numba_threads``,
        ``torch_threads`` (int) and ``omp_env`` (str, empty if unset).
    """
    try:  # the dft extra
        import _gpaw  # noqa: F401 - GPAW's own BLAS, loaded after the worker started
    except ImportError:
        pass
    pools = threadpool_info()
    return {"blas_threads": max(pool["num_threads"] for pool in pools), "pools": len(pools),
            "numba_threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads(),
            "omp_env": os.environ.get("OMP_NUM_THREADS", "")}
