"""Molecular dynamics with any ASE calculator, with a watchdog for unphysical events.

``run_md`` integrates NVE (velocity Verlet), NVT (Bussi stochastic velocity rescaling or a Nosé–Hoover
chain) or Langevin dynamics and samples T, E_pot, E_kin, E_tot every ``interval`` steps. After every
``check_interval`` steps it checks for non-finite energies/forces/positions, atoms closer than
``min_distance``, a jump of E_pot, an NVE drift of E_tot, or a calculator that gives up (one of
:data:`CALCULATOR_FAILURES`); the first such event stops the run cleanly and is returned as an
:class:`MDEvent` ("model X failed at step N") instead of raising. Any other exception (a TypeError, an
AttributeError: a bug, not a failing model) propagates. ``run_stages`` chains runs (:class:`Stage`: a
thermostat at a fixed temperature or along a linear ramp, e.g. staged heating 1000 → 2000 → 3000 K, then
NVT) into one run with continuous step numbers, stopped by the first event of any stage. Units: fs, K,
eV, Å; friction in 1/fs.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import traceback
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import CalculatorError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixCom
from ase.io import Trajectory, write
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import NoseHooverChainNVT
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

from mliplib.neighbors import neighbor_list

try:  # ASE ≥ 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    def thermalize_momenta(atoms, temperature_K, exact_temperature=False, rng=None):
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, force_temp=exact_temperature, rng=rng)

__all__ = [
    "CALCULATOR_FAILURES",
    "ENSEMBLES",
    "MDEvent",
    "MDLog",
    "MDResult",
    "Stage",
    "energy_drift",
    "melt_and_equilibrate",
    "run_md",
    "run_stages",
    "stage_starts",
]

ENSEMBLES = ("nve", "nvt", "langevin")
THERMOSTATS = ("bussi", "nose-hoover")
#: What a calculator raises when it cannot handle a structure: ASE's CalculatorError (CalculationFailed,
#: e.g. an SCF that did not converge), NotImplementedError (PropertyNotImplementedError; EMT without
#: parameters for an element), ValueError (mliplib: overlapping atoms, NaN positions; LinAlgError) and
#: ArithmeticError (FloatingPointError, OverflowError).
CALCULATOR_FAILURES = (CalculatorError, NotImplementedError, ValueError, ArithmeticError)


@dataclasses.dataclass(frozen=True)
class MDEvent:
    """An unphysical event that stopped a run.

    Attributes
    ----------
    kind : str
        "non_finite", "min_distance", "energy_jump", "energy_drift", "max_temperature" or
        "calculator_error".
    step : int
        MD step (0 = initial structure).
    time_fs : float
        Simulation time of the event, fs.
    details : str
        A readable explanation.
    value : float
        The offending number (Å, eV/atom or K), NaN if none.
    """

    kind: str
    step: int
    time_fs: float
    details: str
    value: float = float("nan")

    def __str__(self) -> str:
        return f"{self.kind} at step {self.step} ({self.time_fs:.1f} fs): {self.details}"


@dataclasses.dataclass
class MDLog:
    """Samples of a run, every ``interval`` steps and at the last step.

    Attributes
    ----------
    step, time_fs, temperature : numpy.ndarray
        (n_samples,) MD step, time (fs) and temperature (K).
    energy_potential, energy_kinetic, energy_total : numpy.ndarray
        (n_samples,) energies of the whole system, eV.
    n_atoms : int
        Number of atoms.
    """

    step: np.ndarray
    time_fs: np.ndarray
    temperature: np.ndarray
    energy_potential: np.ndarray
    energy_kinetic: np.ndarray
    energy_total: np.ndarray
    n_atoms: int

    FIELDS = ("step", "time_fs", "temperature", "energy_potential", "energy_kinetic", "energy_total")

    @classmethod
    def empty(cls, n_atoms: int) -> MDLog:
        """A log without samples.

        Parameters
        ----------
        n_atoms : int
            Number of atoms of the system.

        Returns
        -------
        MDLog
        """
        return cls(*(np.zeros(0) for _ in cls.FIELDS), n_atoms=n_atoms)

    def as_dict(self) -> dict:
        """The fields as a dict of arrays plus ``n_atoms`` (what the artefact cache stores).

        Returns
        -------
        dict
        """
        return {k: getattr(self, k) for k in self.FIELDS} | {"n_atoms": self.n_atoms}

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def concatenate(cls, logs: list[MDLog]) -> MDLog:
        """Join consecutive runs; steps and times of later runs are offset to follow on.

        Parameters
        ----------
        logs : list of MDLog
            Logs of consecutive runs; a later run's initial sample (step 0), shared with the end of the
            previous run, is dropped.

        Returns
        -------
        MDLog
        """
        out = {k: [] for k in cls.FIELDS}
        step0 = time0 = 0.0
        for log in logs:
            skip = 1 if out["step"] and len(log) and log.step[0] == 0 else 0  # shared initial sample
            out["step"].append(log.step[skip:] + step0)
            out["time_fs"].append(log.time_fs[skip:] + time0)
            for k in cls.FIELDS[2:]:
                out[k].append(getattr(log, k)[skip:])
            if len(log):
                step0, time0 = step0 + log.step[-1], time0 + log.time_fs[-1]
        return cls(*(np.concatenate(out[k]) if out[k] else np.zeros(0) for k in cls.FIELDS),
                   n_atoms=logs[0].n_atoms if logs else 0)


@dataclasses.dataclass
class MDResult:
    """The outcome of :func:`run_md`.

    Attributes
    ----------
    atoms : ase.Atoms
        The final state (calculator attached, velocities kept; continue with it).
    log : MDLog
        The samples.
    frames : list of ase.Atoms
        Snapshots every ``interval`` steps (energy/forces in a single-point calculator, velocities
        kept) if ``keep_frames``.
    event : MDEvent or None
        The event that stopped the run.
    steps_done, steps_requested : int
        Steps run and asked for.
    wall_time_s : float
        Wall time, s.
    stages : dict
        The individual runs of :func:`melt_and_equilibrate` by name.
    """

    atoms: Atoms
    log: MDLog
    frames: list
    event: MDEvent | None
    steps_done: int
    steps_requested: int
    wall_time_s: float
    stages: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run finished without an event."""
        return self.event is None

    def summary(self, label: str = "") -> str:
        """One line: completed, or where and why the run stopped.

        Parameters
        ----------
        label : str
            Prefix (e.g. the model's name).

        Returns
        -------
        str
        """
        name = f"{label}: " if label else ""
        if self.ok:
            return f"{name}completed {self.steps_done} steps in {self.wall_time_s:.1f} s"
        return (f"{name}failed at step {self.event.step} of {self.steps_requested}: {self.event.kind} "
                f"({self.event.details})")


