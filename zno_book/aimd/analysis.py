"""What an AIMD trajectory says: energy conservation of its NVE segment, its pressure with a block
error, and its temperature per stage.

All functions take the frames of ``trajectory.extxyz`` (:func:`.storage.read_frames`). The pressure is
P = −tr(σ)/3 + 2 E_kin / (3 V) per frame (the virial theorem with the instantaneous kinetic energy),
plus an optional constant ``correction`` (GPa; e.g. the Pulay + k-point offset of the MD setting from
the book setting, measured on re-labelled frames). Errors of time averages are block averages: the
standard error of the means of ``n_blocks`` consecutive blocks. Units: fs, ps, eV, GPa, K.
"""

from __future__ import annotations

import numpy as np
from ase import units

__all__ = ["block_average", "nve_drift", "pressure_series", "stage_frames", "stage_summary"]


def stage_frames(frames: list, stage: str) -> list:
    """The frames of one stage (``info["stage"]``), in their order.

    Parameters
    ----------
    frames : list of ase.Atoms
        Trajectory frames.
    stage : str
        Stage name, e.g. "production" (the starting frame's is "start").

    Returns
    -------
    list of ase.Atoms
    """
    return [f for f in frames if f.info["stage"] == stage]


def nve_drift(frames: list) -> dict:
    """Energy conservation over the NVE frames: drift and fluctuation of E_pot + E_kin.

    The drift is the slope of a straight line (meV/atom/ps), the fluctuation the standard deviation
    about it (meV/atom); the span of E_kin is given for scale.

    The first NVE frame closes a thermostatted step, so the fit starts at the second one.

    Parameters
    ----------
    frames : list of ase.Atoms
        Trajectory frames (any stages; those with ``info["ensemble"] == "nve"`` are used), with a
        potential energy (eV) and ``info`` time_fs and energy_kinetic (eV).

    Returns
    -------
    dict
        ``n_frames``, ``duration_ps``, ``drift_meV_atom_ps``, ``fluctuation_meV_atom`` and
        ``kinetic_span_meV_atom`` (the range of E_kin per atom).

    Raises
    ------
    ValueError
        With fewer than 3 usable NVE frames.
    """
    frames = [f for f in frames if f.info["ensemble"] == "nve"][1:]
    if len(frames) < 3:
        raise ValueError(f"need ≥ 3 NVE frames after the first, got {len(frames)}")
    n_atoms = len(frames[0])
    t_ps = np.array([f.info["time_fs"] for f in frames]) / 1000.0
    total = np.array([f.get_potential_energy() + f.info["energy_kinetic"] for f in frames]) / n_atoms
    coef = np.polyfit(t_ps, total, 1)
    resid = total - np.polyval(coef, t_ps)
    kinetic = np.array([f.info["energy_kinetic"] for f in frames]) / n_atoms
    return {"n_frames": len(frames), "duration_ps": float(t_ps[-1] - t_ps[0]),
            "drift_meV_atom_ps": float(coef[0] * 1000), "fluctuation_meV_atom": float(resid.std() * 1000),
            "kinetic_span_meV_atom": float(np.ptp(kinetic) * 1000)}


def pressure_series(frames: list, correction: float = 0.0) -> np.ndarray:
    """Instantaneous pressure (GPa) of frames that carry a stress: −tr(σ)/3 + 2 E_kin/(3V) + correction.

    Parameters
    ----------
    frames : list of ase.Atoms
        Frames with a stress (eV/Å³, ASE sign) and ``info["energy_kinetic"]`` (eV).
    correction : float
        Constant added to every frame (GPa).

    Returns
    -------
    numpy.ndarray
        (n_frames,) GPa.
    """
    out = []
    for f in frames:
        virial = -np.mean(f.get_stress(voigt=True)[:3])
        kinetic = 2.0 * f.info["energy_kinetic"] / (3.0 * f.get_volume())
        out.append((virial + kinetic) / units.GPa + correction)
    return np.array(out)


def block_average(values, n_blocks: int = 5) -> tuple[float, float]:
    """Mean and block-average standard error of a time series.

    Parameters
    ----------
    values : array_like
        (n,) values in time order, n ≥ 2 ``n_blocks``.
    n_blocks : int
        Consecutive blocks of equal length; the tail that does not fill a block is dropped from the
        error estimate only.

    Returns
    -------
    mean : float
        Mean of all values.
    error : float
        Standard deviation of the block means (ddof 1) / √n_blocks.

    Raises
    ------
    ValueError
        With fewer than 2 ``n_blocks`` values.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2 * n_blocks:
        raise ValueError(f"need ≥ {2 * n_blocks} values for {n_blocks} blocks, got {len(values)}")
    size = len(values) // n_blocks
    means = values[:size * n_blocks].reshape(n_blocks, size).mean(axis=1)
    return float(values.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks))


def stage_summary(frames: list, correction: float = 0.0, n_blocks: int = 5) -> dict:
    """Per stage: frames, simulated time, mean temperature, pressure with its block error, cost per step.

    Parameters
    ----------
    frames : list of ase.Atoms
        Trajectory frames, with ``info`` stage, time_fs, temperature_K, wall_time_s and cpu_time_s.
    correction : float
        Added to every pressure (GPa; see :func:`pressure_series`).
    n_blocks : int
        Blocks of :func:`block_average`.

    Returns
    -------
    dict of str to dict
        Stage (in order of appearance) → ``frames``, ``ps`` (first to last frame), ``temperature_K``,
        ``wall_s_per_step`` and ``cpu_s_per_step`` (s, means) and, when the stage has ≥ 2 ``n_blocks``
        frames all with a stress, ``pressure_GPa`` and ``pressure_err_GPa``.
    """
    out = {}
    for stage in dict.fromkeys(f.info["stage"] for f in frames):
        sub = stage_frames(frames, stage)
        row = {"frames": len(sub),
               "ps": float((sub[-1].info["time_fs"] - sub[0].info["time_fs"]) / 1000.0),
               "temperature_K": float(np.mean([f.info["temperature_K"] for f in sub])),
               "wall_s_per_step": float(np.mean([f.info["wall_time_s"] for f in sub])),
               "cpu_s_per_step": float(np.mean([f.info["cpu_time_s"] for f in sub]))}
        if len(sub) >= 2 * n_blocks and all("stress" in f.calc.results for f in sub):
            mean, err = block_average(pressure_series(sub, correction), n_blocks)
            row.update(pressure_GPa=mean, pressure_err_GPa=err)
        out[stage] = row
    return out
