"""The reference plan on any ``concurrent.futures`` executor, through :mod:`zno_book.driver`.

:func:`driver_tasks` turns the plan's DFT tasks into driver tasks: a single point is one task
(:func:`label_single`, whose labelled frame the driver appends to ``<root>/<dataset>.extxyz``); a
relaxation is a chain of chunks of at most :data:`CHUNK_STEPS` BFGS steps (:func:`relax_chunk`, each
saved by the driver as ``<root>/checkpoints/<task>/chunkNN.npz`` and each waiting for the one before),
then one task (:func:`relaxation_frames`) that turns the chunks into the relaxation's frames in the data
file. The optimiser's state travels in the chunks: every step's positions, cell, energies, forces and
stress. The next chunk reuses the last step's DFT result instead of recomputing it and, for a relaxation
of positions, rebuilds BFGS's Hessian by replaying the steps so far (so the chunked relaxation takes the
steps of an uninterrupted one); a relaxation with the cell (``FrechetCellFilter``) restarts BFGS from the
last geometry with a fresh Hessian.

The driver process is the only writer of the data folder: workers compute and return, the driver saves
each result atomically and then rewrites ``manifest.json`` (atomically), and :func:`run` removes the
checkpoints of relaxations whose frames are in the data file. Workers write only GPAW's text logs, in the
scratch folder ``<root>/.work/txt``. :func:`dry_run` and the other functions that inspect a data folder
write nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.io import read
from ase.optimize import BFGS

from zno_book import driver, executors
from zno_book.driver import ExtxyzStore, FolderStore, PrefixStore, write_atomic
from zno_book.reference import recipes
from zno_book.reference.engine import (
    DFTSettings,
    engine_version,
    kpoint_mesh,
    make_calculator,
    single_point,
)
from zno_book.reference.plan import Task

MANIFEST_VERSION = 1
#: BFGS steps per relaxation chunk (one driver task each)
CHUNK_STEPS = 5
#: task-name prefix and sub-folder of the relaxation chunks
CHECKPOINTS = "checkpoints"


# -------------------------------------------------------------------------------- the data folder


class CheckpointStore(FolderStore):
    """The relaxation chunks: task ``checkpoints/<name>`` ↔ ``<root>/checkpoints/<name>.npz``.

    Parameters
    ----------
    root : str or Path
        The data folder.
    """

    def __init__(self, root: str | Path):
        super().__init__(Path(root) / CHECKPOINTS)

    def path(self, name: str) -> Path:
        """The file of chunk task ``checkpoints/<name>``: ``<root>/checkpoints/<name>.npz``.

        Parameters
        ----------
        name : str
            Task name starting with ``checkpoints/`` (:func:`chunk_name`).

        Returns
        -------
        Path

        Raises
        ------
        ValueError
            If ``name`` does not start with ``checkpoints/``, or the rest cannot be a relative file path
            (an empty, ``.`` or ``..`` part).
        """
        if not name.startswith(CHECKPOINTS + "/"):
            raise ValueError(f"task {name!r} is not a relaxation chunk (names start with {CHECKPOINTS}/)")
        return super().path(name[len(CHECKPOINTS) + 1:])

    def done(self) -> set[str]:
        """Names of the stored chunks, as tasks: ``checkpoints/<name>`` of every ``.npz`` under the folder.

        Returns
        -------
        set of str
            Empty if ``<root>/checkpoints`` does not exist.
        """
        return {f"{CHECKPOINTS}/{name}" for name in super().done()}


def chunk_name(task_name: str, index: int) -> str:
    """The driver task of chunk ``index`` of relaxation ``task_name``.

    Parameters
    ----------
    task_name : str
        The relaxation's plan task name.
    index : int
        Chunk number (0 first).

    Returns
    -------
    str
        ``checkpoints/<task_name>/chunkNN``.
    """
    return f"{CHECKPOINTS}/{task_name}/chunk{index:02d}"


def data_store(root: str | Path, settings: DFTSettings) -> PrefixStore:
    """Where a run's results go: relaxation chunks in a :class:`CheckpointStore`, frames in an
    :class:`~zno_book.driver.ExtxyzStore` that rewrites the manifest after each save.

    Parameters
    ----------
    root : str or Path
        The data folder.
    settings : DFTSettings
        The run's settings (recorded in the manifest).

    Returns
    -------
    zno_book.driver.PrefixStore
    """
    frames = ExtxyzStore(root, on_save=lambda store: write_manifest(store.root, settings))
    return PrefixStore({CHECKPOINTS + "/": CheckpointStore(root), "": frames})


def check_settings(root: str | Path, settings: DFTSettings) -> None:
    """Refuse to mix settings: the manifest's settings (if there is one) must equal ``settings``.

    Parameters
    ----------
    root : str or Path
        The data folder.
    settings : DFTSettings
        The settings of this run.
    """
    path = Path(root) / "manifest.json"
    if path.exists():
        recorded = json.loads(path.read_text())["settings"]
        if recorded != settings.as_dict():
            raise RuntimeError(f"{path} was made with settings {recorded}, this run uses {settings.as_dict()}; "
                               "use another data folder or the same settings")


def write_manifest(root: str | Path, settings: DFTSettings) -> None:
    """Rewrite ``<root>/manifest.json`` atomically: per file its SHA-256, frames, atoms, tasks and wall
    time; the settings, the engine version and the frame counts per config_type.

    Parameters
    ----------
    root : str or Path
        The data folder.
    settings : DFTSettings
        The settings of the data.
    """
    frames_by_file, summary = {}, {}
    for path in ExtxyzStore(root).files():
        frames = read(path, index=":")
        walls = [float(f.info.get("wall_time_s", 0.0)) for f in frames]
        frames_by_file[path.name] = {
            "sha256": sha256(path), "frames": len(frames), "atoms": int(sum(len(f) for f in frames)),
            "tasks": len({f.info["task"] for f in frames}), "wall_time_s": round(sum(walls), 1)}
        for f in frames:
            summary[f.info["config_type"]] = summary.get(f.info["config_type"], 0) + 1
    manifest = {
        "version": MANIFEST_VERSION,
        "description": "ZnO DFT reference data for mliplib; see README.md in this folder",
        "engine": engine_version(),
        "settings": settings.as_dict(),
        "units": {"energy": "eV (Mermin free energy, consistent with forces)", "forces": "eV/Å",
                  "stress": "eV/Å³, Voigt xx yy zz yz xz xy, ASE sign (positive = tensile)",
                  "wall_time_s": "s, one core"},
        "files": frames_by_file,
        "config_types": dict(sorted(summary.items())),
    }
    text = json.dumps(manifest, indent=1) + "\n"
    write_atomic(Path(root) / "manifest.json", lambda handle: handle.write(text.encode()))


def sha256(path: Path) -> str:
    """SHA-256 of a file (read in 1 MiB blocks).

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -------------------------------------------------------------------------- what the workers run