class _Writer:
    """Appends snapshots to an .traj (ASE Trajectory) or any ase.io text format (extxyz by default)."""

    def __init__(self, path, append: bool):
        self.path = Path(path)
        self.traj = self.handle = None
        if self.path.suffix == ".traj":
            self.traj = Trajectory(str(self.path), "a" if append else "w")
        else:
            self.handle = open(self.path, "a" if append else "w")  # noqa: SIM115 (open for the run; close() closes it)

    def write(self, atoms: Atoms) -> None:
        if self.traj is not None:
            self.traj.write(atoms)
        else:
            fmt = "extxyz" if self.path.suffix in (".xyz", ".extxyz", "") else None
            write(self.handle, atoms, format=fmt)
            self.handle.flush()

    def close(self) -> None:
        for f in (self.traj, self.handle):
            if f is not None:
                f.close()


def _snapshot(atoms: Atoms) -> Atoms:
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    return out


def _make_dynamics(atoms, ensemble, temperature_K, timestep_fs, friction, thermostat, taut_fs, rng):
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        return VelocityVerlet(atoms, dt)
    if ensemble == "langevin":
        return Langevin(atoms, dt, temperature_K=temperature_K, friction=friction / units.fs, fixcm=False, rng=rng)
    if thermostat == "bussi":
        return Bussi(atoms, dt, temperature_K=temperature_K, taut=taut_fs * units.fs, rng=rng)
    return NoseHooverChainNVT(atoms, dt, temperature_K=temperature_K, tdamp=taut_fs * units.fs)


