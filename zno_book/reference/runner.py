"""Resumable execution of the reference plan: claim a task, run it, append its frames, update the manifest.

Several worker processes may run at once (one core each): a task is claimed with an exclusive lock
file, results are appended to ``<root>/<dataset>.extxyz`` under a file lock, and a task whose name is
already in the output is skipped. Relaxations checkpoint every step, so a killed run resumes mid-way.
Only :func:`work` writes: :func:`dry_run` and the other functions that inspect a data folder leave it
untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.optimize import BFGS

from zno_book.reference import recipes
from zno_book.reference.engine import (
    DFTSettings,
    engine_version,
    kpoint_mesh,
    make_calculator,
    single_point,
)
from zno_book.reference.plan import Task, all_tasks

MANIFEST_VERSION = 1


class Store:
    """The data folder: one extxyz file per data set, a manifest, ``checkpoints/`` (relaxations in
    progress, committed so a relaxation can resume in a later session) and a scratch ``.work`` folder.

    Creating a Store writes nothing; :meth:`prepare` (called by :func:`work`) creates the folders.

    Parameters
    ----------
    root : str or Path
        The data folder.
    settings : DFTSettings
        The DFT settings of this run.
    """

    def __init__(self, root: str | Path, settings: DFTSettings):
        self.root = Path(root)
        self.work = self.root / ".work"
        self.checkpoints = self.root / "checkpoints"
        self.settings = settings

    def prepare(self) -> None:
        """Create the data folder, ``.work/claims``, ``.work/txt`` and ``checkpoints`` (before running tasks)."""
        for sub in ("claims", "txt"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)

    def checkpoint(self, task: Task) -> Path:
        """Where the frames of a relaxation in progress are kept (removed once the task's frames are in the
        data file).

        Parameters
        ----------
        task : Task
            A relaxation task.

        Returns
        -------
        Path
        """
        return self.checkpoints / (task.name.replace("/", "__") + ".extxyz")

    @contextlib.contextmanager
    def locked(self):
        """Context manager holding an exclusive lock on the data folder (``.work/lock``)."""
        with open(self.work / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def files(self) -> list[Path]:
        """The data files, ``<root>/*.extxyz``, sorted.

        Returns
        -------
        list of Path
        """
        return sorted(self.root.glob("*.extxyz"))

    def frames(self) -> list[Atoms]:
        """Every frame of every data file.

        Returns
        -------
        list of ase.Atoms
        """
        out = []
        for path in self.files():
            out.extend(read(path, index=":"))
        return out

    def finished(self) -> dict[str, list[float]]:
        """The tasks with frames in the output.

        Returns
        -------
        dict of str to list of float
            Task name → wall times (s) of its frames.
        """
        done: dict[str, list[float]] = {}
        for atoms in self.frames():
            done.setdefault(atoms.info["task"], []).append(float(atoms.info.get("wall_time_s", 0.0)))
        return done

    def append(self, dataset: str, frames: list[Atoms]) -> None:
        """Append a task's frames to ``<root>/<dataset>.extxyz`` and rewrite the manifest, under the lock.

        Parameters
        ----------
        dataset : str
            The data set (file stem).
        frames : list of ase.Atoms
            Labelled frames (:func:`labelled`).
        """
        with self.locked():
            write(self.root / f"{dataset}.extxyz", frames, format="extxyz", append=True)
            self.write_manifest()

    def claim(self, task: Task) -> bool:
        """Claim ``task`` for this process with an exclusive claim file (a dead claimant's claim is taken over).

        Parameters
        ----------
        task : Task
            The task.

        Returns
        -------
        bool
            True if this process now holds the claim.
        """
        path = self.work / "claims" / (task.name.replace("/", "__") + ".claim")
        if path.exists():
            pid = int(path.read_text().split()[0] or 0)
            if _alive(pid):
                return False
            path.unlink(missing_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(fd, f"{os.getpid()} {time.time():.0f}\n".encode())
        os.close(fd)
        return True

    def release(self, task: Task) -> None:
        """Remove this process's claim on ``task``.

        Parameters
        ----------
        task : Task
            The task.
        """
        (self.work / "claims" / (task.name.replace("/", "__") + ".claim")).unlink(missing_ok=True)

    def check_settings(self) -> None:
        """Refuse to mix settings: the manifest's settings must equal the ones of this run."""
        path = self.root / "manifest.json"
        if path.exists():
            recorded = json.loads(path.read_text())["settings"]
            if recorded != self.settings.as_dict():
                raise RuntimeError(f"{path} was made with settings {recorded}, this run uses "
                                   f"{self.settings.as_dict()}; use another data folder or the same settings")

    def write_manifest(self) -> None:
        """Rewrite ``<root>/manifest.json``: per file its SHA-256, frames, atoms, tasks and wall time; the
        settings, the engine version and the frame counts per config_type."""
        frames_by_file, summary = {}, {}
        for path in self.files():
            frames = read(path, index=":")
            walls = [float(f.info.get("wall_time_s", 0.0)) for f in frames]
            frames_by_file[path.name] = {
                "sha256": sha256(path), "frames": len(frames), "atoms": int(sum(len(f) for f in frames)),
                "tasks": len({f.info["task"] for f in frames}), "wall_time_s": round(sum(walls), 1)}
            for f in frames:
                summary.setdefault(f.info["config_type"], 0)
                summary[f.info["config_type"]] += 1
        manifest = {
            "version": MANIFEST_VERSION,
            "description": "ZnO DFT reference data for mliplib; see README.md in this folder",
            "engine": engine_version(),
            "settings": self.settings.as_dict(),
            "units": {"energy": "eV (Mermin free energy, consistent with forces)", "forces": "eV/Å",
                      "stress": "eV/Å³, Voigt xx yy zz yz xz xy, ASE sign (positive = tensile)",
                      "wall_time_s": "s, one core"},
            "files": frames_by_file,
            "config_types": dict(sorted(summary.items())),
        }
        (self.root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


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


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def task_settings(task: Task, base: DFTSettings) -> DFTSettings:
    """The settings of ``task``: ``base`` with the task's overrides (convergence study).

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
        The structure computed.
    result : dict
        What :func:`~zno_book.reference.engine.single_point` returns.
    task : Task
        The task (name, data set, config_type and recipe go into ``info``).
    extra : dict
        More ``info`` entries (relaxation step, ...).

    Returns
    -------
    ase.Atoms
    """
    out = atoms.copy()
    out.info = {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))}
    out.info.update(task=task.name, dataset=task.dataset, config_type=task.config_type,
                    recipe=recipes.dumps(list(task.recipe)), wall_time_s=round(result["wall_time_s"], 2),
                    kpts=" ".join(map(str, result["kpts"])),
                    energy_zero_smearing=float(result["energy_zero_smearing"]), **extra)
    if task.settings:
        out.info["settings"] = json.dumps(task.settings, sort_keys=True)
    results = {"energy": result["energy"], "free_energy": result["energy"], "forces": result["forces"]}
    if "stress" in result:
        results["stress"] = result["stress"]
    out.calc = SinglePointCalculator(out, **results)
    return out


def run_single(task: Task, store: Store) -> list[Atoms]:
    """Run a single-point task.

    Parameters
    ----------
    task : Task
        A task of kind ``"single"``.
    store : Store
        The data folder (created if needed).

    Returns
    -------
    list of ase.Atoms
        The one labelled frame.
    """
    store.prepare()
    atoms = recipes.build(list(task.recipe), root=str(store.root))
    settings = task_settings(task, store.settings)
    result = single_point(atoms, settings, txt=str(store.work / "txt" / (task.name.replace("/", "__") + ".txt")))
    return [labelled(atoms, result, task, {})]


class _Resumed(Calculator):
    """``calc``, except at the positions of ``stored`` (the last checkpointed step of a relaxation), whose
    stored DFT result is returned instead of being recomputed."""

    def __init__(self, calc, stored: Atoms):
        super().__init__()
        self.calc, self.positions = calc, stored.positions.copy()
        self.stored = {"energy": stored.info["energy_zero_smearing"], "free_energy": stored.get_potential_energy(),
                       "forces": stored.get_forces()}

    def get_property(self, name, atoms=None, allow_calculation=True):
        if atoms is not None and name in self.stored and np.array_equal(atoms.positions, self.positions):
            return np.copy(self.stored[name])
        return self.calc.get_property(name, atoms, allow_calculation)


def run_relax(task: Task, store: Store) -> list[Atoms]:
    """BFGS relaxation; every step is checkpointed and becomes a frame (the last one is ``relax_final``).

    A relaxation of positions only resumes exactly: the BFGS Hessian is rebuilt from the checkpointed
    steps, and the last one is neither recomputed nor stored twice (its stored DFT result starts the
    run). Cell relaxations restart BFGS from the last checkpointed geometry.

    Parameters
    ----------
    task : Task
        A task of kind ``"relax"``.
    store : Store
        The data folder (created if needed).

    Returns
    -------
    list of ase.Atoms
        The labelled frames of every step.
    """
    store.prepare()
    settings = task_settings(task, store.settings)
    checkpoint = store.checkpoint(task)
    done = read(checkpoint, index=":") if checkpoint.exists() else []
    atoms = done[-1].copy() if done else recipes.build(list(task.recipe), root=str(store.root))
    isolated = not np.all(atoms.pbc)
    pbc = atoms.pbc.copy()
    calc = make_calculator(atoms, settings, txt=str(store.work / "txt" / (task.name.replace("/", "__") + ".txt")))
    atoms.pbc = True  # plane waves need a periodic box; isolated systems carry their vacuum in the cell
    atoms.calc = calc
    cell_mode = task.relax.get("cell")
    target = FrechetCellFilter(atoms, constant_volume=True) if cell_mode == "constant_volume" else atoms
    frames = list(done)
    clock = [time.perf_counter()]

    def record():
        now = time.perf_counter()
        result = {"energy": atoms.get_potential_energy(force_consistent=True),
                  "energy_zero_smearing": atoms.get_potential_energy(), "forces": atoms.get_forces(),
                  "wall_time_s": now - clock[0], "kpts": kpoint_mesh(frame_atoms(), settings.kpt_density)}
        if not isolated and settings.compute_stress:
            result["stress"] = atoms.get_stress(voigt=True)
        clock[0] = now
        frame = labelled(frame_atoms(), result, task, {"relax_step": len(frames), "relax_final": False})
        frames.append(frame)
        write(checkpoint, frame, format="extxyz", append=True)

    def frame_atoms():
        copy = atoms.copy()
        copy.pbc = pbc
        copy.calc = None
        return copy

    optimizer = BFGS(target, logfile=None)
    resuming = [bool(done) and cell_mode is None]
    if resuming[0]:
        optimizer.replay_trajectory(done)
        atoms.calc = _Resumed(calc, done[-1])

    def observe():
        if resuming[0]:  # the last checkpointed step, read back: stored already
            resuming[0] = False
        else:
            record()

    optimizer.attach(observe, interval=1)
    taken = len(done) - 1 if resuming[0] else len(done)  # optimiser steps so far (the first frame is the start)
    remaining = max(task.relax["steps"] - taken, 0)
    optimizer.run(fmax=task.relax["fmax"], steps=remaining)
    frames[-1].info["relax_final"] = True
    frames[-1].info["relax_converged"] = bool(optimizer.converged())
    return frames


def measured_seconds(store: Store) -> dict[str, float]:
    """The cost of single points seen so far on this machine, with the other workers running.

    Parameters
    ----------
    store : Store
        The data folder.

    Returns
    -------
    dict of str to float
        config_type → median wall time (s) of its finished single points.
    """
    times: dict[str, list[float]] = {}
    for atoms in store.frames():
        if "relax_step" not in atoms.info and atoms.info.get("wall_time_s", 0.0) > 0:
            times.setdefault(atoms.info["config_type"], []).append(float(atoms.info["wall_time_s"]))
    return {config_type: float(np.median(t)) for config_type, t in times.items()}


def estimated_seconds(task: Task, root: str | Path, settings: DFTSettings,
                      measured: dict[str, float] | None = None) -> float:
    """One-core cost (s) of ``task``: for a single point of a config_type in ``measured``
    (:func:`measured_seconds`), the median measured so far; otherwise a rough model (calibrated on 4- and
    16-atom wurtzite at 800 eV; relaxations ×8). NaN while its inputs do not exist.

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
    if task.kind == "single" and task.config_type in (measured or {}):
        return measured[task.config_type]
    s = task_settings(task, settings)
    volume = atoms.get_volume() if atoms.cell.rank == 3 else 1000.0
    nk = np.prod(kpoint_mesh(atoms, s.kpt_density)) if np.all(atoms.pbc) else 1
    cost = 55.0 * (len(atoms) / 4) ** 1.6 * max(nk * volume / 9330.0, 0.3) * (s.ecut / 800.0) ** 1.5
    return cost * (8 if task.kind == "relax" else 1)


def pending(store: Store, tasks: list[Task] | None = None) -> list[Task]:
    """The tasks (default: the whole plan) without frames in the output yet.

    Parameters
    ----------
    store : Store
        The data folder.
    tasks : list of Task, optional
        The tasks to consider.

    Returns
    -------
    list of Task
    """
    done = store.finished()
    return [t for t in (all_tasks() if tasks is None else tasks) if t.name not in done]


def runnable(task: Task, store: Store, done: dict) -> bool:
    """Input files named by ``frame`` steps exist and relaxations named by ``relaxed`` steps are in
    ``done`` (:meth:`Store.finished`).

    Parameters
    ----------
    task : Task
        The task.
    store : Store
        The data folder.
    done : dict
        :meth:`Store.finished`.

    Returns
    -------
    bool
    """
    return all(step["index"] < recipes.n_frames(store.root / step["file"])
               for step in task.recipe if step["op"] == "frame") and \
        all(step["task"] in done for step in task.recipe if step["op"] == "relaxed")


def select(tasks: list[Task], max_priority: int | None = None, only: str | None = None) -> list[Task]:
    """The tasks of priority ≤ ``max_priority`` whose name starts with ``only`` (None: no limit).

    Parameters
    ----------
    tasks : list of Task
        The tasks.
    max_priority : int, optional
        Highest priority kept.
    only : str, optional
        Name prefix kept.

    Returns
    -------
    list of Task
    """
    return [t for t in tasks if (max_priority is None or t.priority <= max_priority)
            and (only is None or t.name.startswith(only))]


def work(store: Store, max_priority: int | None = None, only: str | None = None, log=None,
         tasks: list[Task] | None = None) -> int:
    """Worker loop: run the pending tasks of the selection in priority order until none is left.

    Parameters
    ----------
    store : Store
        The data folder (created if needed).
    max_priority, only : optional
        The selection, see :func:`select`.
    log : file-like, optional
        Where progress lines go (default: the current ``sys.stdout``).
    tasks : list of Task, optional
        The tasks (default: the whole plan).

    Returns
    -------
    int
        The number of tasks this worker completed.
    """
    log = sys.stdout if log is None else log
    store.prepare()
    selection = select(all_tasks() if tasks is None else tasks, max_priority, only)
    completed = 0
    while True:
        done = store.finished()
        todo = [t for t in pending(store, selection) if runnable(t, store, done)]
        task = next((t for t in todo if store.claim(t)), None)
        if task is None:
            return completed
        start = time.perf_counter()
        print(f"[{time.strftime('%H:%M:%S')}] start {task.name} (pid {os.getpid()})", file=log, flush=True)
        try:
            frames = run_relax(task, store) if task.kind == "relax" else run_single(task, store)
            store.append(task.dataset, frames)
            store.checkpoint(task).unlink(missing_ok=True)
            completed += 1
            left = pending(store, todo)  # recounted: other workers may have finished some
            measured = measured_seconds(store)
            eta = np.nansum([estimated_seconds(t, store.root, store.settings, measured) for t in left]) / 2
            print(f"[{time.strftime('%H:%M:%S')}] done  {task.name}: {len(frames)} frame(s), "
                  f"{time.perf_counter() - start:.0f} s; {len(left)} tasks left in this selection, "
                  f"≈{eta / 3600:.1f} h with 2 workers (rough)", file=log, flush=True)
        finally:
            store.release(task)


def dry_run(store: Store, max_priority: int | None = None, only: str | None = None, out=None) -> None:
    """Print what remains of the selection, with rough cost estimates; reads the data folder, writes nothing.

    Parameters
    ----------
    store : Store
        The data folder.
    max_priority, only : optional
        The selection, see :func:`select`.
    out : file-like, optional
        Where the listing goes (default: the current ``sys.stdout``).
    """
    out = sys.stdout if out is None else out
    done = store.finished()
    rows = pending(store, select(all_tasks(), max_priority, only))
    buffer = io.StringIO()
    total = 0.0
    measured = measured_seconds(store)
    for t in rows:
        est = estimated_seconds(t, store.root, store.settings, measured)
        total += 0 if np.isnan(est) else est
        ready = "" if runnable(t, store, done) else "  (waiting for its inputs: candidate frames or a relaxation)"
        print(f"  p{t.priority} {t.name:45s} {t.kind:6s} ~{est / 60:6.1f} min{ready}", file=buffer)
    selected = "" if max_priority is None and only is None else " in this selection"
    print(f"{len(done)} tasks finished, {len(rows)} remaining{selected}, ≈{total / 3600:.1f} CPU-h "
          f"(≈{total / 7200:.1f} h with 2 workers; measured medians per config_type where there are any, "
          "else a rough model)", file=out)
    out.write(buffer.getvalue())
