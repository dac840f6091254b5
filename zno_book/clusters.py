"""The nanoparticles chapter's cluster analysis: :mod:`mliplib.properties.nanoparticles` with the ZnO
bond cutoffs (:data:`~zno_book.constants.ZNO_BOND_CUTOFFS`: Zn–O < 2.5 Å), the ZnO formula unit and the
smallest physical distance (:data:`~zno_book.constants.MIN_DISTANCE`, 1.2 Å); and nanoparticle MD
(issue 17): each cluster under a Langevin thermostat at a fixed temperature or along a heating ramp
(:data:`CLUSTER_MD`), with the first unphysical event of the run (atoms closer than MIN_DISTANCE, a jump
of the energy or a runaway temperature, stopped by the watchdog of :func:`mliplib.md.run_stages`; or a
fragmentation of the Zn–O bond graph lasting ``persistence_fs``) and the structure reached.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import numpy as np
from ase import Atoms

from mliplib.md import MDLog, MDResult, Stage, run_stages
from mliplib.properties import nanoparticles
from mliplib.properties.structure import shortest_distance
from zno_book.constants import MIN_DISTANCE, ZNO_BOND_CUTOFFS

__all__ = [
    "CLUSTER_MD",
    "MAX_COORDINATION",
    "MIN_DISTANCE",
    "ZNO_BOND_CUTOFFS",
    "ClusterMDProtocol",
    "bond_lengths",
    "cluster_diagnostics",
    "cluster_md_metrics",
    "compare_structures",
    "coordination_histogram",
    "first_persistent",
    "formula_units",
    "fragments",
    "made_by_a_model",
    "ring_geometry",
    "run_cluster_md",
]


def formula_units(atoms: Atoms) -> int:
    """n for a structure that is exactly (ZnO)_n; ValueError otherwise.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    int
    """
    return nanoparticles.formula_units(atoms, "ZnO")


def made_by_a_model(frame: Atoms) -> bool:
    """Whether a frame of the nanoparticle data set is DFT at a structure a model made (its optimum,
    ``config_type`` ``cluster_model_optimum``; a frame of its cluster MD, ``cluster_md_<kind>``) rather
    than one of DFT's own relaxations or single points.

    Parameters
    ----------
    frame : ase.Atoms
        A frame of the nanoparticle data set (``info["config_type"]``).

    Returns
    -------
    bool
    """
    config_type = str(frame.info["config_type"])
    return config_type == "cluster_model_optimum" or config_type.startswith("cluster_md_")


def coordination_histogram(atoms: Atoms, species: str | None = None) -> dict[int, int]:
    """{Zn–O coordination number: number of atoms} (of ``species``, or all atoms).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    species : str, optional
        "Zn" or "O" (default: every atom).

    Returns
    -------
    dict of int to int
    """
    return nanoparticles.coordination_histogram(atoms, ZNO_BOND_CUTOFFS, species)


def bond_lengths(atoms: Atoms) -> np.ndarray:
    """Zn–O bond lengths (Å), each bond once, shape (n_bonds,).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    numpy.ndarray
    """
    return nanoparticles.bond_lengths(atoms, ZNO_BOND_CUTOFFS)


def fragments(atoms: Atoms) -> np.ndarray:
    """Label of the connected piece of the Zn–O bond graph each atom belongs to, shape (n_atoms,).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    numpy.ndarray of int
    """
    return nanoparticles.fragments(atoms, ZNO_BOND_CUTOFFS)


def compare_structures(structures: Mapping[str, Atoms], references: Mapping[str, Atoms],
                       permute: bool = True) -> list[dict]:
    """:func:`mliplib.properties.nanoparticles.compare_structures` with Zn–O bonds.

    Parameters
    ----------
    structures, references : mapping of str to ase.Atoms
        Structures and references of the same names.
    permute : bool
        Match like atoms by assignment.

    Returns
    -------
    list of dict
    """
    return nanoparticles.compare_structures(structures, references, ZNO_BOND_CUTOFFS, permute)


def cluster_diagnostics(atoms: Atoms, energy: float | None = None, bulk_energy: float | None = None,
                        start_energy: float | None = None) -> dict:
    """:func:`mliplib.properties.nanoparticles.cluster_diagnostics` of a (ZnO)_n cluster (Zn–O bonds,
    atoms closer than MIN_DISTANCE flagged).

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster.
    energy : float, optional
        Its energy (eV).
    bulk_energy : float, optional
        Energy per ZnO of the bulk crystal (eV).
    start_energy : float, optional
        Energy (eV) of the relaxation's start.

    Returns
    -------
    dict
    """
    return nanoparticles.cluster_diagnostics(atoms, ZNO_BOND_CUTOFFS, "ZnO", MIN_DISTANCE, energy=energy,
                                             bulk_energy=bulk_energy, start_energy=start_energy)


def ring_geometry(atoms: Atoms) -> dict:
    """:func:`mliplib.properties.nanoparticles.ring_geometry` of a (ZnO)_n ring (keys ``angle_zn``,
    ``angle_o``, ``radius_zn``, ``radius_o``, ...).

    Parameters
    ----------
    atoms : ase.Atoms
        The ring.

    Returns
    -------
    dict
    """
    return nanoparticles.ring_geometry(atoms, ZNO_BOND_CUTOFFS)


# --------------------------------------------------------------------------------- nanoparticle MD
#: coordination numbers counted in the histograms of the structure an MD run reaches (0 … 6)
MAX_COORDINATION = 6


@dataclasses.dataclass(frozen=True)
class ClusterMDProtocol:
    """Langevin MD of an isolated cluster at ``temperature_K`` (K) or along a ramp ``(start, end)``.

    Attributes
    ----------
    name : str
        E.g. "300K", "ramp".
    temperature_K : float or tuple of float
        Thermostat target, or a linear ramp (staircase of ``ramp_interval``-step plateaus).
    steps : int
        MD steps.
    timestep_fs, friction : float
        fs; Langevin friction in 1/fs.
    interval, check_interval, ramp_interval : int
        Sampling period, watchdog period, steps per ramp plateau.
    min_distance, max_energy_jump : float
        Watchdog: Å; eV/atom between checks.
    runaway_factor : float
        Watchdog: a temperature above ``runaway_factor`` × the highest target stops the run. The
        instantaneous temperature of N atoms scatters by √(2/3N) of the target (33 % for 6 atoms), so 2×
        is crossed in equilibrium; 3× is not (p < 1e-4 per independent sample for 6 atoms), while a model
        that releases energy overshoots far beyond it.
    persistence_fs : float
        A fragmentation counts once the bond graph stayed in pieces this long (bonds stretch past the
        cutoff for a moment at high temperature).
    """

    name: str
    temperature_K: float | tuple
    steps: int
    timestep_fs: float = 1.0
    friction: float = 0.01
    interval: int = 10
    check_interval: int = 5
    ramp_interval: int = 100
    min_distance: float = MIN_DISTANCE
    max_energy_jump: float = 1.0
    runaway_factor: float = 3.0
    persistence_fs: float = 100.0

    def __post_init__(self):
        if isinstance(self.temperature_K, list):
            object.__setattr__(self, "temperature_K", tuple(self.temperature_K))
        self.stages()  # checks the temperature and steps

    def stages(self) -> list[Stage]:
        """The one Langevin stage of the run.

        Returns
        -------
        list of mliplib.md.Stage
        """
        return [Stage(self.name, self.steps, self.temperature_K, friction=self.friction,
                      ramp_interval=self.ramp_interval)]

    @property
    def max_temperature_K(self) -> float:
        """The highest thermostat target, K."""
        return float(np.max(self.temperature_K))

    def as_dict(self) -> dict:
        """Every parameter (JSON-serialisable).

        Returns
        -------
        dict
        """
        return dataclasses.asdict(self)


#: the nanoparticle MD of every cluster: 5 ps at 300 K and at 1000 K, and a 10 ps ramp 300 → 2000 K
CLUSTER_MD = {"300K": ClusterMDProtocol("300K", 300.0, 5000),
              "1000K": ClusterMDProtocol("1000K", 1000.0, 5000),
              "ramp": ClusterMDProtocol("ramp", (300.0, 2000.0), 10000)}


def run_cluster_md(atoms: Atoms, calc, protocol: ClusterMDProtocol, seed: int = 0) -> MDResult:
    """Langevin MD of a cluster (centre of mass fixed, no initial rotation), stopped by the watchdog.

    Parameters
    ----------
    atoms : ase.Atoms
        The start (not periodic).
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    protocol : ClusterMDProtocol
        The run.
    seed : int
        Velocities and noise.

    Returns
    -------
    mliplib.md.MDResult
        Frames every ``protocol.interval`` steps.
    """
    return run_stages(atoms, calc, protocol.stages(), timestep_fs=protocol.timestep_fs, interval=protocol.interval,
                      seed=seed, min_distance=protocol.min_distance, max_energy_jump=protocol.max_energy_jump,
                      max_temperature_K=protocol.runaway_factor * protocol.max_temperature_K,
                      check_interval=protocol.check_interval)


def first_persistent(flags, length: int) -> int | None:
    """Index of the first sample that starts ``length`` consecutive True ``flags`` (None if none).

    Parameters
    ----------
    flags : array-like of bool
        One per sample, in time order.
    length : int
        Consecutive samples needed (≥ 1).

    Returns
    -------
    int or None
    """
    run = 0
    for k, flag in enumerate(np.asarray(flags, bool)):
        run = run + 1 if flag else 0
        if run >= length:
            return k - length + 1
    return None


def _coordination_fractions(atoms: Atoms) -> np.ndarray:
    histogram = coordination_histogram(atoms)
    counts = np.array([histogram.get(c, 0) for c in range(MAX_COORDINATION + 1)], dtype=float)
    counts[-1] += sum(n for c, n in histogram.items() if c > MAX_COORDINATION)
    return counts / len(atoms)


def cluster_md_metrics(result: MDResult, start: Atoms, protocol: ClusterMDProtocol, series_fs: float = 50.0) -> dict:
    """What an MD run of a cluster did, as arrays for a results file.

    Parameters
    ----------
    result : mliplib.md.MDResult
        From :func:`run_cluster_md` (frames kept).
    start : ase.Atoms
        The start of the run (RMSD reference).
    protocol : ClusterMDProtocol
        Its protocol.
    series_fs : float
        Period of the time series returned (fs; the analysis uses every sample).

    Returns
    -------
    dict
        ``time_fs``, ``temperature_K``, ``energy_eV`` (the log), ``n_fragments`` and ``shortest_A``, every
        ``series_fs`` and at the last sample; ``watchdog_kind`` / ``watchdog_time_fs`` (the MD event, "none"/NaN);
        ``fragmentation_time_fs`` (start of the first fragmentation lasting ``persistence_fs``, NaN);
        ``first_event_kind`` ("min_distance", ..., "fragmentation" or "none") and ``first_event_fs``
        (NaN if none); ``survival_fs`` (the first event's time, or the run's length) and ``censored``
        (1: no event); ``intact`` (1: no event and the final structure in one piece); ``max_T_K``;
        ``rmsd_A`` (final structure to the start, like atoms matched); ``cn_fractions`` (fraction of
        atoms with 0 … MAX_COORDINATION Zn–O bonds, final structure) and ``mean_cn``; ``numbers`` and
        ``snapshot_positions`` (k, n_atoms, 3) Å of ``snapshot_labels`` ("before_event": the last sample
        before the first event, "hottest": the hottest sample before it, "final") at
        ``snapshot_time_fs``.
    """
    log, frames, event = result.log, result.frames, result.event
    if not frames:  # the model failed on the start itself: the start is all there is
        frames, log = [start], MDLog(*(np.zeros(1) for _ in MDLog.FIELDS), n_atoms=len(start))
    times = log.time_fs
    finite = [bool(np.all(np.isfinite(f.positions))) for f in frames]
    pieces = np.array([len(np.unique(fragments(f))) if ok else 0 for f, ok in zip(frames, finite)])
    shortest = np.array([shortest_distance(f) if ok else np.nan for f, ok in zip(frames, finite)])
    length = max(round(protocol.persistence_fs / (protocol.interval * protocol.timestep_fs)), 1)
    split = first_persistent(pieces > 1, length)
    fragmentation = float(times[split]) if split is not None else np.nan
    candidates = [(event.time_fs, event.kind)] if event is not None else []
    if split is not None:
        candidates.append((fragmentation, "fragmentation"))
    first_time, first_kind = min(candidates) if candidates else (np.nan, "none")
    before = np.flatnonzero(times < first_time) if candidates else np.arange(len(times))
    final = frames[-1]
    intact = int(not candidates and pieces[-1] == 1)
    rmsd = nanoparticles.align(final, start, permute=True).rmsd if finite[-1] else np.nan
    last = int(before[-1]) if before.size else 0
    hottest = int(before[np.argmax(log.temperature[before])]) if before.size else 0
    chosen = {"before_event": last, "hottest": hottest, "final": len(frames) - 1}
    every = max(round(series_fs / (protocol.interval * protocol.timestep_fs)), 1)
    thin = np.unique(np.r_[np.arange(0, len(times), every), len(times) - 1])  # the last sample kept
    return {"time_fs": times[thin], "temperature_K": log.temperature[thin].astype(np.float32),
            "energy_eV": log.energy_potential[thin], "n_fragments": pieces[thin].astype(np.int16),
            "shortest_A": shortest[thin].astype(np.float32),
            "watchdog_kind": event.kind if event else "none", "watchdog_time_fs": event.time_fs if event else np.nan,
            "fragmentation_time_fs": fragmentation, "first_event_kind": first_kind, "first_event_fs": first_time,
            "survival_fs": first_time if candidates else protocol.steps * protocol.timestep_fs,
            "censored": int(not candidates), "intact": intact, "max_T_K": float(np.max(log.temperature)),
            "rmsd_A": rmsd, "cn_fractions": _coordination_fractions(final) if finite[-1] else np.full(
                MAX_COORDINATION + 1, np.nan),
            "mean_cn": cluster_diagnostics(final)["mean_cn"] if finite[-1] else np.nan,
            "numbers": start.numbers, "snapshot_labels": np.array(list(chosen)),
            "snapshot_positions": np.array([frames[k].positions for k in chosen.values()]),
            "snapshot_time_fs": np.array([times[k] for k in chosen.values()]),
            "snapshot_temperature_K": np.array([log.temperature[k] for k in chosen.values()]),
            "snapshot_energy_eV": np.array([log.energy_potential[k] for k in chosen.values()]),
            "protocol": json.dumps(protocol.as_dict())}
