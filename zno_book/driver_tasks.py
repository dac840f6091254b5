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
    """GPAW (PBE, plane waves, Fermi–Dirac 0.05 eV) on the 2-atom rocksalt ZnO cell with the O atom
    displaced by :data:`DISPLACEMENT`: a few seconds at the default low cutoff.

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
    """The first ``n_frames`` frames of a data file, with the DFT results in ``info["energy"]``,
    ``arrays["forces"]`` and ``info["stress"]`` (what ``LinearPotential.fit`` reads)."""
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
    """``steps`` steps (1 fs, Bussi NVT at ``temperature_K``, seeded) of 36-atom wurtzite ZnO (3×3×1
    cells) with the saved potential ``model``.

    Returns
    -------
    dict
        ``positions`` (36, 3) Å and ``velocities`` (36, 3) Å/fs·(ASE units) at the end, the sampled
        ``energy_potential`` and ``temperature`` (every 10 steps; eV, K), and ``steps_done``.
    """
    atoms = bulk("ZnO", "wurtzite", a=3.29, c=5.30, u=0.38).repeat((3, 3, 1))
    result = run_md(atoms, mliplib.load(model).calculator(), temperature_K, steps, progress=False, seed=seed)
    return {"positions": result.atoms.positions, "velocities": result.atoms.get_velocities(),
            "energy_potential": result.log.energy_potential, "temperature": result.log.temperature,
            "steps_done": result.steps_done}


def thread_report() -> dict:
    """Threads this process would use: the largest BLAS/OpenMP pool loaded (numpy's, and GPAW's if
    installed), Numba's and PyTorch's thread counts, and ``OMP_NUM_THREADS``."""
    try:  # the dft extra
        import _gpaw  # noqa: F401 - GPAW's own BLAS, loaded after the worker started
    except ImportError:
        pass
    pools = threadpool_info()
    return {"blas_threads": max(pool["num_threads"] for pool in pools), "pools": len(pools),
            "numba_threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads(),
            "omp_env": os.environ.get("OMP_NUM_THREADS", "")}