def task_settings(task: Task, base: DFTSettings) -> DFTSettings:
    """The settings of ``task``: ``base`` with the task's overrides (convergence study, tiny plan).

    Parameters
    ----------
    task : Task
        The task.
    base : DFTSettings
        The run's settings.

    Returns
    -------
    DFTSettings
    """
    return DFTSettings(**{**base.as_dict(), **(task.settings or {})})


def labelled(atoms: Atoms, result: dict, task: Task, extra: dict) -> Atoms:
    """A copy of ``atoms`` carrying the DFT result as a single-point calculator and its provenance.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure computed; the scalars of its ``info`` (str, bool, int, float, and NumPy's, as Python
        scalars) are carried over, arrays and containers are not.
    result : dict
        What :func:`~zno_book.reference.engine.single_point` returns.
    task : Task
        The task (name, data set, config_type and recipe go into ``info``).
    extra : dict
        More ``info`` entries (relaxation step, executor, ...).

    Returns
    -------
    ase.Atoms
    """
    out = atoms.copy()
    out.info = {k: v.item() if isinstance(v, np.generic) else v for k, v in atoms.info.items()
                if isinstance(v, (str, int, float, np.integer, np.floating, np.bool_))}
    out.info.update(task=task.name, dataset=task.dataset, config_type=task.config_type,
                    recipe=recipes.dumps(list(task.recipe)), wall_time_s=round(float(result["wall_time_s"]), 2),
                    kpts=" ".join(map(str, result["kpts"])),
                    energy_zero_smearing=float(result["energy_zero_smearing"]), **extra)
    if task.settings:
        out.info["settings"] = json.dumps(task.settings, sort_keys=True)
    results = {"energy": result["energy"], "free_energy": result["energy"], "forces": result["forces"]}
    if "stress" in result:
        results["stress"] = result["stress"]
    out.calc = SinglePointCalculator(out, **results)
    return out


