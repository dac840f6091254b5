"""Cheap samplers of candidate structures that the DFT engine then labels.

The liquid is sampled by Langevin MD with GFN1-xTB (tblite, Γ point): far from PBE in energy, but it
gives physically sensible, independent liquid configurations at a tiny fraction of the DFT cost.
Thermal snapshots of the crystals come from Langevin MD with a linear-BP potential fitted to the tier-1
DFT frames (GFN1-xTB costs ~1 s per step for 16 atoms here, the fit milliseconds): near the minima it
follows PBE far better than GFN1-xTB does. Only the geometries are used; every reference energy and
force comes from the DFT engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.io import read, write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from mliplib.reference.plan import (LIQUID_DENSITY, LIQUID_FORMULA_UNITS, LIQUID_FRAMES, THERMAL_CELL,
                                    THERMAL_FRAMES, THERMAL_TEMPERATURES, all_tasks, thermal_sample)
from mliplib.reference.recipes import build
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


def sample_thermal(path: Path, root: Path, equilibration: int = 500, interval: int = 200,
                   timestep: float = 1.0, seed: int = 0) -> None:
    """Write thermal snapshots of every polymorph (THERMAL_CELL, 16 atoms) at THERMAL_TEMPERATURES to
    ``path`` (extxyz, the order of :func:`~mliplib.reference.plan.thermal_sample`).

    Langevin MD (timestep fs, friction 0.01/fs, fixed cell) with a linear-BP potential fitted to the
    tier-1 frames (priority 1) of ``root/train.extxyz``; a frame every ``interval`` steps after
    ``equilibration`` steps. Raises if a snapshot has two atoms closer than 1.5 Å (a broken sampler).
    """
    from mliplib.datasets import load_zno
    from mliplib.models import zoo

    path = Path(path)
    if path.exists():
        print(f"{path} exists, nothing to do (delete it to resample)")
        return
    tier1 = {t.name for t in all_tasks() if t.priority == 1 and t.dataset == "train"}
    frames = [a for a in load_zno("all_train", root, verify=False) if a.info["task"] in tier1]
    if len(frames) < len(tier1):
        raise FileNotFoundError(f"{root / 'train.extxyz'} has {len(frames)} of the {len(tier1)} tier-1 frames; "
                                "run the reference tasks of priority 1 first")
    model = zoo.train("linear_bp", frames, progress=False)
    print(f"linear-BP fitted to {len(frames)} tier-1 frames", flush=True)
    snapshots = []
    n_runs = len(THERMAL_CELL) * len(THERMAL_TEMPERATURES)
    for run in range(n_runs):
        phase, temperature, _ = thermal_sample(run * THERMAL_FRAMES)
        atoms = build(THERMAL_CELL[phase])
        atoms.calc = model.calculator()
        atoms.set_constraint(FixCom())
        rng = np.random.default_rng(seed + run)
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        dyn = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.01 / units.fs, rng=rng,
                       fixcm=False)
        dyn.run(equilibration)
        for k in range(THERMAL_FRAMES):
            dyn.run(interval)
            frame = atoms.copy()
            frame.calc = None
            frame.set_constraint()
            distances = frame.get_all_distances(mic=True)[np.triu_indices(len(frame), 1)]
            if distances.min() < 1.5:
                raise RuntimeError(f"{phase} at {temperature:.0f} K: atoms {distances.min():.2f} Å apart; "
                                   "the linear-BP sampler left its domain")
            frame.info.update(phase=phase, sampler="linear-BP (tier-1 fit) Langevin", temperature_K=temperature,
                              md_step=int(dyn.nsteps), timestep_fs=timestep)
            snapshots.append(frame)
        print(f"  {phase} {temperature:.0f} K: T_inst = {atoms.get_temperature():.0f} K, "
              f"shortest distance {distances.min():.2f} Å", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, snapshots, format="extxyz")


def sample_liquid_models(root: Path, kinds=None, n_frames: int | None = None, protocol=None,
                         min_separation_fs: float = 500.0, artefact_root: Path | None = None) -> dict:
    """Write frames of each shipped model's own 36-atom liquid MD at the reference state (3000 K,
    4.9 g/cm³) to ``root/candidates/liquid_<kind>.extxyz`` for the DFT tasks ``liquid/at_<kind>/frameNN``.

    The trajectory is :func:`mliplib.properties.liquid.liquid_trajectory` (the liquid chapter's run,
    read from the artefact cache when current, else computed); :func:`~mliplib.properties.liquid.pick_candidates`
    takes ``n_frames`` (default LIQUID_MODEL_FRAMES) production frames ≥ ``min_separation_fs`` apart.
    Each frame records ``sampled_by`` (the kind), ``model_sha256`` (``zoo.fingerprint``), temperature,
    density, MD time and the protocol (JSON) in its info. An existing file is kept (its frames may
    already be labelled; delete it to resample). Returns {kind: number of frames in the file}.
    """
    import json

    from mliplib.models import zoo
    from mliplib.properties.liquid import LiquidProtocol, liquid_trajectory, pick_candidates
    from mliplib.reference.plan import LIQUID_MODEL_FRAMES, LIQUID_MODEL_KINDS, liquid_model_candidates

    protocol = protocol or LiquidProtocol()
    n_frames = LIQUID_MODEL_FRAMES if n_frames is None else n_frames
    counts = {}
    for kind in kinds or LIQUID_MODEL_KINDS:
        path = Path(root) / liquid_model_candidates(kind)
        if path.exists():
            done = read(path, index=":")
            current = zoo.fingerprint(kind) if zoo.is_current(kind) else None
            same = all(f.info.get("model_sha256") == current for f in done)
            print(f"{path} exists ({len(done)} frames, sampled with "
                  f"{'the current' if same else 'an earlier version of the'} {kind} model); "
                  "delete it to resample", flush=True)
            counts[kind] = len(done)
            continue
        run = liquid_trajectory(kind, protocol, root=artefact_root)
        frames = pick_candidates(run, n_frames, min_separation_fs)
        fingerprint = zoo.fingerprint(kind)
        for frame in frames:
            frame.info["temperature_K_inst"] = frame.info.pop("temperature_K")
            frame.info.update(sampler=f"{zoo.LABELS[kind]} Langevin + Bussi NVT (mliplib.properties.liquid)",
                              sampled_by=kind, model_sha256=fingerprint, temperature_K=protocol.temperature,
                              density_g_cm3=protocol.density, md_step=int(frame.info["step"]),
                              timestep_fs=protocol.timestep_fs, md_event=run.event.kind if run.event else "none",
                              md_protocol=json.dumps(protocol.as_dict(), sort_keys=True))
            frame.info.pop("step")
        print(f"{kind}: {run.summary()}; {len(frames)} frames → {path}", flush=True)
        if len(frames) < n_frames:
            print(f"  only {len(frames)} of {n_frames} frames: the run stopped early", flush=True)
        if frames:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path, frames, format="extxyz")
        counts[kind] = len(frames)
    return counts