def run_md(atoms: Atoms, calc, temperature_K: float, steps: int, timestep_fs: float = 1.0,
           ensemble: str = "nvt", thermostat: str = "bussi", friction: float = 0.01, taut_fs: float = 100.0,
           interval: int = 10, trajectory: str | Path | None = None, append: bool = False,
           keep_frames: bool = True, progress: bool = True, seed: int = 0, init_velocities: str | bool = "auto",
           fix_com: bool = True, sample_first: bool = True, min_distance: float | None = 1.2,
           max_energy_jump: float | None = 1.0, max_drift: float | None = 0.05,
           max_temperature_K: float | None = None, check_interval: int = 1,
           label: str = "") -> MDResult:
    """Run ``steps`` MD steps of a copy of ``atoms`` with ``calc``; never raises for model failures.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (not modified).
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    temperature_K : float
        Thermostat target and, for ``init_velocities``, the Maxwell–Boltzmann temperature, K.
    steps : int
        Number of MD steps.
    timestep_fs : float
        Time step, fs.
    ensemble : str
        "nve" (velocity Verlet), "nvt" (see ``thermostat``) or "langevin".
    thermostat : str
        NVT thermostat: "bussi" (stochastic velocity rescaling) or "nose-hoover" (chain).
    friction : float
        Langevin friction, 1/fs (e.g. 0.01).
    taut_fs : float
        NVT time constant, fs.
    interval : int
        Sampling, frame and trajectory period, steps.
    trajectory : str or pathlib.Path, optional
        File written as the run goes (.traj: ASE Trajectory, else extxyz).
    append : bool
        Continue an existing trajectory file.
    keep_frames : bool
        Keep the sampled frames in ``result.frames``.
    progress : bool
        tqdm bar with T and E_pot.
    seed : int
        RNG seed (velocities, thermostat noise).
    init_velocities : {"auto", True, False}
        Draw Maxwell–Boltzmann velocities: "auto" only if the atoms have none. Velocities get zero total
        momentum (and zero angular momentum for clusters).
    fix_com : bool
        Langevin runs add :class:`ase.constraints.FixCom` (ASE's advice instead of ``fixcm``).
    sample_first : bool
        Also sample the initial state (step 0).
    min_distance : float or None
        Watchdog: an interatomic distance below this, Å, stops the run.
    max_energy_jump : float or None
        Watchdog: a change of E_pot per atom between checks above this, eV/atom.
    max_drift : float or None
        Watchdog, NVE only: |E_tot − E_tot(0)| per atom above this, eV/atom.
    max_temperature_K : float or None
        Watchdog: a temperature above this, K.
    check_interval : int
        Watchdog period, steps (non-finite energy, forces or positions are always checked then).
    label : str
        Progress-bar label.

    Returns
    -------
    MDResult
        The first watchdog event, or a calculator failure (one of :data:`CALCULATOR_FAILURES`), ends the
        run and is returned in ``result.event``; None of the watchdog thresholds disables that check.
    """
    if ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {ENSEMBLES}")
    if thermostat not in THERMOSTATS:
        raise ValueError(f"unknown thermostat {thermostat!r}; choose one of {THERMOSTATS}")
    if calc is None or not hasattr(calc, "get_potential_energy"):
        raise TypeError(f"calc must be an ASE calculator, got {type(calc).__name__}")
    if int(steps) < 0 or int(interval) < 1 or int(check_interval) < 1:
        raise ValueError(f"need steps ≥ 0, interval ≥ 1 and check_interval ≥ 1 (got {steps}, {interval}, "
                         f"{check_interval})")
    for name, value in (("timestep_fs", timestep_fs), ("friction", friction), ("taut_fs", taut_fs)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if not temperature_K >= 0:
        raise ValueError(f"temperature_K must be ≥ 0, got {temperature_K}")
    if init_velocities not in ("auto", True, False):
        raise ValueError(f"init_velocities must be 'auto', True or False, got {init_velocities!r}")
    steps, interval, check_interval = int(steps), int(interval), int(check_interval)
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = calc
    n = len(atoms)
    if n == 0:
        raise ValueError("no atoms")
    periodic = bool(np.all(atoms.pbc))
    if init_velocities is True or (init_velocities == "auto" and not np.any(atoms.get_momenta())):
        thermalize_momenta(atoms, temperature_K, exact_temperature=True, rng=rng)
        Stationary(atoms)
        if not periodic and n > 2:
            ZeroRotation(atoms)
    if ensemble == "langevin" and fix_com and not any(isinstance(c, FixCom) for c in atoms.constraints):
        atoms.set_constraint(list(atoms.constraints) + [FixCom()])
    dyn = _make_dynamics(atoms, ensemble, temperature_K, timestep_fs, friction, thermostat, taut_fs, rng)

    samples = {k: [] for k in MDLog.FIELDS}
    frames, event = [], None
    writer = _Writer(trajectory, append) if trajectory is not None else None
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=label or ensemble, unit="step", leave=False)
    state = {"epot": None, "etot0": None}
    start = time.perf_counter()

    def sample(step, epot):
        ekin = atoms.get_kinetic_energy()
        values = (step, step * timestep_fs, atoms.get_temperature(), epot, ekin, epot + ekin)
        for k, v in zip(MDLog.FIELDS, values):
            samples[k].append(float(v))
        if keep_frames:
            frames.append(_snapshot(atoms))
        if writer is not None:
            writer.write(_snapshot(atoms))
        if bar is not None:
            bar.set_postfix(T=f"{values[2]:.0f} K", E=f"{epot / n:.3f} eV/at", refresh=False)

    def check(step) -> MDEvent | None:
        t = step * timestep_fs
        epot = atoms.get_potential_energy()
        forces = atoms.get_forces()
        if not (np.isfinite(epot) and np.all(np.isfinite(forces)) and np.all(np.isfinite(atoms.positions))):
            what = [name for name, ok in (("energy", np.isfinite(epot)), ("forces", np.all(np.isfinite(forces))),
                                          ("positions", np.all(np.isfinite(atoms.positions)))) if not ok]
            return MDEvent("non_finite", step, t, f"non-finite {', '.join(what)}")
        if min_distance is not None and n > 1:
            nl = neighbor_list(atoms, min_distance)
            if len(nl.i):
                d = nl.distances()
                k = int(np.argmin(d))
                i, j = int(nl.i[k]), int(nl.j[k])
                return MDEvent("min_distance", step, t,
                               f"atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are {d[k]:.3f} Å "
                               f"apart (< {min_distance} Å)", float(d[k]))
        if max_energy_jump is not None and state["epot"] is not None:
            jump = abs(epot - state["epot"]) / n
            if jump > max_energy_jump:
                return MDEvent("energy_jump", step, t, f"E_pot changed by {jump:.3f} eV/atom since the previous "
                               f"check (> {max_energy_jump} eV/atom)", jump)
        state["epot"] = epot
        etot = epot + atoms.get_kinetic_energy()
        if state["etot0"] is None:
            state["etot0"] = etot
        if ensemble == "nve" and max_drift is not None:
            drift = abs(etot - state["etot0"]) / n
            if drift > max_drift:
                return MDEvent("energy_drift", step, t, f"E_tot drifted by {drift:.4f} eV/atom (> {max_drift} "
                               f"eV/atom)", drift)
        if max_temperature_K is not None:
            temperature = atoms.get_temperature()
            if temperature > max_temperature_K:
                return MDEvent("max_temperature", step, t, f"T = {temperature:.0f} K > {max_temperature_K} K",
                               temperature)
        return None

    step = 0
    try:
        for _ in dyn.irun(steps):
            step = dyn.nsteps
            if step % check_interval == 0 or step == steps:
                event = check(step)
            if event is None and ((step % interval == 0 and (step > 0 or sample_first)) or step == steps):
                sample(step, atoms.get_potential_energy())
            if bar is not None and step > 0:
                bar.update(1)
            if event is not None:
                break
    except CALCULATOR_FAILURES as error:  # a calculator that gives up ends the run
        tb = traceback.format_exception_only(type(error), error)[-1].strip()
        event = MDEvent("calculator_error", dyn.nsteps, dyn.nsteps * timestep_fs, tb)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    if event is not None and event.kind in ("min_distance", "energy_jump", "energy_drift", "max_temperature"):
        try:  # record the state of the failure (energies are finite here)
            if not samples["step"] or samples["step"][-1] != event.step:
                sample(event.step, atoms.get_potential_energy())
        except CALCULATOR_FAILURES:  # the calculator refuses the failed state (e.g. overlapping atoms)
            pass
    log = MDLog(*(np.array(samples[k]) for k in MDLog.FIELDS), n_atoms=n)
    done = event.step if event is not None else steps
    return MDResult(atoms, log, frames, event, done, steps, time.perf_counter() - start)