def worker_stamp(executor: str) -> str:
    """``"<executor kind> <host>:<pid>"``: which executor and which worker process computed a frame.

    Parameters
    ----------
    executor : str
        The executor kind (serial, local, dask).

    Returns
    -------
    str
    """
    return f"{executor} {socket.gethostname()}:{os.getpid()}"


def gpaw_log(root: str | Path, name: str) -> str:
    """GPAW's text log of task ``name``: ``<root>/.work/txt/<name with / as __>.txt`` (scratch, created).

    Parameters
    ----------
    root : str or Path
        The data folder.
    name : str
        The driver task's name.

    Returns
    -------
    str
    """
    folder = Path(root) / ".work" / "txt"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / (name.replace("/", "__") + ".txt"))


def label_single(task: dict, root: str, settings: dict, executor: str) -> list[Atoms]:
    """Run a single-point task of the plan (a driver task function).

    Parameters
    ----------
    task : dict
        The plan task (:meth:`Task.as_dict`), of kind ``"single"``.
    root : str
        The data folder (for recipes that read frames).
    settings : dict
        The run's :class:`DFTSettings` as a dict (the task's overrides are applied on top).
    executor : str
        The executor kind, recorded with the worker in ``info["executor"]``.

    Returns
    -------
    list of ase.Atoms
        The one labelled frame.
    """
    plan_task = Task.from_dict(task)
    atoms = recipes.build(list(plan_task.recipe), root=root)
    result = single_point(atoms, task_settings(plan_task, DFTSettings(**settings)), txt=gpaw_log(root, plan_task.name))
    return [labelled(atoms, result, plan_task, {"executor": worker_stamp(executor)})]


class _Resumed(Calculator):
    """``calc``, except at the geometry of ``stored`` (a relaxation's last step, from its chunks), whose
    stored DFT result is returned instead of being recomputed."""

    def __init__(self, calc, stored: dict):
        super().__init__()
        self.calc, self.stored = calc, stored

    def get_property(self, name, atoms=None, allow_calculation=True):
        if atoms is not None and name in self.stored and np.array_equal(atoms.positions, self.stored["positions"]) \
                and np.array_equal(atoms.cell.array, self.stored["cell"]):
            return np.copy(self.stored[name])
        return self.calc.get_property(name, atoms, allow_calculation)


def _steps_of(chunks: list[dict]) -> list[dict]:
    """The steps of a relaxation's chunks, in order: one dict per step (positions, cell, energy, ...)."""
    keys = ("positions", "cell", "energy", "energy_zero_smearing", "forces", "stress", "wall_time_s")
    return [{key: chunk[key][k] for key in keys if key in chunk}
            for chunk in chunks for k in range(len(chunk["energy"]))]


def _chunk(steps: list[dict], n_atoms: int, periodic: bool, kpts, taken: int, converged: bool,
           executor: str) -> dict:
    """A chunk result (a FolderStore dict) holding ``steps`` (possibly none)."""
    def stack(key, shape):
        return np.array([step[key] for step in steps], dtype=float).reshape((len(steps), *shape))

    chunk = {"positions": stack("positions", (n_atoms, 3)), "cell": stack("cell", (3, 3)),
             "energy": stack("energy", ()),
             "energy_zero_smearing": stack("energy_zero_smearing", ()), "forces": stack("forces", (n_atoms, 3)),
             "wall_time_s": stack("wall_time_s", ()), "kpts": np.asarray(kpts, dtype=int), "steps": int(taken),
             "converged": bool(converged), "executor": executor}
    if periodic:
        chunk["stress"] = stack("stress", (6,))
    return chunk


