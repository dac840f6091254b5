"""A resumable ab-initio MD run: staged Langevin / Bussi (CSVR) NVT and NVE segments, one frame per step.

A run lives in one directory (``<root>/aimd/<name>/``):

``protocol.json``
    :class:`RunProtocol` (DFT setting, composition, density, temperature, time step, seed, stages).
``trajectory.extxyz``
    Every step (step 0 = the starting packing): positions (unwrapped), momenta, forces (raw DFT, eV/Å),
    free energy (eV), stress (eV/Å³, Voigt, ASE sign) and ``info``: step, time_fs, stage, ensemble,
    temperature_K (instantaneous), energy_kinetic, thermostat_work (eV, cumulative energy the Bussi
    thermostat added; E_pot + E_kin − thermostat_work is conserved), wall_time_s, scf_iterations,
    start (cold/warm), config_type.
``checkpoint.npz``
    The state after the last completed step: positions, momenta, the forces the integrator uses,
    the RNG state (JSON), the Bussi thermostat work, the trajectory's size in bytes, the per-step
    wall times. Written atomically after the frame was appended and fsynced.
``run.log``, ``run.pid``, ``run.lock``
    Progress (one line per step, with ETA), the running process, an exclusive lock (one process per
    run). A file ``STOP`` in the directory ends the run cleanly after the current step.

On restart the trajectory is cut back to the size recorded in the checkpoint (a frame appended after
the last checkpoint, or cut by a kill, is dropped and recomputed), the integrator continues from the
checkpoint's positions, momenta and forces with the same random stream, and the first DFT step is cold.
With a deterministic calculator a killed and resumed run gives the same trajectory as an uninterrupted
one; with DFT the restarted SCF differs from a warm one within its convergence criteria.
Units: fs, K, g/cm³, eV, Å.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixCom
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from mliplib.md import thermalize_momenta
from zno_book.structures import ionic_packing

from .ledger import charge
from .settings import AIMDSetting, DFTStepper, StepResult, engine_version
from .storage import append_frame, read_json, truncate, write_json, write_npz

__all__ = [
    "ENSEMBLES",
    "RunLock",
    "RunProtocol",
    "Stage",
    "StepEvaluator",
    "initial_state",
    "liquid_protocol",
    "run",
    "status",
]

ENSEMBLES = ("langevin", "bussi", "nve")


@dataclasses.dataclass(frozen=True)
class Stage:
    """A segment of the run.

    Parameters
    ----------
    name : str
        e.g. "heat", "equilibrate", "nve", "production".
    ensemble : {"langevin", "bussi", "nve"}
        Langevin (friction ``friction_per_fs``), Bussi stochastic velocity rescaling (time constant
        ``taut_fs``; samples the canonical ensemble) or velocity Verlet (NVE).
    steps : int
        Number of MD steps.
    friction_per_fs, taut_fs : float or None
        Thermostat parameter of the ensemble (1/fs, fs).
    """

    name: str
    ensemble: str
    steps: int
    friction_per_fs: float | None = None
    taut_fs: float | None = None

    def __post_init__(self):
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"stage {self.name}: ensemble must be one of {ENSEMBLES}, got {self.ensemble!r}")
        if self.steps < 1:
            raise ValueError(f"stage {self.name}: steps must be ≥ 1")
        if self.ensemble == "langevin" and not (self.friction_per_fs and self.friction_per_fs > 0):
            raise ValueError(f"stage {self.name}: Langevin needs friction_per_fs > 0")
        if self.ensemble == "bussi" and not (self.taut_fs and self.taut_fs > 0):
            raise ValueError(f"stage {self.name}: Bussi needs taut_fs > 0")


@dataclasses.dataclass(frozen=True)
class RunProtocol:
    """Everything that defines a run (recorded in ``protocol.json``; a resumed run must match it).

    Parameters
    ----------
    setting : AIMDSetting
        The DFT setting.
    n_formula : int
        ZnO units (2·n_formula atoms).
    density : float
        Mass density of the cell (g/cm³).
    temperature : float
        Thermostat target and temperature of the initial velocities (K).
    timestep_fs : float
        MD time step (fs).
    seed : int
        Seed of the packing, the initial velocities and the thermostat noise.
    stages : tuple of Stage
        In order.
    config_type : str
        Written into every frame; must contain "aimd".
    """

    setting: AIMDSetting
    n_formula: int
    density: float
    temperature: float
    timestep_fs: float
    seed: int
    stages: tuple
    config_type: str = "aimd_liquid"

    def __post_init__(self):
        if self.n_formula < 1 or not self.density > 0 or not self.temperature > 0 or not self.timestep_fs > 0:
            raise ValueError("need n_formula ≥ 1, density > 0, temperature > 0 and timestep_fs > 0")
        if "aimd" not in self.config_type:
            raise ValueError("config_type must contain 'aimd'")

    @property
    def total_steps(self) -> int:
        """MD steps of all stages (step 0, the start, not counted)."""
        return sum(s.steps for s in self.stages)

    def stage_of(self, step: int) -> Stage:
        """The stage that produces MD step ``step``.

        Parameters
        ----------
        step : int
            1 … :attr:`total_steps`.

        Returns
        -------
        Stage

        Raises
        ------
        ValueError
            If ``step`` is outside 1 … :attr:`total_steps`.
        """
        if not 1 <= step <= self.total_steps:
            raise ValueError(f"step {step} outside 1…{self.total_steps}")
        end = 0
        for stage in self.stages:
            end += stage.steps
            if step <= end:
                return stage
        raise AssertionError("unreachable")

    def as_dict(self) -> dict:
        """JSON-ready form (:meth:`from_dict` inverts it)."""
        out = dataclasses.asdict(self)
        out["setting"] = self.setting.as_dict()
        out["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> RunProtocol:
        """The protocol written by :meth:`as_dict`.

        Parameters
        ----------
        data : dict
            The fields, ``setting`` and ``stages`` as dicts.

        Returns
        -------
        RunProtocol
        """
        data = dict(data)
        data["setting"] = AIMDSetting.from_dict(data["setting"])
        data["stages"] = tuple(Stage(**s) for s in data["stages"])
        return cls(**data)


class StepEvaluator:
    """Adapter between the integrator and a calculator: the timed result of each force call.

    For DFT it also reports cold/warm start and SCF iterations. ``stepper`` is a
    :class:`~.settings.DFTStepper`, or None with ``calc`` any ASE calculator (tests, model MD).

    Parameters
    ----------
    atoms : ase.Atoms
        Cell and composition of the run (for the DFT stepper).
    setting : AIMDSetting, optional
        DFT with this setting (its ``compute_stress`` decides the stress).
    calc : ase.calculators.calculator.Calculator, optional
        Any ASE calculator instead (stress always computed). Give exactly one of ``setting`` and ``calc``.
    txt : str, optional
        GPAW's log file (DFT only; None: no log).

    Raises
    ------
    ValueError
        If both or neither of ``setting`` and ``calc`` are given.
    """

    def __init__(self, atoms: Atoms, setting: AIMDSetting | None = None, calc=None, txt: str | None = None):
        if (setting is None) == (calc is None):
            raise ValueError("give either a DFT setting or a calculator")
        self.stepper = DFTStepper(atoms, setting, txt=txt) if setting is not None else None
        self.calc = calc
        self.compute_stress = setting.compute_stress if setting is not None else True
        self.label = f"dft:{setting.name}" if setting is not None else f"ase:{type(calc).__name__}"
        self.calls = 0

    def attach(self, atoms: Atoms) -> None:
        """Make the calculator the one of ``atoms``.

        Parameters
        ----------
        atoms : ase.Atoms
            The run's atoms (modified in place; with DFT, ``pbc`` set to True).

        Raises
        ------
        ValueError
            With DFT, if the cell or the atomic numbers differ from the construction's.
        """
        if self.stepper is not None:
            self.stepper.attach(atoms)
        else:
            atoms.calc = self.calc

    def collect(self, atoms: Atoms, elapsed_s: float, cpu_s: float) -> StepResult:
        """The result at ``atoms`` just computed, with the stress added when it is wanted.

        For an ASE calculator: ``energy_zero_smearing`` = ``energy``, ``scf_iterations`` = 0.

        Parameters
        ----------
        atoms : ase.Atoms
            The atoms whose calculator has just computed energy and forces.
        elapsed_s : float
            Wall time of that computation (s).
        cpu_s : float
            CPU time of this process during it (s).

        Returns
        -------
        StepResult
        """
        if self.stepper is not None:
            return self.stepper.collect(atoms, elapsed_s, cpu_s)
        t0, c0 = time.perf_counter(), time.process_time()
        sigma = np.array(atoms.get_stress(voigt=True)) if self.compute_stress else None
        stress_time, stress_cpu = time.perf_counter() - t0, time.process_time() - c0
        energy = float(atoms.get_potential_energy())
        result = StepResult(energy=energy, energy_zero_smearing=energy,
                            forces=np.array(atoms.get_forces(apply_constraint=False)), stress=sigma,
                            start="cold" if self.calls == 0 else "warm", scf_iterations=0,
                            wall_time_s=elapsed_s + stress_time, stress_time_s=stress_time,
                            cpu_time_s=cpu_s + stress_cpu)
        self.calls += 1
        return result


def liquid_protocol(setting: AIMDSetting, density: float, temperature: float = 3000.0, timestep_fs: float = 2.0,
                    n_formula: int = 18, seed: int = 19, production_ps: float = 2.0) -> RunProtocol:
    """The issue's run protocol for liquid ZnO.

    From a random packing, 0.1 ps Langevin (friction 0.01/fs) and 0.4 ps Bussi (τ = 50 fs)
    equilibration (0.5 ps), 0.2 ps NVE (energy conservation of setting and time step), then
    ``production_ps`` of Bussi NVT (τ = 100 fs). Stage lengths are rounded to whole steps.

    Parameters
    ----------
    setting : AIMDSetting
        The DFT setting.
    density : float
        Mass density of the cell (g/cm³).
    temperature : float
        Thermostat target and temperature of the initial velocities (K).
    timestep_fs : float
        MD time step (fs).
    n_formula : int
        ZnO units (2·n_formula atoms).
    seed : int
        Seed of packing, velocities and thermostat noise.
    production_ps : float
        Length of the production stage (ps).

    Returns
    -------
    RunProtocol
        Stages "heat", "equilibrate", "nve", "production".
    """
    def steps(ps: float) -> int:
        return round(ps * 1000.0 / timestep_fs)
    stages = (Stage("heat", "langevin", steps(0.1), friction_per_fs=0.01),
              Stage("equilibrate", "bussi", steps(0.4), taut_fs=50.0),
              Stage("nve", "nve", steps(0.2)),
              Stage("production", "bussi", steps(production_ps), taut_fs=100.0))
    return RunProtocol(setting=setting, n_formula=n_formula, density=density, temperature=temperature,
                       timestep_fs=timestep_fs, seed=seed, stages=stages)


def initial_state(protocol: RunProtocol, rng: np.random.Generator) -> Atoms:
    """The start of a run: a random (ZnO)_n packing with Maxwell–Boltzmann velocities.

    The packing has the protocol's density and minimum distances (:func:`zno_book.structures.ionic_packing`,
    seed = protocol.seed); velocities at the protocol's temperature from ``rng``, zero total momentum,
    centre of mass fixed.

    Parameters
    ----------
    protocol : RunProtocol
        Composition, density, temperature and seed.
    rng : numpy.random.Generator
        Draws the velocities (the run's random stream).

    Returns
    -------
    ase.Atoms
        2·n_formula atoms with momenta and a ``FixCom`` constraint, no calculator.
    """
    atoms = ionic_packing(protocol.n_formula, protocol.density, seed=protocol.seed)
    thermalize_momenta(atoms, temperature_K=protocol.temperature, rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    return atoms


def _dynamics(atoms: Atoms, stage: Stage, protocol: RunProtocol, rng: np.random.Generator, work: float):
    dt = protocol.timestep_fs * units.fs
    if stage.ensemble == "langevin":
        return Langevin(atoms, dt, temperature_K=protocol.temperature,
                        friction=stage.friction_per_fs / units.fs, fixcm=False, rng=rng)
    if stage.ensemble == "bussi":
        dyn = Bussi(atoms, dt, temperature_K=protocol.temperature, taut=stage.taut_fs * units.fs, rng=rng)
        dyn.transferred_energy = work
        return dyn
    return VelocityVerlet(atoms, dt)


def _frame(atoms: Atoms, result: StepResult, protocol: RunProtocol, step: int, stage: str, ensemble: str,
           work: float, calculator: str) -> Atoms:
    """The stored frame: raw calculator results plus the step's metadata (``calculator``: what computed
    them, "dft:<setting>" or "ase:<class>")."""
    frame = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True, momenta=atoms.get_momenta())
    results = {"energy": result.energy, "free_energy": result.energy, "forces": result.forces}
    if result.stress is not None:
        results["stress"] = result.stress
    frame.calc = SinglePointCalculator(frame, **results)
    kinetic = float(atoms.get_kinetic_energy())
    frame.info.update({
        "step": step, "time_fs": step * protocol.timestep_fs, "stage": stage, "ensemble": ensemble,
        "temperature_K": float(atoms.get_temperature()), "energy_kinetic": kinetic,
        "thermostat_work": float(work), "energy_zero_smearing": result.energy_zero_smearing,
        "wall_time_s": round(result.wall_time_s, 3), "cpu_time_s": round(result.cpu_time_s, 3),
        "scf_iterations": result.scf_iterations,
        "start": result.start, "config_type": protocol.config_type, "density_g_cm3": protocol.density,
        "temperature_target_K": protocol.temperature, "calculator": calculator,
    })
    return frame


@dataclasses.dataclass
class _State:
    step: int
    numbers: np.ndarray
    cell: np.ndarray
    positions: np.ndarray
    momenta: np.ndarray
    forces: np.ndarray  # as the integrator sees them (constraint applied)
    rng_state: dict
    work: float
    trajectory_bytes: int
    wall_times: list
    cpu_times: list

    def save(self, path: Path) -> None:
        meta = {"step": self.step, "rng_state": self.rng_state, "work": self.work,
                "trajectory_bytes": self.trajectory_bytes, "wall_times": self.wall_times,
                "cpu_times": self.cpu_times}
        write_npz(path, numbers=self.numbers, cell=self.cell, positions=self.positions, momenta=self.momenta,
                  forces=self.forces, meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: Path) -> _State:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            return cls(step=meta["step"], numbers=z["numbers"], cell=z["cell"], positions=z["positions"],
                       momenta=z["momenta"], forces=z["forces"],
                       rng_state=meta["rng_state"], work=meta["work"],
                       trajectory_bytes=meta["trajectory_bytes"], wall_times=meta["wall_times"],
                       cpu_times=meta["cpu_times"])


class RunLock:
    """Exclusive lock of a run directory for the life of a process (fcntl; released on exit or kill).

    Entering writes ``run.pid``; it raises ``RuntimeError`` if another process holds the lock.

    Parameters
    ----------
    run_dir : Path
        The run directory (exists); the lock file is ``run_dir / "run.lock"``.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / "run.lock"

    def __enter__(self):
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise RuntimeError(f"{self.path.parent} is being run by another process "
                               f"(pid file: {_read_pid(self.path.parent)})") from None
        (self.path.parent / "run.pid").write_text(f"{os.getpid()}\n")
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _read_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / "run.pid").read_text())
    except (OSError, ValueError):
        return None