def melt_and_equilibrate(atoms: Atoms, calc, T_melt: float, T_target: float, melt_steps: int,
                         equil_steps: int, timestep_fs: float = 1.0, friction: float = 0.01,
                         thermostat: str = "bussi", taut_fs: float = 100.0, interval: int = 10,
                         trajectory: str | Path | None = None, progress: bool = True, seed: int = 0,
                         **checks) -> MDResult:
    """Melt with Langevin dynamics, then equilibrate with an NVT thermostat.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure.
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    T_melt, T_target : float
        Langevin temperature of the melt and NVT target, K.
    melt_steps, equil_steps : int
        Steps of the two stages.
    timestep_fs : float
        Time step, fs.
    friction : float
        Langevin friction, 1/fs.
    thermostat : str
        "bussi" or "nose-hoover".
    taut_fs : float
        NVT time constant, fs.
    interval : int
        Sampling period, steps.
    trajectory : str or pathlib.Path, optional
        One file for both stages.
    progress : bool
        Progress bars.
    seed : int
        RNG seed of the melt (the equilibration uses ``seed + 1``).
    **checks
        Watchdog arguments of :func:`run_md`.

    Returns
    -------
    MDResult
        The joined log and frames (steps numbered continuously) and ``stages = {"melt": …,
        "equilibrate": …}``; a watchdog event in the melt stage skips the second stage.
    """
    common = dict(timestep_fs=timestep_fs, interval=interval, trajectory=trajectory, progress=progress, **checks)
    melt = run_md(atoms, calc, T_melt, melt_steps, ensemble="langevin", friction=friction, seed=seed,
                  label="melt", **common)
    stages = {"melt": melt}
    if melt.ok:
        stages["equilibrate"] = run_md(melt.atoms, calc, T_target, equil_steps, ensemble="nvt",
                                       thermostat=thermostat, taut_fs=taut_fs, seed=seed + 1, append=True,
                                       init_velocities=False, sample_first=False, label="equilibrate",
                                       **common)
    runs = list(stages.values())
    event = next((r.event for r in runs if r.event is not None), None)
    if event is not None and event is not melt.event:
        event = dataclasses.replace(event, step=event.step + melt_steps,
                                    time_fs=event.time_fs + melt_steps * timestep_fs)
    frames = [f for r in runs for f in r.frames]
    return MDResult(runs[-1].atoms, MDLog.concatenate([r.log for r in runs]), frames, event,
                    sum(r.steps_done for r in runs), melt_steps + equil_steps,
                    sum(r.wall_time_s for r in runs), stages)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of :func:`run_stages`.

    Attributes
    ----------
    name : str
        Unique within a run (the key of ``MDResult.stages``).
    steps : int
        MD steps of the stage.
    temperature_K : float or tuple of float
        Thermostat target (K), or ``(start, end)``: a linear ramp, run as a staircase of plateaus of
        ``ramp_interval`` steps, each at the ramp's temperature at the plateau's middle.
    ensemble : str
        "langevin", "nvt" or "nve" (see :func:`run_md`).
    friction : float
        Langevin friction, 1/fs (0.01: kinetic energy relaxes in ~50 fs; 0.05: a strong thermostat).
    thermostat : str
        NVT thermostat, "bussi" or "nose-hoover".
    taut_fs : float
        NVT time constant, fs.
    ramp_interval : int
        Steps per plateau of a ramp.
    """

    name: str
    steps: int
    temperature_K: float | tuple[float, float]
    ensemble: str = "langevin"
    friction: float = 0.01
    thermostat: str = "bussi"
    taut_fs: float = 100.0
    ramp_interval: int = 100

    def __post_init__(self):
        if int(self.steps) < 1 or int(self.ramp_interval) < 1:
            raise ValueError(f"stage {self.name!r}: need steps ≥ 1 and ramp_interval ≥ 1, got {self.steps} and "
                             f"{self.ramp_interval}")
        temperatures = np.atleast_1d(np.asarray(self.temperature_K, dtype=float))
        if temperatures.size not in (1, 2) or not np.all(temperatures >= 0):
            raise ValueError(f"stage {self.name!r}: temperature_K must be a temperature ≥ 0 K or a (start, end) "
                             f"ramp, got {self.temperature_K!r}")
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"stage {self.name!r}: unknown ensemble {self.ensemble!r}; choose one of {ENSEMBLES}")

    @property
    def is_ramp(self) -> bool:
        """True for a ``(start, end)`` temperature."""
        return np.ndim(self.temperature_K) == 1

    @property
    def max_temperature_K(self) -> float:
        """The highest thermostat target of the stage, K."""
        return float(np.max(self.temperature_K))

    def plateaus(self) -> list[tuple[int, float]]:
        """(steps, temperature in K) of each constant-temperature run of the stage: one for a fixed
        temperature, ``ceil(steps / ramp_interval)`` for a ramp.

        Returns
        -------
        list of tuple
        """
        if not self.is_ramp:
            return [(int(self.steps), float(self.temperature_K))]
        start, end = (float(t) for t in self.temperature_K)
        edges = list(range(0, int(self.steps), int(self.ramp_interval))) + [int(self.steps)]
        return [(b - a, start + (end - start) * 0.5 * (a + b) / self.steps) for a, b in itertools.pairwise(edges)]


def stage_starts(stages) -> dict[str, int]:
    """The first step of each stage of a :func:`run_stages` run (continuous numbering; stage k covers the
    steps after ``start[k]`` up to and including ``start[k] + steps[k]``).

    Parameters
    ----------
    stages : sequence of Stage
        The stages, in order.

    Returns
    -------
    dict of str to int
    """
    starts, step = {}, 0
    for stage in stages:
        starts[stage.name] = step
        step += int(stage.steps)
    return starts


def _joined(runs: list[MDResult], offset: int, timestep_fs: float) -> MDResult:
    """Consecutive runs as one: log and frames joined, the first event with its step counted from the start
    of the first run plus ``offset``."""
    event, before = None, offset
    for run in runs:
        if run.event is not None:
            event = dataclasses.replace(run.event, step=run.event.step + before,
                                        time_fs=(run.event.step + before) * timestep_fs)
            break
        before += run.steps_requested
    log = MDLog.concatenate([r.log for r in runs])
    log.step, log.time_fs = log.step + offset, log.time_fs + offset * timestep_fs
    return MDResult(runs[-1].atoms, log, [f for r in runs for f in r.frames], event,
                    sum(r.steps_done for r in runs), sum(r.steps_requested for r in runs),
                    sum(r.wall_time_s for r in runs))


def run_stages(atoms: Atoms, calc, stages, timestep_fs: float = 1.0, interval: int = 10,
               keep_frames: bool = True, progress: bool = False, seed: int = 0, **checks) -> MDResult:
    """Run ``stages`` one after the other on a copy of ``atoms``, velocities carried over; the first
    watchdog event of any stage ends the run (never raises for model failures).

    The first run draws Maxwell–Boltzmann velocities at its temperature if ``atoms`` has none; each
    later run (a stage, or a plateau of a ramp) continues from the previous one with seed ``seed + k``
    for its thermostat noise. Plateau lengths should be multiples of ``interval`` so that the samples
    fall on a regular grid.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (not modified).
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    stages : sequence of Stage
        The stages (unique names).
    timestep_fs : float
        Time step, fs.
    interval : int
        Sampling period, steps.
    keep_frames : bool
        Keep the sampled frames (see :func:`run_md`).
    progress : bool
        Progress bars.
    seed : int
        Seed of the velocities and of the first run's noise.
    **checks
        Watchdog arguments of :func:`run_md` (``min_distance``, ``max_energy_jump``, ``max_temperature_K``,
        ``check_interval``, ...), the same for every stage.

    Returns
    -------
    MDResult
        Log and frames of the whole run (steps numbered continuously, the initial state sampled once),
        the event with its step in that numbering, and ``stages``: {name: MDResult of that stage} for the
        stages that ran (use :func:`stage_starts` to place them).
    """
    stages = list(stages)
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise TypeError("stages must be a non-empty sequence of mliplib.md.Stage")
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    current, count, results = atoms, 0, {}
    for stage, offset in zip(stages, stage_starts(stages).values()):
        runs = []
        for steps, temperature in stage.plateaus():
            first = count == 0
            runs.append(run_md(current, calc, temperature, steps, timestep_fs=timestep_fs, ensemble=stage.ensemble,
                               thermostat=stage.thermostat, friction=stage.friction, taut_fs=stage.taut_fs,
                               interval=interval, keep_frames=keep_frames, progress=progress, seed=seed + count,
                               init_velocities="auto" if first else False, sample_first=first,
                               label=stage.name, **checks))
            current, count = runs[-1].atoms, count + 1
            if runs[-1].event is not None:
                break
        results[stage.name] = _joined(runs, offset, timestep_fs)
        if results[stage.name].event is not None:
            break
    runs = list(results.values())
    log = MDLog(*(np.concatenate([getattr(r.log, k) for r in runs]) for k in MDLog.FIELDS), n_atoms=len(atoms))
    return MDResult(current, log, [f for r in runs for f in r.frames], next((r.event for r in runs if r.event), None),
                    sum(r.steps_done for r in runs), sum(int(s.steps) for s in stages),
                    sum(r.wall_time_s for r in runs), results)


def energy_drift(log: MDLog | MDResult, n_atoms: int | None = None) -> float:
    """Linear drift of E_tot (least-squares slope over the sampled log), for NVE checks.

    Parameters
    ----------
    log : MDLog, MDResult or dict
        The samples (a dict as :meth:`MDLog.as_dict` gives).
    n_atoms : int, optional
        Overrides the log's number of atoms.

    Returns
    -------
    float
        Drift, meV/atom/ps.
    """
    if isinstance(log, MDResult):
        log = log.log
    if isinstance(log, dict):
        log = MDLog(**{k: np.asarray(log[k]) for k in MDLog.FIELDS}, n_atoms=int(log.get("n_atoms", 0)))
    n = n_atoms or log.n_atoms
    if len(log) < 2:
        raise ValueError("need at least 2 samples to measure a drift")
    if not n > 0:
        raise ValueError("n_atoms unknown: pass n_atoms")
    slope = np.polyfit(log.time_fs * 1e-3, log.energy_total, 1)[0]  # eV/ps
    return float(slope / n * 1e3)