def relax_chunk(task: dict, index: int, steps: int, root: str, settings: dict, executor: str) -> dict:
    """Chunk ``index`` of a relaxation: up to ``steps`` more BFGS steps from where the chunks before it
    (read from ``<root>/checkpoints``) stopped; the first chunk also computes the start (a driver task
    function, see the module docstring for how the optimiser's state is carried over).

    Parameters
    ----------
    task : dict
        The plan task (:meth:`Task.as_dict`), of kind ``"relax"``.
    index : int
        Chunk number; chunks 0 … index − 1 must be saved.
    steps : int
        BFGS steps of this chunk at most (fewer when the relaxation converges or reaches its step limit).
    root : str
        The data folder.
    settings : dict
        The run's :class:`DFTSettings` as a dict.
    executor : str
        The executor kind, recorded with the worker.

    Returns
    -------
    dict
        ``positions`` (n, N, 3) Å, ``cell`` (n, 3, 3) Å, ``energy`` and ``energy_zero_smearing`` (n,) eV,
        ``forces`` (n, N, 3) eV/Å, ``stress`` (n, 6) eV/Å³ (periodic cells), ``wall_time_s`` (n,) s of
        the n new steps (n = 0 once converged); ``kpts`` (3,), ``steps`` (optimiser steps so far),
        ``converged`` and ``executor``.
    """
    plan_task = Task.from_dict(task)
    store = CheckpointStore(root)
    before = [store.load(chunk_name(plan_task.name, k)) for k in range(index)]
    history = _steps_of(before)
    start = recipes.build(list(plan_task.recipe), root=root)
    periodic = bool(np.all(start.pbc))
    run_settings = task_settings(plan_task, DFTSettings(**settings))
    kpts = kpoint_mesh(start, run_settings.kpt_density)  # of the start: one mesh for the whole relaxation
    taken = before[-1]["steps"] if before else 0
    remaining = min(steps, plan_task.relax["steps"] - taken)
    stamp = worker_stamp(executor)
    if before and (before[-1]["converged"] or remaining <= 0):
        return _chunk([], len(start), periodic, kpts, taken, before[-1]["converged"], stamp)

    atoms = start.copy()
    if history:
        atoms.positions, atoms.cell = history[-1]["positions"], history[-1]["cell"]
    calc = make_calculator(start, run_settings, txt=gpaw_log(root, chunk_name(plan_task.name, index)))
    atoms.pbc = True  # plane waves need a periodic box; isolated systems carry their vacuum in the cell
    if history:
        last = dict(history[-1])
        last["free_energy"], last["energy"] = last["energy"], last["energy_zero_smearing"]
        atoms.calc = _Resumed(calc, last)
    else:
        atoms.calc = calc
    cell_mode = plan_task.relax.get("cell")
    optimizer = BFGS(FrechetCellFilter(atoms, constant_volume=True) if cell_mode == "constant_volume" else atoms,
                     logfile=None)
    if history and cell_mode is None:
        optimizer.replay_trajectory([_step_atoms(start, step) for step in history])
    new, clock, skip = [], [time.perf_counter()], [bool(history)]

    def record():
        if skip[0]:  # the optimiser's first observation is the last stored step
            skip[0] = False
            return
        now = time.perf_counter()
        step = {"positions": atoms.positions.copy(), "cell": atoms.cell.array.copy(),
                "energy": atoms.get_potential_energy(force_consistent=True),
                "energy_zero_smearing": atoms.get_potential_energy(), "forces": atoms.get_forces(),
                "wall_time_s": now - clock[0]}
        if periodic:
            step["stress"] = atoms.get_stress(voigt=True)
        clock[0] = now
        new.append(step)

    optimizer.attach(record, interval=1)
    converged = optimizer.run(fmax=plan_task.relax["fmax"], steps=remaining)
    return _chunk(new, len(start), periodic, kpts, taken + optimizer.nsteps, converged, stamp)