def _check_protocol(run_dir: Path, protocol: RunProtocol) -> None:
    path = run_dir / "protocol.json"
    if path.exists():
        stored = RunProtocol.from_dict(read_json(path)["protocol"])
        if stored != protocol:
            raise ValueError(f"{path} holds a different protocol; use another directory or the stored one "
                             f"(stored: {stored}, given: {protocol})")
    else:
        write_json(path, {"protocol": protocol.as_dict(), "engine": engine_version(),
                          "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def _eta(state: _State, protocol: RunProtocol, window: int = 20) -> str:
    recent = state.wall_times[-window:]
    if not recent:
        return "unknown"
    seconds = float(np.mean(recent)) * (protocol.total_steps - state.step)
    return f"{seconds / 3600:.1f} h"


def run(run_dir: Path, protocol: RunProtocol, calc=None, max_steps: int | None = None,
        log: Callable[[str], None] = print, ledger_dir: Path | None = None) -> int:
    """Run (or resume) ``protocol`` in ``run_dir``, one frame and one checkpoint per MD step.

    Stops when the run is complete, ``max_steps`` steps were done by this call, or a file ``STOP``
    appears in ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        The run directory (created; see the module docstring for its files).
    protocol : RunProtocol
        The run; must equal the one in ``run_dir/protocol.json`` if that exists.
    calc : ASE calculator or None
        None: DFT with ``protocol.setting`` (every evaluation charged to the ledger in
        ``ledger_dir``, default ``run_dir.parent``); otherwise this calculator (tests, models).
    max_steps : int, optional
        MD steps this call may do (None: to the end).
    log : callable
        Called with one line of progress (str) per step.
    ledger_dir : str or Path, optional
        Folder of the DFT ledger (default ``run_dir.parent``).

    Returns
    -------
    int
        MD steps completed in ``run_dir`` so far, earlier calls included.

    Raises
    ------
    RuntimeError
        If another process runs the directory, or the trajectory is shorter than the checkpoint records.
    ValueError
        If ``run_dir`` holds a different protocol.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger_dir = Path(ledger_dir) if ledger_dir is not None else run_dir.parent
    traj, ckpt = run_dir / "trajectory.extxyz", run_dir / "checkpoint.npz"
    with RunLock(run_dir):
        _check_protocol(run_dir, protocol)
        rng = np.random.default_rng(protocol.seed)
        if ckpt.exists():
            state = _State.load(ckpt)
            if truncate(traj, state.trajectory_bytes):
                log(f"dropped a frame written after the last checkpoint (step {state.step})")
            rng.bit_generator.state = state.rng_state
            atoms = Atoms(state.numbers, state.positions, cell=state.cell, pbc=True, momenta=state.momenta)
            atoms.set_constraint(FixCom())
            log(f"resuming after step {state.step} of {protocol.total_steps} (pid {os.getpid()})")
        else:
            state = None
            atoms = initial_state(protocol, rng)
        evaluator = StepEvaluator(atoms, setting=None if calc is not None else protocol.setting, calc=calc)
        evaluator.attach(atoms)
        if state is None:
            if traj.exists():
                truncate(traj, 0)
            start, cpu = time.perf_counter(), time.process_time()
            atoms.get_forces()
            result = evaluator.collect(atoms, time.perf_counter() - start, time.process_time() - cpu)
            _charge(calc, ledger_dir, "step 0", result)
            size = append_frame(traj, _frame(atoms, result, protocol, 0, "start", "none", 0.0, evaluator.label))
            state = _State(0, atoms.numbers.copy(), atoms.cell.array.copy(), atoms.positions.copy(),
                           atoms.get_momenta(), atoms.get_forces(md=True), rng.bit_generator.state, 0.0, size,
                           [result.wall_time_s], [result.cpu_time_s])
            state.save(ckpt)
            log(f"step 0 (start, {len(atoms)} atoms, {protocol.density} g/cm³): E = {result.energy:.4f} eV, "
                f"{result.wall_time_s:.1f} s ({result.start}, {result.scf_iterations} SCF iterations)")
        done_here, dyn, dyn_stage = 0, None, None
        while state.step < protocol.total_steps:
            if (run_dir / "STOP").exists():
                log(f"STOP file found: stopping after step {state.step}")
                break
            if max_steps is not None and done_here >= max_steps:
                break
            step = state.step + 1
            stage = protocol.stage_of(step)
            if stage is not dyn_stage:
                dyn, dyn_stage = _dynamics(atoms, stage, protocol, rng, state.work), stage
            start, cpu = time.perf_counter(), time.process_time()
            forces = dyn.step(forces=state.forces)
            result = evaluator.collect(atoms, time.perf_counter() - start, time.process_time() - cpu)
            work = float(dyn.transferred_energy) if stage.ensemble == "bussi" else state.work
            _charge(calc, ledger_dir, f"step {step}", result)
            size = append_frame(traj, _frame(atoms, result, protocol, step, stage.name, stage.ensemble, work,
                                             evaluator.label))
            state = _State(step, state.numbers, state.cell, atoms.positions.copy(), atoms.get_momenta(),
                           np.array(forces), rng.bit_generator.state, work, size,
                           [*state.wall_times, result.wall_time_s], [*state.cpu_times, result.cpu_time_s])
            state.save(ckpt)
            done_here += 1
            log(f"step {step}/{protocol.total_steps} {stage.name} ({stage.ensemble}) t = "
                f"{step * protocol.timestep_fs:.0f} fs: T = {atoms.get_temperature():.0f} K, "
                f"E_pot = {result.energy:.4f} eV, E_pot+E_kin-W = "
                f"{result.energy + atoms.get_kinetic_energy() - work:.4f} eV, {result.wall_time_s:.1f} s "
                f"({result.start}, {result.scf_iterations} SCF it.), ETA {_eta(state, protocol)}")
        if state.step >= protocol.total_steps:
            log(f"run complete: {state.step} steps")
        return state.step


def _charge(calc, ledger_dir: Path, label: str, result: StepResult) -> None:
    if calc is None:
        charge(ledger_dir, "run", label, result.wall_time_s, result.cpu_time_s)


def status(run_dir: Path) -> dict:
    """Progress of the run in ``run_dir``: steps, simulated time, cost per step, ETA, its process.

    Parameters
    ----------
    run_dir : str or Path
        A run directory with ``protocol.json``.

    Returns
    -------
    dict
        ``steps_done``, ``steps_total``, ``simulated_fs``, ``stage``, mean wall and CPU time per step
        (s; step 0 excluded) and mean wall time of the last 20 steps, ``eta_h`` (from the last 20),
        one-core CPU and wall hours so far, ``pid`` and ``running`` (whether that process is alive and
        runs ``zno_book.aimd``).

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` has no ``protocol.json``.
    """
    run_dir = Path(run_dir)
    protocol = RunProtocol.from_dict(read_json(run_dir / "protocol.json")["protocol"])
    ckpt = run_dir / "checkpoint.npz"
    state = _State.load(ckpt) if ckpt.exists() else None
    pid = _read_pid(run_dir)
    alive = pid is not None and _alive(pid)
    walls = state.wall_times[1:] if state else []
    cpus = state.cpu_times[1:] if state else []
    recent = float(np.mean(walls[-20:])) if walls else None
    steps = state.step if state else 0
    return {
        "run_dir": str(run_dir), "steps_done": steps, "steps_total": protocol.total_steps,
        "simulated_fs": steps * protocol.timestep_fs,
        "stage": protocol.stage_of(steps).name if steps else "start",
        "mean_wall_s_per_step": float(np.mean(walls)) if walls else None,
        "mean_cpu_s_per_step": float(np.mean(cpus)) if cpus else None,
        "recent_wall_s_per_step": recent,
        "eta_h": recent * (protocol.total_steps - steps) / 3600 if recent else None,
        "cpu_hours_so_far": float(np.sum(state.cpu_times)) / 3600 if state else 0.0,
        "wall_hours_so_far": float(np.sum(state.wall_times)) / 3600 if state else 0.0,
        "pid": pid, "running": alive,
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        return "zno_book.aimd" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return True
