"""Cheap samplers of candidate structures that the DFT engine then labels.

The liquid is sampled by Langevin MD with GFN1-xTB (tblite, Γ point): far from PBE in energy, but it
gives physically sensible, independent liquid configurations at a tiny fraction of the DFT cost. Only
the geometries are used; every reference energy and force comes from the DFT engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.io import read, write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from mliplib.reference.plan import LIQUID_DENSITY, LIQUID_FORMULA_UNITS, LIQUID_FRAMES
from mliplib.reference.structures import random_liquid


def sample_liquid(path: Path, n_formula: int = LIQUID_FORMULA_UNITS, density: float = LIQUID_DENSITY, temperature: float = 3000.0,
                  frames: int = LIQUID_FRAMES, equilibration: int = 400, interval: int = 40,
                  timestep: float = 1.0, seed: int = 0) -> None:
    """Append ``frames`` liquid (ZnO)_n configurations to ``path`` (extxyz), every ``interval`` MD steps.

    Resumable: an existing file is continued from its last frame with fresh Maxwell–Boltzmann
    velocities and a re-equilibration of ``interval`` steps. timestep in fs, temperature in K.
    """
    from tblite.ase import TBLite

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = read(path, index=":") if path.exists() else []
    if len(done) >= frames:
        print(f"{path}: {len(done)} frames already, nothing to do")
        return
    rng = np.random.default_rng(seed + len(done))
    atoms = done[-1].copy() if done else random_liquid(n_formula, density, seed)
    atoms.calc = TBLite(method="GFN1-xTB", electronic_temperature=temperature, verbosity=0)
    atoms.set_constraint(FixCom())
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.02 / units.fs, rng=rng,
                   fixcm=False)
    warmup = interval if done else equilibration
    print(f"GFN1-xTB Langevin MD at {temperature:.0f} K, {len(atoms)} atoms, {density} g/cm³: "
          f"{warmup} steps of equilibration, then a frame every {interval} steps", flush=True)
    dyn.run(warmup)
    for k in range(len(done), frames):
        dyn.run(interval)
        frame = atoms.copy()
        frame.calc = None
        frame.set_constraint()
        frame.info.update(sampler="GFN1-xTB Langevin (tblite)", temperature_K=temperature,
                          density_g_cm3=density, md_step=int(dyn.nsteps), timestep_fs=timestep)
        write(path, frame, format="extxyz", append=True)
        temp = atoms.get_temperature()
        print(f"  frame {k + 1}/{frames} at step {dyn.nsteps}, T_inst = {temp:.0f} K", flush=True)