def _step_atoms(start: Atoms, step: dict) -> Atoms:
    """``start`` at the geometry of a stored step, with its energy and forces (for BFGS's replay)."""
    atoms = start.copy()
    atoms.positions, atoms.cell = step["positions"], step["cell"]
    atoms.calc = SinglePointCalculator(atoms, energy=float(step["energy"]), forces=step["forces"])
    return atoms


def relaxation_frames(task: dict, chunks: int, root: str) -> list[Atoms]:
    """The frames of a finished relaxation, from its ``chunks`` chunks (a driver task function): every
    step labelled like a single point, with ``relax_step``, ``relax_final`` and, on the last,
    ``relax_converged``; ``executor`` is the worker that computed the step.

    Parameters
    ----------
    task : dict
        The plan task (:meth:`Task.as_dict`), of kind ``"relax"``.
    chunks : int
        Its number of chunks (all saved).
    root : str
        The data folder.

    Returns
    -------
    list of ase.Atoms
    """
    plan_task = Task.from_dict(task)
    store = CheckpointStore(root)
    parts = [store.load(chunk_name(plan_task.name, k)) for k in range(chunks)]
    start = recipes.build(list(plan_task.recipe), root=root)
    frames = []
    for part in parts:
        for step in _steps_of([part]):
            atoms = start.copy()
            atoms.positions, atoms.cell = step["positions"], step["cell"]
            result = {**step, "kpts": part["kpts"]}
            frames.append(labelled(atoms, result, plan_task, {"relax_step": len(frames), "relax_final": False,
                                                              "executor": part["executor"]}))
    frames[-1].info["relax_final"] = True
    frames[-1].info["relax_converged"] = bool(parts[-1]["converged"])
    return frames


# --------------------------------------------------------------------------------------- the plan


def measured_seconds(frames: list[Atoms]) -> dict[str, float]:
    """The cost of single points seen so far, per config_type.

    Parameters
    ----------
    frames : list of ase.Atoms
        The data folder's frames (:meth:`zno_book.driver.ExtxyzStore.frames`).

    Returns
    -------
    dict of str to float
        config_type → median wall time (s) of its single points (relaxation steps left out).
    """
    times: dict[str, list[float]] = {}
    for atoms in frames:
        if "relax_step" not in atoms.info and atoms.info.get("wall_time_s", 0.0) > 0:
            times.setdefault(atoms.info["config_type"], []).append(float(atoms.info["wall_time_s"]))
    return {config_type: float(np.median(t)) for config_type, t in times.items()}


def estimated_seconds(task: Task, root: str | Path, settings: DFTSettings,
                      measured: dict[str, float] | None = None) -> float:
    """One-core cost (s) of ``task``: for a single point whose config_type (or else ``task.cost_like``)
    is in ``measured`` (:func:`measured_seconds`), that median; otherwise a rough model (calibrated on
    4- and 16-atom wurtzite at 800 eV; relaxations ×8). NaN while its inputs do not exist.

    Parameters
    ----------
    task : Task
        The task.
    root : str or Path
        The data folder (for recipes that read frames).
    settings : DFTSettings
        The run's settings.
    measured : dict, optional
        :func:`measured_seconds`.

    Returns
    -------
    float
        Seconds on one core.
    """
    try:
        atoms = recipes.build(list(task.recipe), root=str(root))
    except FileNotFoundError:
        return float("nan")
    measured = measured or {}
    like = next((key for key in (task.config_type, task.cost_like) if key in measured), None)
    if task.kind == "single" and like is not None:
        return measured[like]
    s = task_settings(task, settings)
    volume = atoms.get_volume() if atoms.cell.rank == 3 else 1000.0
    nk = np.prod(kpoint_mesh(atoms, s.kpt_density)) if np.all(atoms.pbc) else 1
    cost = 55.0 * (len(atoms) / 4) ** 1.6 * max(nk * volume / 9330.0, 0.3) * (s.ecut / 800.0) ** 1.5
    return cost * (8 if task.kind == "relax" else 1)


