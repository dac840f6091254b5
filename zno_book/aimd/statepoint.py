"""The state point: the density at which PBE's pressure (virial + kinetic) of the liquid vanishes.

At each density, frames of PLIP's liquid (36 atoms, the liquid chapter's protocol at that density and
temperature, production frames ≥ 0.5 ps apart) are labelled by DFT. At the book's 4.9 g/cm³ and
3000 K the ten PLIP frames of ``liquid.extxyz`` already carry book-setting stresses; at the other
densities the frames get single points with :data:`PRESSURE_SETTING` (plane waves 800 eV at Γ: the
Pulay stress of 800 eV is ~0.1 GPa) and the k-point correction (book − pw800_gamma virial pressure,
measured by the pilot on the same frames at 4.9 g/cm³) is added.

P = P_virial + P_kin, P_virial = −tr(σ)/3 from the DFT stress, P_kin = N k_B T / V (the ideal-gas
term of the nuclei at the target temperature). The error of each density's pressure is the standard
error over its frames combined with the error of the k-point correction; the zero-pressure density
comes from a weighted straight line P(ρ). The frames are PLIP's structures, not PBE's: the AIMD run at
the chosen density measures its own pressure (:mod:`.analysis`), which is the number to trust.
Units: g/cm³, K, GPa.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

import mliplib
from zno_book.liquid import SMALL_CELL, pick_candidates, run_liquid
from zno_book.paths import models_dir

from .ledger import charge
from .pilot import PILOT_FRAMES, load_step, pressure_gpa, reference_frames
from .settings import SETTINGS, DFTStepper, engine_version
from .storage import append_frame, read_frames, write_json

__all__ = [
    "PRESSURE_SETTING",
    "STATE_POINTS",
    "StatePoint",
    "kinetic_pressure_gpa",
    "run_statepoint",
    "sample_frames",
    "summarize_statepoint",
]

PRESSURE_SETTING = "pw800_gamma"
FRAMES_PER_STATE = 4
BOOK_DENSITY, BOOK_TEMPERATURE = 4.9, 3000.0


@dataclasses.dataclass(frozen=True)
class StatePoint:
    """A (density, temperature) pair whose pressure is measured on ``frames`` PLIP frames.

    Parameters
    ----------
    density : float
        g/cm³.
    temperature : float
        K.
    frames : int
        PLIP frames labelled by DFT.
    """

    density: float
    temperature: float
    frames: int = FRAMES_PER_STATE

    @property
    def label(self) -> str:
        """File-name label, e.g. "3000K_4.50"."""
        return f"{self.temperature:.0f}K_{self.density:.2f}"


#: the book's point is labelled already (liquid.extxyz); the others get PRESSURE_SETTING single points
STATE_POINTS = (StatePoint(4.5, 3000.0), StatePoint(4.2, 3000.0))


def kinetic_pressure_gpa(n_atoms: int, volume: float, temperature: float) -> float:
    """Ideal-gas pressure of the nuclei, N k_B T / V, in GPa.

    Parameters
    ----------
    n_atoms : int
        N.
    volume : float
        V (Å³).
    temperature : float
        T (K).

    Returns
    -------
    float
        GPa.
    """
    return float(n_atoms * units.kB * temperature / volume / units.GPa)


def sample_frames(root: Path, point: StatePoint, model_path: Path | None = None) -> list[Atoms]:
    """PLIP liquid frames at ``point``, made once and cached in ``<root>/aimd/statepoint/frames_<label>.extxyz``.

    The liquid chapter's small-cell protocol at this density and temperature; production frames
    ≥ 500 fs apart, no pair closer than 1.2 Å (:func:`zno_book.liquid.pick_candidates`).

    Parameters
    ----------
    root : str or Path
        The data folder.
    point : StatePoint
        Density, temperature and number of frames.
    model_path : str or Path, optional
        The PLIP model file (default: the shipped one, ``models/v1/plip.npz``).

    Returns
    -------
    list of ase.Atoms
        ``point.frames`` frames without DFT labels; ``info``: task (``statepoint/<label>/frameNN``),
        density_g_cm3, temperature_K, sampled_by, model_path, md_event.

    Raises
    ------
    RuntimeError
        If PLIP's run gives fewer usable frames than ``point.frames``.
    """
    model_path = Path(model_path) if model_path is not None else models_dir() / "plip.npz"
    path = Path(root) / "aimd" / "statepoint" / f"frames_{point.label}.extxyz"
    if path.exists():
        return read(path, ":")
    protocol = dataclasses.replace(SMALL_CELL, density=point.density, temperature=point.temperature)
    result = run_liquid(mliplib.load(model_path).calculator(), protocol, progress=False)
    frames = pick_candidates(result, point.frames, min_separation_fs=500.0, min_distance=1.2)
    if len(frames) < point.frames:
        raise RuntimeError(f"PLIP's liquid at {point.label} gave {len(frames)} usable frames "
                           f"({result.summary()})")
    for k, frame in enumerate(frames):
        frame.info.update(task=f"statepoint/{point.label}/frame{k:02d}", density_g_cm3=point.density,
                          temperature_K=point.temperature, sampled_by="plip", model_path=f"models/v1/{model_path.name}",
                          md_event=str(result.event) if result.event else "none")
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, frames, format="extxyz")
    return frames


def run_statepoint(root: Path, points=STATE_POINTS, log=print) -> None:
    """DFT single points (PRESSURE_SETTING, with stress) on the sampled frames of every point.

    Appended to ``<root>/aimd/statepoint/pressures.extxyz`` (resumable: frames already there are
    skipped), each with its virial pressure (GPa) in ``info`` and charged to the ledger as "statepoint".

    Parameters
    ----------
    root : str or Path
        The data folder.
    points : sequence of StatePoint
        The state points (frames sampled by :func:`sample_frames` if not cached).
    log : callable
        Called with one line (str) per labelled frame.
    """
    root = Path(root)
    out = root / "aimd" / "statepoint" / "pressures.extxyz"
    setting = SETTINGS[PRESSURE_SETTING]
    for point in points:
        done = {f.info["task"] for f in read_frames(out)}
        for frame in sample_frames(root, point):
            task = frame.info["task"]
            if task in done:
                continue
            atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=True)
            result = DFTStepper(atoms, setting).evaluate(atoms, stress=True)
            labelled = atoms.copy()
            labelled.calc = SinglePointCalculator(labelled, energy=result.energy, free_energy=result.energy,
                                                  forces=result.forces, stress=result.stress)
            labelled.info.update({**frame.info, **result.info(), "setting": setting.name,
                                  "engine": engine_version(), "kpts": str(setting.kpts(atoms)),
                                  "pressure_virial_GPa": pressure_gpa(result.stress),
                                  "config_type": "aimd_statepoint_plip_frame"})
            append_frame(out, labelled)
            charge(root / "aimd", "statepoint", task, result.wall_time_s, result.cpu_time_s)
            log(f"{task}: P_virial = {pressure_gpa(result.stress):+.2f} GPa, {result.wall_time_s:.0f} s wall, "
                f"{result.cpu_time_s:.0f} s CPU ({result.scf_iterations} SCF iterations)")


def _mean_sem(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    sem = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), sem


def kpoint_correction(root: Path, pilot_setting: str = PRESSURE_SETTING) -> dict:
    """Book − ``pilot_setting`` virial pressure (GPa) on the pilot's step-0 frames.

    Parameters
    ----------
    root : str or Path
        The data folder (``liquid.extxyz`` and the pilot's records).
    pilot_setting : str
        The setting whose pressure is corrected.

    Returns
    -------
    dict
        ``mean_GPa``, ``sem_GPa`` (standard error; NaN for one frame), ``n`` and ``values_GPa``.

    Raises
    ------
    RuntimeError
        If the pilot has no step 0 with a stress for ``pilot_setting``.
    """
    refs = reference_frames(root)
    diffs = []
    for task in PILOT_FRAMES:
        got = load_step(Path(root), pilot_setting, task, 0)
        if got is not None and "stress" in got[1]:
            diffs.append(pressure_gpa(refs[task].get_stress(voigt=True)) - pressure_gpa(got[1]["stress"]))
    if not diffs:
        raise RuntimeError(f"no pilot step 0 with {pilot_setting} yet: run the pilot first")
    mean, sem = _mean_sem(diffs)
    return {"mean_GPa": mean, "sem_GPa": sem, "n": len(diffs), "values_GPa": diffs}


def summarize_statepoint(root: Path) -> dict:
    """Pressure per state point and the zero-pressure density at 3000 K, written to ``statepoint_summary.json``.

    The book's point (4.9 g/cm³, 3000 K) comes from the ten PLIP frames of ``liquid.extxyz`` without
    correction; the others from ``pressures.extxyz`` plus :func:`kpoint_correction`.

    Parameters
    ----------
    root : str or Path
        The data folder.

    Returns
    -------
    dict
        The summary written: ``points`` (per point: virial, kinetic and correction terms, ``pressure_GPa``
        and ``pressure_err_GPa``), ``kpoint_correction`` and ``zero_pressure_3000K`` (density, its error,
        slope, bulk modulus ρ dP/dρ in GPa; None with fewer than two points at 3000 K). Written to
        ``<root>/aimd/statepoint_summary.json``.

    Raises
    ------
    RuntimeError
        If there are labelled state-point frames but no pilot step 0 to correct them with
        (:func:`kpoint_correction`).
    """
    root = Path(root)
    labelled = read_frames(root / "aimd" / "statepoint" / "pressures.extxyz")
    correction = kpoint_correction(root) if labelled else None
    rows = []
    book = [f for f in reference_frames(root, tasks=tuple(f"liquid/at_plip/frame{k:02d}" for k in range(10))).values()]
    rows.append(_row(BOOK_DENSITY, BOOK_TEMPERATURE, [pressure_gpa(f.get_stress(voigt=True)) for f in book], book[0],
                     None, "book setting (liquid.extxyz, liquid_model_plip)"))
    for point in sorted({(f.info["density_g_cm3"], f.info["temperature_K"]) for f in labelled}):
        frames = [f for f in labelled if (f.info["density_g_cm3"], f.info["temperature_K"]) == point]
        rows.append(_row(point[0], point[1], [f.info["pressure_virial_GPa"] for f in frames], frames[0], correction,
                         f"{PRESSURE_SETTING} + k-point correction"))
    fit = _zero_pressure(rows, BOOK_TEMPERATURE)
    summary = {"description": "PBE pressure of liquid ZnO (36 atoms) on PLIP liquid frames at several densities",
               "pressure": "P = -tr(stress)/3 + N k_B T / V", "pressure_setting": PRESSURE_SETTING,
               "kpoint_correction": correction, "engine": engine_version(), "points": rows,
               "zero_pressure_3000K": fit,
               "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(root / "aimd" / "statepoint_summary.json", summary)
    return summary


def _row(density, temperature, virial, frame, correction, source) -> dict:
    mean, sem = _mean_sem(virial)
    kinetic = kinetic_pressure_gpa(len(frame), frame.get_volume(), temperature)
    shift, shift_err = (correction["mean_GPa"], correction["sem_GPa"]) if correction else (0.0, 0.0)
    return {"density_g_cm3": density, "temperature_K": temperature, "n_frames": len(virial), "source": source,
            "virial_GPa": virial, "virial_mean_GPa": mean, "virial_sem_GPa": sem, "kinetic_GPa": kinetic,
            "correction_GPa": shift, "pressure_GPa": mean + shift + kinetic,
            "pressure_err_GPa": float(np.hypot(sem, shift_err))}


def _zero_pressure(rows: list, temperature: float) -> dict | None:
    pts = [r for r in rows if r["temperature_K"] == temperature]
    if len(pts) < 2:
        return None
    rho = np.array([r["density_g_cm3"] for r in pts])
    p = np.array([r["pressure_GPa"] for r in pts])
    err = np.array([r["pressure_err_GPa"] for r in pts])
    coef, cov = np.polyfit(rho, p, 1, w=1.0 / err, cov="unscaled")
    slope, intercept = coef
    rho0 = -intercept / slope
    grad = np.array([intercept / slope ** 2, -1.0 / slope])  # d rho0 / d (slope, intercept)
    rho0_err = float(np.sqrt(grad @ cov @ grad))
    return {"density_g_cm3": float(rho0), "density_err_g_cm3": rho0_err, "slope_GPa_per_g_cm3": float(slope),
            "bulk_modulus_GPa": float(rho0 * slope), "fit": "weighted straight line P(ρ)"}
