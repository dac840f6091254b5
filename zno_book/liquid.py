"""Liquid ZnO with a potential: melt-and-equilibrate MD at the reference state, cached trajectories, and
the frames handed to DFT ("the honest test").

One protocol (:class:`LiquidProtocol`) defines a run: a random (ZnO)_n packing at the reference density
with physical closest distances (:func:`~zno_book.structures.ionic_packing`), Langevin dynamics at the
reference temperature to thermalise it, then Bussi NVT (equilibration, then production), all with the watchdog of
:func:`mliplib.md.run_md` (atoms closer than ``min_distance``, jumps of E_pot, runaway temperature), so a
model that fails is reported (``LiquidRun.event``) instead of crashing. :func:`run_liquid` runs it with
any ASE calculator; :func:`liquid_trajectory` runs it with a shipped model through the versioned
artefact cache (key: model file checksum + every protocol parameter). :func:`pick_candidates` chooses
well-separated production frames for DFT single points.

A protocol that tests the liquid (issue 17): :class:`StagedLiquidProtocol` heats the same random packing in
stages (1000 → 2000 K for a 3000 K target) with a strong Langevin thermostat, settles it at the target,
then runs Bussi NVT there, so the melt never overshoots the target and a collapse, if any, happens in
the liquid. :func:`run_staged_liquid` runs it, :func:`staged_liquid_metrics` measures a run: the
survival time in the target part, the temperature trace in blocks, the pressure (virial + kinetic)
with a block error and, for runs that live, the diffusion coefficients of Zn and O, g(r) and the Zn–O
coordination. Units: K, g/cm³, fs, eV, Å, GPa.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
from ase import Atoms, units

from mliplib.md import (
    MDEvent,
    MDLog,
    MDResult,
    Stage,
    melt_and_equilibrate,
    run_stages,
    stage_starts,
)
from mliplib.properties.structure import coordination_numbers, rdf, shortest_distance
from mliplib.properties.transport import diffusion_coefficient, unwrap
from mliplib.statistics import block_average
from zno_book import zoo
from zno_book.artefacts import load_artefact, store_artefact
from zno_book.constants import (
    LIQUID_DENSITY,
    LIQUID_FORMULA_UNITS,
    LIQUID_TEMPERATURE,
    PACKING_DISTANCES,
)
from zno_book.structures import ionic_packing

__all__ = [
    "LARGE_CELL",
    "PACKING_DISTANCES",
    "PROTOCOL_VERSION",
    "REPEAT_SEEDS",
    "SMALL_CELL",
    "LiquidProtocol",
    "LiquidRun",
    "StagedLiquidProtocol",
    "ionic_packing",
    "liquid_artefact_name",
    "liquid_trajectory",
    "pick_candidates",
    "repeat_protocol",
    "run_liquid",
    "run_staged_liquid",
    "staged_liquid_metrics",
]

#: bumped when the meaning of a protocol changes (part of every cache key)
PROTOCOL_VERSION = 1
STAGES = ("melt", "equilibrate", "production")
@dataclasses.dataclass(frozen=True)
class LiquidProtocol:
    """Every parameter of a liquid run (all enter the cache key).

    n_formula: ZnO units (36 atoms for 18); density: g/cm³; temperature: K (Langevin and NVT target);
    melt_steps: Langevin steps (friction in fs⁻¹) from the random packing; equil_steps, production_steps:
    Bussi NVT steps (time constant taut_fs) discarded / analysed; timestep_fs; interval: log sampling
    period (steps); frame_interval: stored-frame period (steps, a multiple of interval); seed: packing,
    velocities and thermostat noise; min_distance (Å), max_energy_jump (eV/atom per step),
    max_temperature_K: the watchdog.
    """

    n_formula: int = LIQUID_FORMULA_UNITS
    density: float = LIQUID_DENSITY
    temperature: float = LIQUID_TEMPERATURE
    melt_steps: int = 1000
    equil_steps: int = 1000
    production_steps: int = 5000
    timestep_fs: float = 1.0
    friction: float = 0.01
    taut_fs: float = 100.0
    interval: int = 10
    frame_interval: int = 20
    seed: int = 0
    min_distance: float = 1.2
    max_energy_jump: float = 1.0
    max_temperature_K: float = 9000.0

    def __post_init__(self):
        if self.n_formula < 1 or not self.density > 0 or not self.temperature > 0:
            raise ValueError(f"need n_formula ≥ 1, density > 0 g/cm³ and temperature > 0 K, got "
                             f"{self.n_formula}, {self.density}, {self.temperature}")
        if min(self.melt_steps, self.equil_steps, self.production_steps) < 0:
            raise ValueError("step counts must be ≥ 0")
        if self.interval < 1 or self.frame_interval % self.interval:
            raise ValueError(f"frame_interval ({self.frame_interval}) must be a multiple of interval "
                             f"({self.interval} ≥ 1)")

    @property
    def n_atoms(self) -> int:
        """Atoms in the cell (2 per ZnO)."""
        return 2 * self.n_formula

    @property
    def total_steps(self) -> int:
        """MD steps of the whole run."""
        return self.melt_steps + self.equil_steps + self.production_steps

    def as_dict(self) -> dict:
        """Every parameter, as the cache key records it.

        Returns
        -------
        dict
        """
        return dataclasses.asdict(self)

    def stage_of(self, step: int) -> str:
        """The stage a step belongs to.

        Parameters
        ----------
        step : int
            Continuous MD step number.

        Returns
        -------
        str
            "melt", "equilibrate" or "production".
        """
        if step <= self.melt_steps:
            return "melt"
        return "equilibrate" if step <= self.melt_steps + self.equil_steps else "production"


@dataclasses.dataclass
class LiquidRun:
    """frames: stored snapshots (positions and cell; info step, time_fs, stage, temperature_K,
    energy_potential_eV) every ``frame_interval`` steps (step 0 is the starting packing), and
    the last state before an event; log: :class:`~mliplib.md.MDLog` of the whole run; event: None or the
    :class:`~mliplib.md.MDEvent` that stopped it; wall_time_s; protocol."""

    frames: list
    log: MDLog
    event: MDEvent | None
    wall_time_s: float
    protocol: LiquidProtocol

    @property
    def ok(self) -> bool:
        """True when the run completed without a watchdog event."""
        return self.event is None

    @property
    def production(self) -> list:
        """The stored production frames (empty if the run stopped before production)."""
        return [f for f in self.frames if f.info["stage"] == "production"]

    @property
    def liquid_frames(self) -> list:
        """The production frames stored before any event (the ones to analyse: the state at the event
        itself is excluded)."""
        return [f for f in self.production if self.event is None or f.info["step"] < self.event.step]

    @property
    def steps_done(self) -> int:
        """MD steps run (up to the event, if any)."""
        return int(self.event.step) if self.event is not None else self.protocol.total_steps

    def summary(self, label: str = "") -> str:
        """One line: size, state, and how the run ended.

        Parameters
        ----------
        label : str
            Prefix (e.g. the model's name).

        Returns
        -------
        str
        """
        name = f"{label}: " if label else ""
        p = self.protocol
        head = f"{name}{p.n_atoms} atoms, {p.temperature:.0f} K, {p.density} g/cm³"
        if self.ok:
            return f"{head}: {p.total_steps} steps completed ({len(self.production)} production frames stored)"
        return (f"{head}: STOPPED at step {self.event.step} of {p.total_steps} "
                f"({p.stage_of(self.event.step)}): {self.event.kind} — {self.event.details}")

    def arrays(self) -> dict:
        """The run without its frames, as arrays for an npz artefact (no pickle): the log, the wall time,
        the event and the protocol (JSON strings).

        Returns
        -------
        dict of str to numpy.ndarray
        """
        ev = self.event
        return {**{k: getattr(self.log, k) for k in MDLog.FIELDS}, "n_atoms": np.array(self.log.n_atoms),
                "wall_time_s": np.array(self.wall_time_s),
                "event": np.array(json.dumps(dataclasses.asdict(ev) if ev is not None else None)),
                "protocol": np.array(json.dumps(self.protocol.as_dict()))}

    @classmethod
    def from_artefacts(cls, frames: list, arrays: dict) -> LiquidRun:
        """Rebuild a run from its two artefacts.

        Parameters
        ----------
        frames : list of ase.Atoms
            The stored frames.
        arrays : dict
            What :meth:`arrays` returned.

        Returns
        -------
        LiquidRun
        """
        log = MDLog(*(np.asarray(arrays[k]) for k in MDLog.FIELDS), n_atoms=int(arrays["n_atoms"]))
        ev = json.loads(str(arrays["event"]))
        return cls(list(frames), log, MDEvent(**ev) if ev else None, float(arrays["wall_time_s"]),
                   LiquidProtocol(**json.loads(str(arrays["protocol"]))))


def _thin(result, protocol: LiquidProtocol) -> list:
    keep = []
    for frame, step in zip(result.frames, result.log.step):
        step = int(step)
        stage = protocol.stage_of(step)
        last = frame is result.frames[-1] and result.event is not None
        if step % protocol.frame_interval and not last:
            continue
        out = Atoms(frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)
        out.info.update(step=step, time_fs=step * protocol.timestep_fs, stage=stage,
                        temperature_K=float(frame.get_temperature()),
                        energy_potential_eV=float(frame.get_potential_energy()))
        keep.append(out)
    return keep


def run_liquid(calc, protocol: LiquidProtocol | None = None, progress: bool = True, label: str = "") -> LiquidRun:
    """Run the liquid ``protocol`` with an ASE calculator (never raises for model failures: see
    ``LiquidRun.event``).

    Parameters
    ----------
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    protocol : LiquidProtocol, optional
        The run (default: ``LiquidProtocol()``).
    progress : bool
        tqdm bars per stage.
    label : str
        Their label.

    Returns
    -------
    LiquidRun
    """
    p = protocol or LiquidProtocol()
    atoms = ionic_packing(p.n_formula, p.density, p.seed)
    result = melt_and_equilibrate(atoms, calc, T_melt=p.temperature, T_target=p.temperature,
                                  melt_steps=p.melt_steps, equil_steps=p.equil_steps + p.production_steps,
                                  timestep_fs=p.timestep_fs, friction=p.friction, thermostat="bussi",
                                  taut_fs=p.taut_fs, interval=p.interval, progress=progress, seed=p.seed,
                                  min_distance=p.min_distance, max_energy_jump=p.max_energy_jump,
                                  max_temperature_K=p.max_temperature_K)
    return LiquidRun(_thin(result, p), result.log, result.event, result.wall_time_s, p)


def liquid_artefact_name(kind: str, protocol: LiquidProtocol) -> str:
    """Artefact stem, e.g. ``liquid_md_nnp_36_1a2b3c4d`` (kind, atoms, short hash of the protocol), so
    that runs with different protocols (sizes, seeds) are cached side by side.

    Parameters
    ----------
    kind : str
        Model kind.
    protocol : LiquidProtocol
        The run.

    Returns
    -------
    str
    """
    digest = hashlib.sha256(json.dumps(protocol.as_dict(), sort_keys=True).encode()).hexdigest()[:8]
    return f"liquid_md_{kind}_{protocol.n_atoms}_{digest}"


def liquid_trajectory(kind: str, protocol: LiquidProtocol | None = None, progress: bool = True,
                      root: str | Path | None = None, models_root: str | Path | None = None) -> LiquidRun:
    """:func:`run_liquid` with the shipped ``kind`` model (``zoo.load_or_train``), read from the artefact
    cache (``<root>/liquid_md_<kind>_<n_atoms>_<hash>.{extxyz,json}`` and ``..._log.{npz,json}``) when it
    was computed with the same model file and protocol, else computed (progress bars) and stored.

    Parameters
    ----------
    kind : str
        Model kind.
    protocol : LiquidProtocol, optional
        The run (default: ``LiquidProtocol()``).
    progress : bool
        Progress bars.
    root : str or Path, optional
        The artefact folder (default :func:`zno_book.paths.artefacts_dir`).
    models_root : str or Path, optional
        The models folder (default :func:`zno_book.paths.models_dir`).

    Returns
    -------
    LiquidRun
    """
    p = protocol or LiquidProtocol()
    model = zoo.load_or_train(kind, root=models_root, progress=progress)
    key = {"model": kind, "model_sha256": zoo.fingerprint(kind, root=models_root), "protocol": p.as_dict(),
           "protocol_version": PROTOCOL_VERSION}
    name = liquid_artefact_name(kind, p)
    frames, arrays = load_artefact(name, key, root), load_artefact(name + "_log", key, root)
    if frames is None or arrays is None:
        run = run_liquid(model.calculator(), p, progress=progress, label=f"{zoo.LABELS[kind]} {p.n_atoms} atoms")
        store_artefact(name + "_log", key, run.arrays(), run.wall_time_s, root)
        store_artefact(name, key, run.frames, run.wall_time_s, root)
        frames, arrays = load_artefact(name, key, root), load_artefact(name + "_log", key, root)
    return LiquidRun.from_artefacts(frames, arrays)


def pick_candidates(run: LiquidRun, n_frames: int, min_separation_fs: float = 500.0,
                    min_distance: float | None = None, taken_fs=()) -> list[Atoms]:
    """Up to ``n_frames`` production frames of ``run``, evenly spread over the production stage and at
    least ``min_separation_fs`` apart (fewer if the run is too short or stopped early). If the run
    stopped before its production stage, the equilibration frames are used instead (or, failing those,
    the melt frames after step 0 and the state at the event), spread evenly without the separation
    constraint, so a model that fails still yields frames of the liquid it was making (each carries
    ``stage``). ``min_distance`` (Å): frames with two atoms closer than this (periodic images
    included) are never picked — e.g. the state at a collapse, for a DFT code whose atomic spheres
    would overlap there. ``taken_fs``: MD times (fs) of frames of this run chosen before (a top-up);
    the new frames are then the farthest in time from those and from each other, each at least
    ``min_separation_fs`` away, whatever the stage.

    Parameters
    ----------
    run : LiquidRun
        The run.
    n_frames : int
        Most frames to pick (≥ 1).
    min_separation_fs : float
        Smallest MD time between picked frames (fs).
    min_distance : float, optional
        Exclude frames with atoms closer than this (Å).
    taken_fs : sequence of float
        MD times (fs) of frames picked before.

    Returns
    -------
    list of ase.Atoms
        Copies, in time order.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be ≥ 1, got {n_frames}")
    frames = run.frames
    if min_distance is not None:
        frames = [f for f in frames if shortest_distance(f) >= min_distance]
    pool = ([f for f in frames if f.info["stage"] == "production"]
            or [f for f in frames if f.info["stage"] == "equilibrate"]
            or [f for f in frames if f.info["step"] > 0])
    if not pool:
        return []
    if len(taken_fs):
        return _farthest_in_time(pool, n_frames, min_separation_fs, taken_fs)
    if pool[0].info["stage"] != "production":  # failed early: all the liquid there is, spread evenly
        min_separation_fs = 0.0
    times = np.array([f.info["time_fs"] for f in pool], dtype=float)
    span = times[-1] - times[0]
    n = min(n_frames, int(span // min_separation_fs) + 1 if min_separation_fs > 0 else n_frames)
    targets = np.linspace(times[-1] - (n - 1) * (span / max(n - 1, 1)), times[-1], n)
    chosen = sorted({int(np.argmin(np.abs(times - t))) for t in targets})
    return [pool[k].copy() for k in chosen]


def _farthest_in_time(pool: list, n_frames: int, min_separation_fs: float, taken_fs) -> list:
    """Greedy farthest-point choice in MD time: up to ``n_frames`` frames of ``pool``, each ≥
    ``min_separation_fs`` (and > 0) from ``taken_fs`` and from the frames chosen before it."""
    times = np.array([f.info["time_fs"] for f in pool], dtype=float)
    reference = [float(t) for t in taken_fs]
    chosen = []
    while len(chosen) < n_frames:
        gap = np.min(np.abs(times[:, None] - np.array(reference)[None, :]), axis=1)
        k = int(np.argmax(gap))  # the earliest of equally distant frames
        if gap[k] <= 0 or gap[k] < min_separation_fs:
            break
        chosen.append(k)
        reference.append(times[k])
    return [pool[k].copy() for k in sorted(chosen)]


#: the two runs of the liquid chapter: the 36-atom cell of the DFT frames, and an 8× larger cell (288 atoms,
#: edge 15.8 Å) for smoother g(r) beyond half the small cell's edge and to measure finite-size effects
SMALL_CELL = LiquidProtocol()
LARGE_CELL = LiquidProtocol(n_formula=8 * LIQUID_FORMULA_UNITS, production_steps=2000, frame_interval=50)
#: seeds of the independent repeats of the small-cell run (:func:`repeat_protocol`)
REPEAT_SEEDS = (1, 2, 3, 4)


def repeat_protocol(seed: int, base: LiquidProtocol = SMALL_CELL) -> LiquidProtocol:
    """An independent repeat of ``base`` (new packing, velocities and noise from ``seed``) without the
    production stage (melt and equilibration only), storing a frame every 100 steps: the chapter's
    survival runs, which separate an unstable model from an unlucky run.

    Parameters
    ----------
    seed : int
        The repeat's seed.
    base : LiquidProtocol
        The protocol repeated.

    Returns
    -------
    LiquidProtocol
    """
    return dataclasses.replace(base, seed=seed, production_steps=0, frame_interval=100)


# ------------------------------------------------------------------------- staged heating (issue 17)
#: g(r) of the staged runs: the liquid chapter's range, bins and pairs; Zn–O bond cutoff of its coordination
RDF_RANGE, RDF_BINS, RDF_PAIRS = 7.0, 140, (("Zn", "O"), ("Zn", "Zn"), ("O", "O"))
ZNO_BOND = 2.6


@dataclasses.dataclass(frozen=True)
class StagedLiquidProtocol:
    """A liquid run that reaches the target without overshooting it: Langevin stages at
    ``heating × temperature`` (default 1000 and 2000 K for 3000 K) with a strong friction, a Langevin
    stage at the target (``settle_steps``), then Bussi NVT at the target (``nvt_steps``, the liquid
    whose g(r), pressure and diffusion are measured). The target part is the settle and NVT stages.

    Attributes
    ----------
    n_formula, density, temperature : int, float, float
        ZnO units (18: 36 atoms), g/cm³, target K.
    heating : tuple of float
        Temperatures of the heating stages, as fractions of ``temperature``, ascending, < 1.
    heat_steps, settle_steps, nvt_steps : int
        Steps per heating stage, of the Langevin stage at the target, of the NVT stage.
    timestep_fs, friction, taut_fs : float
        Time step (fs); Langevin friction (1/fs; 0.05: kinetic energy relaxes in 10 fs); Bussi time
        constant (fs; a global rescaling, so a short one tightens the temperature without slowing
        diffusion; measured with a linear-BP member, 36 atoms at 3000 K: 250 fs block means of T scatter by 3 %
        with 20 fs, by 7 % with 50 fs).
    interval, check_interval, pressure_interval : int
        Sampling period, watchdog period and pressure period (steps; pressure a multiple of interval).
    seed : int
        Packing, velocities and thermostat noise.
    min_distance, max_energy_jump : float
        Watchdog (Å; eV/atom between checks).
    runaway_factor : float
        Watchdog: a temperature above ``runaway_factor × temperature`` stops the run.
    overshoot_factor, temperature_block_fs : float
        The no-overshoot criterion: no block mean of T above ``overshoot_factor × temperature``, the
        heating and the target part each cut into equal blocks of about ``temperature_block_fs``.
        Instantaneous T fluctuates by √(2/3N) (14 % for 36 atoms), so the criterion is on block means.
    """

    n_formula: int = LIQUID_FORMULA_UNITS
    density: float = LIQUID_DENSITY
    temperature: float = LIQUID_TEMPERATURE
    heating: tuple = (1 / 3, 2 / 3)
    heat_steps: int = 500
    settle_steps: int = 500
    nvt_steps: int = 5000
    timestep_fs: float = 1.0
    friction: float = 0.05
    taut_fs: float = 20.0
    interval: int = 10
    check_interval: int = 5
    pressure_interval: int = 20
    seed: int = 0
    min_distance: float = 1.2
    max_energy_jump: float = 1.0
    runaway_factor: float = 2.0
    overshoot_factor: float = 1.1
    temperature_block_fs: float = 500.0

    def __post_init__(self):
        object.__setattr__(self, "heating", tuple(float(f) for f in self.heating))
        if self.n_formula < 1 or not self.density > 0 or not self.temperature > 0:
            raise ValueError(f"need n_formula ≥ 1, density > 0 g/cm³ and temperature > 0 K, got "
                             f"{self.n_formula}, {self.density}, {self.temperature}")
        if any(not 0 < f < 1 for f in self.heating) or list(self.heating) != sorted(self.heating):
            raise ValueError(f"heating must be ascending fractions of the target in (0, 1), got {self.heating}")
        if min(self.heat_steps, self.settle_steps, self.nvt_steps) < 1:
            raise ValueError("every stage needs at least one step")
        if self.pressure_interval % self.interval:
            raise ValueError(f"pressure_interval ({self.pressure_interval}) must be a multiple of interval "
                             f"({self.interval})")

    @property
    def n_atoms(self) -> int:
        """Atoms in the cell (2 per ZnO)."""
        return 2 * self.n_formula

    def stages(self) -> list[Stage]:
        """The MD stages, in order (names ``heat1000K``, ..., ``settle``, ``liquid``).

        Returns
        -------
        list of mliplib.md.Stage
        """
        heat = [Stage(f"heat{f * self.temperature:.0f}K", self.heat_steps, f * self.temperature,
                      friction=self.friction) for f in self.heating]
        return heat + [Stage("settle", self.settle_steps, self.temperature, friction=self.friction),
                       Stage("liquid", self.nvt_steps, self.temperature, ensemble="nvt", taut_fs=self.taut_fs)]

    @property
    def target_start_step(self) -> int:
        """The step at which the target part (settle, then NVT) begins."""
        return stage_starts(self.stages())["settle"]

    @property
    def total_steps(self) -> int:
        """MD steps of the whole run."""
        return self.target_start_step + self.settle_steps + self.nvt_steps

    def as_dict(self) -> dict:
        """Every parameter (JSON-serialisable).

        Returns
        -------
        dict
        """
        return {**dataclasses.asdict(self), "heating": list(self.heating)}


def run_staged_liquid(calc, protocol: StagedLiquidProtocol | None = None, progress: bool = False) -> MDResult:
    """Run ``protocol`` from its random ionic packing (:func:`~zno_book.structures.ionic_packing`) with any
    ASE calculator; a model failure ends the run and is reported in ``result.event``.

    Parameters
    ----------
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator (stress needed by :func:`staged_liquid_metrics`).
    protocol : StagedLiquidProtocol, optional
        Default ``StagedLiquidProtocol()``.
    progress : bool
        Progress bars.

    Returns
    -------
    mliplib.md.MDResult
        Frames every ``interval`` steps (velocities kept), ``stages`` by name.
    """
    p = protocol or StagedLiquidProtocol()
    atoms = ionic_packing(p.n_formula, p.density, p.seed)
    return run_stages(atoms, calc, p.stages(), timestep_fs=p.timestep_fs, interval=p.interval, progress=progress,
                      seed=p.seed, min_distance=p.min_distance, max_energy_jump=p.max_energy_jump,
                      max_temperature_K=p.runaway_factor * p.temperature, check_interval=p.check_interval)


def _block_means(values: np.ndarray, steps: np.ndarray, block_steps: int, start: int, end: int) -> np.ndarray:
    """Means of ``values`` over the samples after ``start`` up to ``end``, in as many equal blocks as fit
    ``block_steps`` (at least one: a part shorter than a block is one block)."""
    n_blocks = max((end - start) // block_steps, 1)
    edges = np.linspace(start, end, n_blocks + 1)
    means = [values[(steps > a) & (steps <= b)].mean() for a, b in itertools.pairwise(edges)
             if np.any((steps > a) & (steps <= b))]
    return np.array(means)


def _pressure_gpa(frames: list, calc) -> np.ndarray:
    """Pressure (virial + kinetic, GPa) of each frame (positions and momenta), recomputed with ``calc``."""
    out = []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calc
        out.append(-np.trace(atoms.get_stress(voigt=False, include_ideal_gas=True)) / 3 / units.GPa)
    return np.array(out)


def staged_liquid_metrics(result: MDResult, protocol: StagedLiquidProtocol, calc) -> dict:
    """What a staged run says about the model's liquid, as arrays for a results file.

    Parameters
    ----------
    result : mliplib.md.MDResult
        From :func:`run_staged_liquid` with ``protocol`` (frames kept).
    protocol : StagedLiquidProtocol
        Its protocol.
    calc : ase.calculators.calculator.Calculator
        The same calculator (pressure).

    Returns
    -------
    dict
        ``time_fs``, ``temperature_K``, ``energy_eV_atom`` (the log); ``event_kind`` ("none" if none),
        ``event_time_fs``, ``event_stage``; ``survival_fs`` (time from the start of the target part to the
        event, 0 if it happened while heating, the target part's length if none) and ``censored`` (1: no
        event); ``max_T_block_heating_K``, ``max_T_block_target_K`` (largest block mean, see
        ``temperature_block_fs``), ``max_T_K`` (instantaneous), ``mean_T_liquid_K``, ``overshoot``
        (1 if a block mean exceeded ``overshoot_factor × temperature``); ``pressure_GPa`` (series) with
        ``pressure_mean_GPa``, ``pressure_error_GPa`` (5 blocks) over the NVT stage before any event
        (NaN below 10 samples); ``shortest_A`` (over the run before any event); and for runs without an
        event: ``D_Zn_A2_ps``, ``D_O_A2_ps`` with ``..._error``, ``rdf_r_A`` and ``rdf_<A>-<B>``,
        ``cn_ZnO`` (mean O within 2.6 Å of a Zn).
    """
    p, log, event = protocol, result.log, result.event
    start, stop = p.target_start_step, p.total_steps
    steps = log.step.astype(int)
    stage = {name: first for name, first in stage_starts(p.stages()).items()}
    event_step = int(event.step) if event is not None else None
    out = {"time_fs": log.time_fs, "temperature_K": log.temperature,
           "energy_eV_atom": log.energy_potential / log.n_atoms,
           "event_kind": event.kind if event else "none", "event_time_fs": event.time_fs if event else np.nan,
           "event_stage": max((n for n, s in stage.items() if s < event_step), key=stage.get) if event else "none",
           "survival_fs": (max(event_step - start, 0) if event else stop - start) * p.timestep_fs,
           "censored": int(event is None), "target_start_fs": start * p.timestep_fs,
           "protocol": json.dumps(p.as_dict())}
    before = steps < event_step if event is not None else np.ones(len(steps), bool)
    block = round(p.temperature_block_fs / p.timestep_fs)
    heat = _block_means(log.temperature[before], steps[before], block, 0, start)
    target = _block_means(log.temperature[before], steps[before], block, start, stop)
    out.update(max_T_block_heating_K=heat.max() if heat.size else np.nan,
               max_T_block_target_K=target.max() if target.size else np.nan,
               max_T_K=float(log.temperature[before].max()) if before.any() else np.nan,
               overshoot=int(max(heat.max(initial=0), target.max(initial=0)) > p.overshoot_factor * p.temperature))
    frames = [f for f, s in zip(result.frames, steps) if s <= stop and (event is None or s < event_step)]
    frame_steps = np.array([s for s in steps if s <= stop and (event is None or s < event_step)])
    liquid = [f for f, s in zip(frames, frame_steps) if s >= stage["liquid"]]
    out["shortest_A"] = min((shortest_distance(f) for f in frames), default=np.nan)
    out["mean_T_liquid_K"] = (float(np.mean([f.get_temperature() for f in liquid])) if liquid else np.nan)
    every = p.pressure_interval // p.interval
    pressure = _pressure_gpa(liquid[::every], calc)
    out["pressure_GPa"] = pressure
    averaged = block_average(pressure, 5) if pressure.size >= 10 else None
    out["pressure_mean_GPa"] = averaged.mean if averaged else np.nan
    out["pressure_error_GPa"] = averaged.error if averaged else np.nan
    if event is None:
        out.update(_liquid_structure(liquid, p.interval * p.timestep_fs))
    return out


def _liquid_structure(frames: list, dt_fs: float) -> dict:
    """D of Zn and O (MSD, 4 blocks), partial g(r) and the Zn–O coordination of NVT frames."""
    positions = unwrap(np.array([f.positions for f in frames]), frames[0].cell)
    masses, numbers = frames[0].get_masses(), frames[0].numbers
    out = {}
    for symbol, z in (("Zn", 30), ("O", 8)):
        d = diffusion_coefficient(positions, dt_fs, atoms=numbers == z, masses=masses)
        out[f"D_{symbol}_A2_ps"], out[f"D_{symbol}_A2_ps_error"] = d.coefficient, d.error
    g = rdf(frames, RDF_RANGE, RDF_BINS, pairs=list(RDF_PAIRS))
    out["rdf_r_A"] = g.r
    for a, b in RDF_PAIRS:
        out[f"rdf_{a}-{b}"] = g[(a, b)]
    out["cn_ZnO"] = float(np.mean([coordination_numbers(f, {("Zn", "O"): ZNO_BOND})[f.numbers == 30].mean()
                                   for f in frames]))
    return out