def inputs_ready(task: Task, root: str | Path, available: set[str]) -> bool:
    """Input files named by ``frame`` steps exist and relaxations named by ``relaxed`` steps are in
    ``available`` (finished, or ready to run before it in the same run: the task then waits for it).

    Parameters
    ----------
    task : Task
        The task.
    root : str or Path
        The data folder.
    available : set of str
        Names of the relaxations that are or will be finished first.

    Returns
    -------
    bool
    """
    return all(step["index"] < recipes.n_frames(Path(root) / step["file"])
               for step in task.recipe if step["op"] == "frame") and \
        all(step["task"] in available for step in task.recipe if step["op"] == "relaxed")


def select(tasks: list[Task], max_priority: int | None = None, only: list[str] | None = None) -> list[Task]:
    """The tasks of priority ≤ ``max_priority`` whose name starts with one of the prefixes ``only``.

    Parameters
    ----------
    tasks : list of Task
        The tasks.
    max_priority : int, optional
        Highest priority kept (None: no limit).
    only : list of str, optional
        Name prefixes kept (None: every task).

    Returns
    -------
    list of Task
    """
    return [t for t in tasks if (max_priority is None or t.priority <= max_priority)
            and (only is None or any(t.name.startswith(prefix) for prefix in only))]


def driver_tasks(tasks: list[Task], root: str | Path, settings: DFTSettings, executor: str,
                 measured: dict[str, float] | None = None, chunk_steps: int = CHUNK_STEPS) -> list[driver.Task]:
    """The driver tasks of plan tasks (see the module docstring), in the same order.

    Parameters
    ----------
    tasks : list of Task
        Plan tasks (their inputs ready, see :func:`inputs_ready`).
    root : str or Path
        The data folder.
    settings : DFTSettings
        The run's settings.
    executor : str
        The executor kind, recorded in the frames.
    measured : dict, optional
        :func:`measured_seconds`, for the cost estimates (one-core seconds; unknown costs count 0).
    chunk_steps : int
        BFGS steps per relaxation chunk.

    Returns
    -------
    list of zno_book.driver.Task
    """
    common = {"root": str(root), "settings": settings.as_dict(), "executor": executor}
    out = []
    for t in tasks:
        cost = estimated_seconds(t, root, settings, measured)
        cost = 0.0 if math.isnan(cost) else cost
        after = tuple(step["task"] for step in t.recipe if step["op"] == "relaxed")
        if t.kind == "single":
            out.append(driver.Task(t.name, f"{__name__}:label_single", {"task": t.as_dict(), **common}, cost, after))
            continue
        n = math.ceil(t.relax["steps"] / chunk_steps)
        for k in range(n):
            out.append(driver.Task(chunk_name(t.name, k), f"{__name__}:relax_chunk",
                                   {"task": t.as_dict(), "index": k, "steps": chunk_steps, **common}, cost / n,
                                   (chunk_name(t.name, k - 1),) if k else after))
        out.append(driver.Task(t.name, f"{__name__}:relaxation_frames",
                               {"task": t.as_dict(), "chunks": n, "root": str(root)}, 0.0,
                               (chunk_name(t.name, n - 1),)))
    return out


def remove_finished_checkpoints(root: str | Path, finished: set[str]) -> list[str]:
    """Delete the chunks of relaxations whose frames are in the data files (called by the driver process).

    Parameters
    ----------
    root : str or Path
        The data folder.
    finished : set of str
        Tasks with frames in the data files.

    Returns
    -------
    list of str
        The relaxations whose checkpoints were removed.
    """
    folder = Path(root) / CHECKPOINTS
    removed = sorted(name for name in finished if (folder / name).is_dir())
    for name in removed:
        shutil.rmtree(folder / name)
    for path in sorted(folder.rglob("*"), reverse=True) if folder.exists() else []:  # empty parents
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()
    return removed


