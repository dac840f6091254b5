"""Cheap samplers of candidate structures that the DFT engine then labels.

The liquid is sampled by Langevin MD with GFN1-xTB (tblite, Γ point): far from PBE in energy, but it
gives physically sensible, independent liquid configurations at a tiny fraction of the DFT cost.
Thermal snapshots of the crystals come from Langevin MD with a linear-BP potential fitted to the tier-1
DFT frames (GFN1-xTB costs ~1 s per step for 16 atoms here, the fit milliseconds): near the minima it
follows PBE far better than GFN1-xTB does. Only the geometries are used; every reference energy and
force comes from the DFT engine. tblite (GFN1-xTB) is an optional dependency (the ``dft`` extra),
imported by :func:`sample_liquid` only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.io import read, write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from tqdm.auto import tqdm

from mliplib.builders import in_box
from mliplib.properties.nanoparticles import relax_cluster
from mliplib.properties.structure import shortest_distance
from zno_book import zoo
from zno_book.clusters import formula_units
from zno_book.datasets import load_zno
from zno_book.liquid import (
    REPEAT_SEEDS,
    LiquidProtocol,
    liquid_trajectory,
    pick_candidates,
    repeat_protocol,
)
from zno_book.reference.plan import (
    LIQUID_DENSITY,
    LIQUID_FORMULA_UNITS,
    LIQUID_FRAMES,
    LIQUID_MODEL_FRAMES,
    LIQUID_TEMPERATURE,
    MODEL_KINDS,
    MODEL_OPTIMUM_RELAX,
    THERMAL_CELL,
    THERMAL_FRAMES,
    THERMAL_TEMPERATURES,
    all_tasks,
    liquid_model_candidates,
    model_optimum_candidates,
    nanoparticle_clusters,
    thermal_sample,
)
from zno_book.reference.recipes import build, dumps
from zno_book.structures import random_liquid


def sample_liquid(path: Path, n_formula: int = LIQUID_FORMULA_UNITS, density: float = LIQUID_DENSITY,
                  temperature: float = LIQUID_TEMPERATURE, frames: int = LIQUID_FRAMES, equilibration: int = 400,
                  interval: int = 40, timestep: float = 1.0, seed: int = 0) -> None:
    """Append liquid (ZnO)_n configurations of GFN1-xTB Langevin MD to an extxyz file.

    Resumable: an existing file is continued from its last frame with fresh Maxwell–Boltzmann
    velocities and a re-equilibration of ``interval`` steps.

    Parameters
    ----------
    path : Path
        The candidate file.
    n_formula : int
        ZnO units.
    density : float
        g/cm³.
    temperature : float
        K (thermostat and electronic temperature).
    frames : int
        Frames the file should hold.
    equilibration, interval : int
        MD steps before the first frame and between frames.
    timestep : float
        fs.
    seed : int
        Random seed (packing and velocities).
    """
    from tblite.ase import TBLite  # optional dependency (dft extra)

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
    """Write thermal snapshots of every polymorph (THERMAL_CELL, 16 atoms) at THERMAL_TEMPERATURES.

    Langevin MD (friction 0.01/fs, fixed cell) with a linear-BP potential fitted to the tier-1 frames
    (priority 1) of ``root/train.extxyz``; a frame every ``interval`` steps after ``equilibration``
    steps. Raises if a snapshot has two atoms closer than 1.5 Å (a broken sampler).

    Parameters
    ----------
    path : Path
        The candidate file (extxyz, the order of :func:`~zno_book.reference.plan.thermal_sample`); an
        existing file is kept.
    root : Path
        The data folder.
    equilibration, interval : int
        MD steps.
    timestep : float
        fs.
    seed : int
        Base random seed.
    """

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


# ------------------------------------------------------------------ the models' nanoparticle optima
#: A model optimum is labelled by DFT only if no two atoms are closer than this (Å; overlapping PAW
#: spheres) and its box (cluster + vacuum) is at most DFT_MAX_BOX Å along every axis (plane-wave cost).
DFT_MIN_DISTANCE = 1.0
DFT_MAX_BOX = 30.0


def _dft_safe(atoms) -> str | None:
    """None if ``atoms`` (boxed) can go to DFT, else why not."""
    if not np.all(np.isfinite(atoms.positions)):
        return "non-finite positions"
    if shortest_distance(atoms) < DFT_MIN_DISTANCE:
        return f"atoms {shortest_distance(atoms):.2f} Å apart"
    if atoms.cell.lengths().max() > DFT_MAX_BOX:
        return f"box {atoms.cell.lengths().max():.0f} Å > {DFT_MAX_BOX:.0f} Å"
    return None


def nanoparticle_optima(kind: str, model=None, fingerprint: str | None = None, for_dft: bool = False,
                        progress: bool = True, relax_settings: dict | None = None):
    """Relax every cluster of :func:`~zno_book.reference.plan.nanoparticle_clusters` with the shipped
    model ``kind`` (:func:`~mliplib.properties.nanoparticles.relax_cluster`, settings ``relax_settings``,
    default :data:`~zno_book.reference.plan.MODEL_OPTIMUM_RELAX`), each from its DFT task's own start.

    model/fingerprint: default ``zoo.load_or_train(kind)`` and ``zoo.fingerprint(kind)`` (pass both for
    another model). Returns ``(frames, energies)``: one frame per cluster in plan order, the final
    structure re-centred in a box with the start's vacuum (no calculator), and {cluster: energy after
    each optimiser step (n_steps + 1,), eV}. Frame info: cluster, n_formula, model, model_fingerprint,
    start_recipe (JSON), relax settings, model_converged, model_steps, model_failure ("none" if none:
    extxyz cannot store empty strings), model_energy (eV) and model_fmax (eV/Å) of the frame,
    model_step (the optimiser step the frame is).
    ``for_dft=True`` (the sampler): a final structure that DFT cannot take (atoms < DFT_MIN_DISTANCE
    apart, a box beyond DFT_MAX_BOX, NaN) is replaced by the last optimiser step that it can, and
    ``dft_note`` says why ("none" for the others, which are unchanged).

    Parameters
    ----------
    kind : str
        One of the shipped kinds.
    model : optional
        A model with ``calculator()`` (default: the shipped one).
    fingerprint : str, optional
        Its file's SHA-256 (required with ``model``).
    for_dft : bool
        Replace structures DFT cannot take (see above).
    progress : bool
        Progress bars.
    relax_settings : dict, optional
        ``{"fmax": eV/Å, "steps": int, "optimizer": str}``; default MODEL_OPTIMUM_RELAX.

    Returns
    -------
    tuple
        (list of ase.Atoms, dict of str to numpy.ndarray).
    """
    if model is None:
        model = zoo.load_or_train(kind, progress=progress)
        fingerprint = zoo.fingerprint(kind) if fingerprint is None else fingerprint
    if fingerprint is None:
        raise ValueError("pass the fingerprint of a model given explicitly (e.g. zoo.fingerprint(kind))")
    settings = dict(MODEL_OPTIMUM_RELAX if relax_settings is None else relax_settings)
    calc = model.calculator()
    frames, energies = [], {}
    clusters = nanoparticle_clusters()
    for name, recipe in tqdm(clusters.items(), desc=f"relaxing clusters with {kind}", disable=not progress):
        start = build(recipe)
        vacuum = next(step["vacuum"] for step in recipe if step["op"] == "box")
        relaxed, log = relax_cluster(start, calc, fmax=settings["fmax"], steps=settings["steps"],
                                     optimizer=settings["optimizer"])
        frame, step, note = in_box(relaxed, vacuum), log.steps, ""
        if for_dft and _dft_safe(frame) is not None:
            note = f"final structure not labelled ({_dft_safe(frame)})"
            for step in range(len(log.trajectory) - 1, -1, -1):
                frame = in_box(log.trajectory[step], vacuum)
                if _dft_safe(frame) is None:
                    break
            note += f"; optimiser step {step} instead"
        frame.calc = None
        frame.info = {"cluster": name, "n_formula": formula_units(start), "model": kind,
                      "model_fingerprint": fingerprint, "start_recipe": dumps(recipe),
                      "relax_fmax": float(settings["fmax"]), "relax_steps": int(settings["steps"]),
                      "relax_optimizer": settings["optimizer"], "model_converged": bool(log.converged),
                      "model_steps": int(log.steps), "model_failure": log.failure or "none",
                      "model_energy": float(log.energies[step]) if len(log.energies) else float("nan"),
                      "model_fmax": float(log.fmax[step]) if len(log.fmax) else float("nan"),
                      "model_step": int(step)}
        if for_dft:
            frame.info["dft_note"] = note or "none"
        frames.append(frame)
        energies[name] = np.asarray(log.energies, dtype=float)
    return frames, energies


def sample_nanoparticle_optima(root: Path, kinds=None, progress: bool = True) -> None:
    """Write each model's cluster optima (:func:`nanoparticle_optima` with ``for_dft=True``) to
    ``root/candidates/nanoparticles_<kind>.extxyz`` for the tasks ``nanoparticles/<cluster>/at_<kind>``.

    An existing file is kept (its frames may already be labelled; delete it to resample), and a note
    says when it was made with another version of the model than the current one. The models are
    loaded with ``zoo.load_or_train`` (retrained if the training data changed), so sample once the
    models are final: the DFT tasks are named by cluster and model, not by model version.

    Parameters
    ----------
    root : Path
        The data folder.
    kinds : sequence of str, optional
        Model kinds (default: all).
    progress : bool
        Progress bars.
    """
    for kind in MODEL_KINDS if kinds is None else kinds:
        path = Path(root) / model_optimum_candidates(kind)
        if path.exists():
            recorded = {f.info.get("model_fingerprint") for f in read(path, index=":")}
            zoo.load_or_train(kind, progress=progress)  # brings the cached model up to date
            stale = "" if recorded == {zoo.fingerprint(kind)} else " (made with an older version of the model)"
            print(f"{path} exists{stale}, nothing to do (delete it to resample)")
            continue
        try:
            frames, _ = nanoparticle_optima(kind, for_dft=True, progress=progress)
        except FileNotFoundError as error:  # no cached model and no training data to fit one yet
            print(f"{path}: not written, model {kind!r} unavailable ({error})", flush=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, frames, format="extxyz")
        notes = [f"{f.info['cluster']}: {f.info['dft_note']}" for f in frames if f.info["dft_note"] != "none"]
        print(f"{path}: {len(frames)} optima" + ("; " + "; ".join(notes) if notes else ""), flush=True)


def sample_liquid_models(root: Path, kinds=None, n_frames: int | None = None, protocol=None,
                         min_separation_fs: float = 500.0, artefact_root: Path | None = None,
                         repeat_seeds=None) -> dict:
    """Write frames of each shipped model's own 36-atom liquid MD at the reference state (3000 K,
    4.9 g/cm³) to ``root/candidates/liquid_<kind>.extxyz`` for the DFT tasks ``liquid/at_<kind>/frameNN``.

    The trajectory is :func:`zno_book.liquid.liquid_trajectory` (the liquid chapter's run,
    read from the artefact cache when current, else computed); :func:`~zno_book.liquid.pick_candidates`
    takes ``n_frames`` (default LIQUID_MODEL_FRAMES) production frames ≥ ``min_separation_fs`` apart,
    never one with atoms closer than DFT_MIN_DISTANCE (the state at a collapse can be). Each frame
    records ``sampled_by`` (the kind), ``model_sha256`` (``zoo.fingerprint``), temperature, density, MD
    time, the watchdog event that stopped the run (``md_event``, "none" if none) and its time
    (``md_event_fs``, −1 if none), and the protocol of its run (JSON, with the seed) in its info.

    A run that stops early (a collapse) leaves fewer frames than ``n_frames``. The rest then come from
    the independent repeats :func:`~zno_book.liquid.repeat_protocol` of ``protocol`` with
    ``repeat_seeds`` (default REPEAT_SEEDS, the liquid chapter's survival runs, so usually cached, then
    further seeds), one frame each — the last DFT-safe state of that run, i.e. the moment of its own
    collapse or the end of its 2 ps — in seed order, until there are ``n_frames``: several independent
    collapses tell DFT more than neighbouring frames of one.

    An existing file is topped up, never rewritten: its frames (perhaps labelled already) keep their
    order and the new ones are appended — frames of the main run ≥ ``min_separation_fs`` from those
    taken, then repeats with seeds not used yet. A file sampled with another model version or protocol
    is kept as it is (delete it to resample).

    Parameters
    ----------
    root : Path
        The data folder.
    kinds : sequence of str, optional
        Model kinds (default: all).
    n_frames : int, optional
        Frames per model (default LIQUID_MODEL_FRAMES).
    protocol : LiquidProtocol, optional
        The main run (default: the liquid chapter's 36-atom run).
    min_separation_fs : float
        Smallest MD time between two frames of one run (fs).
    artefact_root : Path, optional
        The artefact cache of the trajectories.
    repeat_seeds : sequence of int, optional
        Seeds of the repeats, in the order they are tried.

    Returns
    -------
    dict of str to int
        Kind → number of frames in its file.
    """
    protocol = protocol or LiquidProtocol()
    n_frames = LIQUID_MODEL_FRAMES if n_frames is None else n_frames
    if repeat_seeds is None:
        repeat_seeds = REPEAT_SEEDS + tuple(range(max(REPEAT_SEEDS) + 1, max(REPEAT_SEEDS) + 1 + n_frames))
    counts = {}
    for kind in kinds or MODEL_KINDS:
        path = Path(root) / liquid_model_candidates(kind)
        done = read(path, index=":") if path.exists() else []
        sources = [json.loads(f.info["md_protocol"]) for f in done]
        used_seeds = {s["seed"] for s in sources}
        known = [protocol.as_dict()] + [repeat_protocol(seed, protocol).as_dict() for seed in used_seeds]
        current = zoo.fingerprint(kind) if zoo.is_current(kind) else None
        same = (all(f.info.get("model_sha256") == current for f in done)
                and all(s in known for s in sources))
        if done and (len(done) >= n_frames or not same):
            made_with = "the current model and protocol" if same else "another model version or protocol"
            print(f"{path} exists ({len(done)} frames, sampled with {made_with}); delete it to resample", flush=True)
            counts[kind] = len(done)
            continue
        run = liquid_trajectory(kind, protocol, root=artefact_root)
        taken = [f.info["time_fs"] for f, s in zip(done, sources) if s == protocol.as_dict()]
        picked = [(frame, run) for frame in pick_candidates(run, n_frames - len(done), min_separation_fs,
                                                            min_distance=DFT_MIN_DISTANCE, taken_fs=taken)]
        print(f"{kind}: {run.summary()}; {len(picked)} new frames", flush=True)
        for seed in repeat_seeds:
            if len(done) + len(picked) >= n_frames:
                break
            if seed in used_seeds:
                continue
            repeat = liquid_trajectory(kind, repeat_protocol(seed, protocol), root=artefact_root)
            picked += [(frame, repeat) for frame in pick_candidates(repeat, 1, min_distance=DFT_MIN_DISTANCE)]
            print(f"  repeat with seed {seed}: {repeat.summary()}", flush=True)
        fingerprint = zoo.fingerprint(kind)
        frames = list(done)
        for frame, source in picked:
            p = source.protocol
            frame.info["temperature_K_inst"] = frame.info.pop("temperature_K")
            frame.info.update(sampler=f"{zoo.LABELS[kind]} Langevin + Bussi NVT (zno_book.liquid)",
                              sampled_by=kind, model_sha256=fingerprint, temperature_K=p.temperature,
                              density_g_cm3=p.density, md_step=int(frame.info.pop("step")),
                              timestep_fs=p.timestep_fs, md_event=source.event.kind if source.event else "none",
                              md_event_fs=source.event.time_fs if source.event else -1.0,
                              md_protocol=json.dumps(p.as_dict(), sort_keys=True))
            frames.append(frame)
        print(f"{kind}: {len(frames)} frames ({len(done)} kept) → {path}", flush=True)
        if len(frames) < n_frames:
            print(f"  only {len(frames)} of {n_frames} frames: the runs stopped early", flush=True)
        if len(frames) > len(done):  # atomically: DFT workers may be reading the file
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial.extxyz")
            write(partial, frames, format="extxyz")
            os.replace(partial, path)
        counts[kind] = len(frames)
    return counts