def run(root: str | Path, tasks: list[Task], executor: str = "local", workers: int | None = None,
        address: str | None = None, settings: DFTSettings | None = None, chunk_steps: int = CHUNK_STEPS,
        make_executor: Callable[[], Executor] | None = None, log=None) -> driver.Report:
    """Run the unfinished ``tasks`` whose inputs are ready on an executor of kind ``executor``.

    Parameters
    ----------
    root : str or Path
        The data folder (created on the first save).
    tasks : list of Task
        Plan tasks, in priority order.
    executor : str
        ``"serial"``, ``"local"`` or ``"dask"`` (:func:`zno_book.executors.factory`), recorded in the
        frames; with ``make_executor``, only the name recorded (e.g. ``"executorlib"``).
    workers : int, optional
        Parallel workers (default: the cores available; 1 for serial).
    address : str, optional
        A running Dask scheduler (with ``"dask"``).
    settings : DFTSettings, optional
        The run's settings (default: the book's); must equal the manifest's.
    chunk_steps : int
        BFGS steps per relaxation chunk.
    make_executor : callable, optional
        Makes the executor (any ``concurrent.futures.Executor``, e.g.
        ``lambda: executors.executorlib_slurm(cores_per_task=16)``) instead of ``executor``'s kind.
    log : file, optional
        Progress lines (default: ``sys.stderr``).

    Returns
    -------
    zno_book.driver.Report
    """
    log = sys.stderr if log is None else log
    settings = DFTSettings() if settings is None else settings
    check_settings(root, settings)
    frames = ExtxyzStore(root).frames()
    finished = {atoms.info["task"] for atoms in frames}
    todo = [t for t in tasks if t.name not in finished]
    print(f"{len(tasks) - len(todo)} of the {len(tasks)} tasks selected are in the data files already", file=log)
    available = finished | {t.name for t in todo if t.kind == "relax" and inputs_ready(t, root, finished)}
    ready = [t for t in todo if inputs_ready(t, root, available)]
    for t in todo:
        if t not in ready:
            print(f"waiting for its inputs (candidate frames or a relaxation): {t.name}", file=log)
    workers = 1 if executor == "serial" else workers or executors.available_cores()
    report = driver.run(driver_tasks(ready, root, settings, executor, measured_seconds(frames), chunk_steps),
                        data_store(root, settings), make_executor or executors.factory(executor, workers, address),
                        workers=workers, log=log)
    for name in remove_finished_checkpoints(root, ExtxyzStore(root).done()):
        print(f"removed the checkpoints of the finished relaxation {name}", file=log)
    return report


def dry_run(root: str | Path, tasks: list[Task], settings: DFTSettings | None = None, selected: bool = False,
            out=None) -> None:
    """Print what remains of ``tasks``, with rough cost estimates; reads the data folder, writes nothing.

    Parameters
    ----------
    root : str or Path
        The data folder.
    tasks : list of Task
        The selection of the plan.
    settings : DFTSettings, optional
        The run's settings (default: the book's).
    selected : bool
        Whether ``tasks`` is a selection (said in the summary line).
    out : file-like, optional
        Where the listing goes (default: the current ``sys.stdout``).
    """
    out = sys.stdout if out is None else out
    settings = DFTSettings() if settings is None else settings
    frames = ExtxyzStore(root).frames()
    done = {atoms.info["task"] for atoms in frames}
    chunks = CheckpointStore(root).done()
    rows = [t for t in tasks if t.name not in done]
    available = done | {t.name for t in rows if t.kind == "relax" and inputs_ready(t, root, done)}
    measured = measured_seconds(frames)
    buffer, total = io.StringIO(), 0.0
    for t in rows:
        est = estimated_seconds(t, root, settings, measured)
        total += 0 if np.isnan(est) else est
        waiting = "  (waiting for its inputs: candidate frames or a relaxation)"
        note = "" if inputs_ready(t, root, available) else waiting
        started = sum(name.startswith(f"{CHECKPOINTS}/{t.name}/") for name in chunks)
        note += f"  ({started} chunks done)" if started else ""
        print(f"  p{t.priority} {t.name:45s} {t.kind:6s} ~{est / 60:6.1f} min{note}", file=buffer)
    print(f"{len(done)} tasks finished, {len(rows)} remaining{' in this selection' if selected else ''}, "
          f"≈{total / 3600:.1f} CPU-h (≈{total / 7200:.1f} h with 2 workers; measured medians per config_type "
          "where there are any, else a rough model)", file=out)
    out.write(buffer.getvalue())
