"""Bulk properties of AB compounds: relaxation, Birch–Murnaghan equation of state, lattice parameters,
polymorph table.

The same fitting code serves a calculator (``bulk_summary(calc=..., structures=...)``: relax, scan
volumes, fit) and stored E–V data (``bulk_summary(frames=...)``: frames with ``info["energy"]``), so
model and reference numbers are computed identically. Phases are the crystal structures of
:data:`mliplib.builders.AB_STRUCTURES`. Units: Å, Å³, eV, GPa; energies and volumes in the table are
per formula unit (f.u., the gcd of the element counts).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from functools import reduce

import numpy as np
from ase import Atoms
from ase.units import GPa
from scipy.optimize import least_squares

from mliplib.builders import AB_STRUCTURES, strained
from mliplib.neighbors import neighbor_list
from mliplib.properties.relax import RelaxLog, relax, snapshot

__all__ = [
    "DEFAULT_STRAINS",
    "DEFAULT_VOLUME_RATIOS",
    "EOSFit",
    "EVCurve",
    "RelaxLog",
    "birch_murnaghan",
    "bulk_summary",
    "energy_volume_curve",
    "ev_from_frames",
    "fit_eos",
    "lattice_parameters",
    "n_formula_units",
    "relax",
]

#: Volumes V/V0 of the default E–V scan: ±12 % in steps of 4 %.
DEFAULT_VOLUME_RATIOS = (0.88, 0.92, 0.96, 1.00, 1.04, 1.08, 1.12)
#: The linear isotropic strains that give them, (V/V0)^(1/3) − 1.
DEFAULT_STRAINS = tuple(round(v ** (1 / 3) - 1, 8) for v in DEFAULT_VOLUME_RATIOS)
#: Conventional-cell formula units for the cubic phases: a = (Z · V_f.u.)^(1/3).
CUBIC_Z = {"zincblende": 4, "rocksalt": 4, "cscl": 1}
HEXAGONAL = ("wurtzite", "hbn")


def birch_murnaghan(volumes, e0: float, v0: float, b0: float, b0_prime: float) -> np.ndarray:
    """Third-order Birch–Murnaghan equation of state E(V).

    Parameters
    ----------
    volumes : array_like
        Volumes (Å³).
    e0 : float
        Minimum energy (eV).
    v0 : float
        Equilibrium volume (Å³).
    b0 : float
        Bulk modulus in eV/Å³ (not GPa).
    b0_prime : float
        Its pressure derivative.

    Returns
    -------
    numpy.ndarray
        Energies (eV), the shape of ``volumes``.
    """
    eta2 = (v0 / np.asarray(volumes, float)) ** (2.0 / 3.0)
    x = eta2 - 1.0
    return e0 + 9.0 * v0 * b0 / 16.0 * (x ** 3 * b0_prime + x ** 2 * (6.0 - 4.0 * eta2))


@dataclasses.dataclass(frozen=True)
class EOSFit:
    """Birch–Murnaghan fit: v0 (Å³), e0 (eV), b0 (GPa), b0_prime, rms residual (eV); ``extrapolated``
    is True when V0 lies outside the fitted volume range (the minimum was not bracketed)."""

    v0: float
    e0: float
    b0: float
    b0_prime: float
    rms: float
    extrapolated: bool

    def energy(self, volumes) -> np.ndarray:
        """The fitted curve.

        Parameters
        ----------
        volumes : array_like
            Volumes (Å³).

        Returns
        -------
        numpy.ndarray
            E(V) (eV).
        """
        return birch_murnaghan(volumes, self.e0, self.v0, self.b0 * GPa, self.b0_prime)


def fit_eos(volumes, energies) -> EOSFit:
    """Least-squares fit of the 3rd-order Birch–Murnaghan equation to E(V) points.

    Starting values from a parabola; raises ValueError when the data have no curvature (no minimum),
    RuntimeError when the fit does not converge.

    Parameters
    ----------
    volumes : array_like, shape (n,)
        Volumes (Å³), at least 5 distinct.
    energies : array_like, shape (n,)
        Energies (eV).

    Returns
    -------
    EOSFit
    """
    v = np.asarray(volumes, float).ravel()
    e = np.asarray(energies, float).ravel()
    if v.shape != e.shape:
        raise ValueError(f"volumes and energies differ in length ({v.size} vs {e.size})")
    if len(np.unique(np.round(v, 8))) < 5:
        raise ValueError(f"need at least 5 distinct volumes for a 4-parameter EOS fit, got {len(np.unique(v))}")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(e))):
        raise ValueError("volumes and energies must be finite")
    if np.any(v <= 0):
        raise ValueError("volumes must be positive (Å³)")
    scale = v.mean()
    c2, c1, _ = np.polyfit(v / scale, e, 2)
    if not c2 > 0:
        raise ValueError("E(V) has no positive curvature (no minimum): cannot fit an equation of state")
    v0 = float(np.clip(-c1 / (2 * c2), 0.5, 2.0)) * scale
    b0 = 2 * c2 / scale ** 2 * v0
    x0 = np.array([e.min(), v0 / scale, b0 * scale, 4.0])  # E0, V0/scale, B0·scale, B0'

    def residual(p):
        return birch_murnaghan(v, p[0], p[1] * scale, p[2] / scale, p[3]) - e

    fit = least_squares(residual, x0, x_scale="jac", method="lm", max_nfev=10000)
    if not fit.success or not np.all(np.isfinite(fit.x)) or fit.x[1] <= 0:
        raise RuntimeError(f"Birch–Murnaghan fit did not converge: {fit.message}")
    e0, v0, b0, b0p = fit.x[0], fit.x[1] * scale, fit.x[2] / scale, fit.x[3]
    rms = float(np.sqrt(np.mean(fit.fun ** 2)))
    return EOSFit(float(v0), float(e0), float(b0 / GPa), float(b0p), rms,
                  bool(v0 < v.min() or v0 > v.max()))


@dataclasses.dataclass
class EVCurve:
    """Energy–volume scan: volumes (n,) Å³ and energies (n,) eV per cell, sorted by volume, with the
    (shape- and position-relaxed) structures; logs: the relaxation logs (empty for stored data)."""

    volumes: np.ndarray
    energies: np.ndarray
    structures: list
    logs: list = dataclasses.field(default_factory=list)


def energy_volume_curve(atoms: Atoms, calc, strains: Sequence[float] = DEFAULT_STRAINS, relax_shape: bool = True,
                        fmax: float = 0.01, steps: int = 100) -> EVCurve:
    """E(V) of ``atoms`` scaled by the linear isotropic ``strains`` (V/V_ref = (1 + ε)³).

    relax_shape: at each volume relax the cell shape (c/a, angles) and the internal coordinates at
    constant volume (FrechetCellFilter, ``fmax`` eV/Å, ``steps``); cubic cells converge immediately. With
    ``relax_shape=False`` the strained cells are evaluated as they are.

    Parameters
    ----------
    atoms : ase.Atoms
        Bulk cell (periodic along x, y, z), the reference volume.
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    strains : sequence of float
        Linear isotropic strains.
    relax_shape : bool
        Relax shape and positions at constant volume.
    fmax : float
        Force criterion (eV/Å).
    steps : int
        Most optimiser steps per volume.

    Returns
    -------
    EVCurve
    """
    if not (np.all(atoms.pbc) and atoms.cell.rank == 3):
        raise ValueError("an E–V curve needs a bulk cell periodic along x, y and z")
    strains = np.asarray(strains, float).ravel()
    if np.any(strains <= -1):
        raise ValueError("linear strains must be > -1")
    structures, logs = [], []
    for eps in strains:
        trial = strained(atoms, float(eps))
        if relax_shape:
            relaxed, log = relax(trial, calc, fmax=fmax, cell=True, constant_volume=True, steps=steps)
            if log.failure:
                raise RuntimeError(f"relaxation at strain {eps:+.3f} failed: {log.failure}")
            logs.append(log)
        else:
            trial.calc = calc
            relaxed = snapshot(trial, stress=False)
        structures.append(relaxed)
    volumes = np.array([s.get_volume() for s in structures])
    energies = np.array([s.get_potential_energy() for s in structures])
    order = np.argsort(volumes)
    return EVCurve(volumes[order], energies[order], [structures[k] for k in order],
                   [logs[k] for k in order] if logs else [])


def ev_from_frames(frames: Sequence[Atoms]) -> dict[str, EVCurve]:
    """Group stored frames (``info["energy"]`` in eV) into E–V curves, one per phase.

    The phase is ``info["phase"]`` (else ``info["config_type"]`` up to its last "_"). Frames of one task
    (``info["task"]``; else of equal volume to 10⁻³ Å³) are one volume point — the lowest-energy frame,
    i.e. the most relaxed step of a constant-volume relaxation.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Stored frames with ``info["energy"]`` (eV).

    Returns
    -------
    dict of str to EVCurve
    """
    groups: dict[str, dict] = {}
    for atoms in frames:
        if "energy" not in atoms.info:
            raise ValueError("every frame needs info['energy'] (eV), the stored reference energy")
        phase = atoms.info.get("phase") or str(atoms.info.get("config_type", "")).rsplit("_", 1)[0]
        if not phase:
            raise ValueError("a frame has neither info['phase'] nor info['config_type']")
        key = atoms.info.get("task", round(atoms.get_volume(), 3))
        best = groups.setdefault(phase, {}).get(key)
        if best is None or atoms.info["energy"] < best.info["energy"]:
            groups[phase][key] = atoms
    curves = {}
    for phase, points in groups.items():
        structures = sorted(points.values(), key=lambda a: a.get_volume())
        curves[phase] = EVCurve(np.array([a.get_volume() for a in structures]),
                                np.array([float(a.info["energy"]) for a in structures]), structures)
    return curves


def n_formula_units(atoms: Atoms) -> int:
    """Formula units in the cell: the gcd of the element counts (e.g. the number of Zn in ZnO).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.

    Returns
    -------
    int
    """
    counts = np.unique(atoms.numbers, return_counts=True)[1]
    if not len(counts):
        raise ValueError("empty structure")
    return int(reduce(math.gcd, counts.tolist()))


def _angle(u, v) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))))


def lattice_parameters(atoms: Atoms, phase: str | None = None) -> dict:
    """Lattice parameters of an AB crystal cell as built by :func:`mliplib.builders.binary_crystal`.

    A is the species of the first atom. Hexagonal (wurtzite, hbn; c along a3): ``u`` = length of the
    A–B bond parallel to c, divided by c. BCT (conventional tetragonal cell): ``u`` = the internal
    coordinate x of A on 4f (x, x, 0). Cubic phases: a of the conventional cubic cell from the volume,
    c = a, u = NaN.

    Parameters
    ----------
    atoms : ase.Atoms
        The bulk cell.
    phase : str, optional
        One of :data:`mliplib.builders.AB_STRUCTURES`; default ``atoms.info["phase"]``.

    Returns
    -------
    dict
        ``a``, ``c`` (Å), ``u``, ``c_over_a``, ``volume`` (Å³ per f.u.).
    """
    phase = phase or atoms.info.get("phase")
    if phase not in AB_STRUCTURES:
        raise ValueError(f"unknown or missing phase {phase!r}; pass one of {AB_STRUCTURES}")
    if not (np.all(atoms.pbc) and atoms.cell.rank == 3):
        raise ValueError("lattice parameters need a bulk cell periodic along x, y and z")
    volume = atoms.get_volume() / n_formula_units(atoms)
    cell = atoms.cell.array
    lengths = np.linalg.norm(cell, axis=1)
    if phase in CUBIC_Z:
        a = (CUBIC_Z[phase] * volume) ** (1 / 3)
        return {"a": a, "c": a, "u": float("nan"), "c_over_a": 1.0, "volume": volume}
    if phase in HEXAGONAL:
        gamma = _angle(cell[0], cell[1])
        if abs(_angle(cell[0], cell[2]) - 90) > 1 or abs(_angle(cell[1], cell[2]) - 90) > 1 or \
                min(abs(gamma - 120), abs(gamma - 60)) > 1:
            raise ValueError(f"{phase}: expected a hexagonal cell with c along a3 (got angles "
                             f"{atoms.cell.angles().round(2).tolist()})")
        a, c = 0.5 * (lengths[0] + lengths[1]), lengths[2]
        axis = cell[2] / c
        pairs = neighbor_list(atoms, 0.95 * c)
        a_b = (atoms.numbers[pairs.i] == atoms.numbers[0]) & (atoms.numbers[pairs.j] != atoms.numbers[0])
        vec = pairs.vectors[a_b]
        along = vec @ axis
        sideways = np.linalg.norm(vec - np.outer(along, axis), axis=1)
        parallel = np.abs(along[sideways < 0.05 * a])
        if not len(parallel):
            raise ValueError(f"{phase}: no A–B bond parallel to c found")
        return {"a": a, "c": c, "u": float(parallel.min() / c), "c_over_a": c / a, "volume": volume}
    # bct: tetragonal conventional cell
    if np.any(np.abs(atoms.cell.angles() - 90) > 1) or abs(lengths[0] - lengths[1]) > 1e-3 * lengths[0]:
        raise ValueError(f"bct: expected the conventional tetragonal cell (a = b, right angles), got "
                         f"{atoms.cell.cellpar().round(3).tolist()}")
    a, c = 0.5 * (lengths[0] + lengths[1]), lengths[2]
    frac = atoms.get_scaled_positions()[atoms.numbers == atoms.numbers[0]]
    half = np.round(2 * frac[:, 2]) % 2 / 2  # 0 for z = 0 sites, 1/2 for z = 1/2 sites
    d = frac[:, 0] - half
    x = np.abs(d - np.round(d))
    return {"a": a, "c": c, "u": float(x.mean()), "c_over_a": c / a, "volume": volume}


def _summary_row(phase: str, curve: EVCurve) -> dict:
    n_fu = np.array([n_formula_units(s) for s in curve.structures])
    fit = fit_eos(curve.volumes / n_fu, curve.energies / n_fu)
    params = [lattice_parameters(s, phase) for s in curve.structures]
    v = np.array([p["volume"] for p in params])
    row = {"phase": phase}
    for key in ("a", "c", "u"):
        y = np.array([p[key] for p in params])
        if np.all(np.isnan(y)):
            row[key] = float("nan")
        else:  # quadratic interpolation of the constant-volume relaxed parameters at V0
            row[key] = float(np.polyval(np.polyfit(v, y, min(2, len(v) - 1)), fit.v0))
    row["c_over_a"] = row["c"] / row["a"]
    row.update(volume=fit.v0, b0=fit.b0, b0_prime=fit.b0_prime, e0=fit.e0, rms=fit.rms,
               extrapolated=fit.extrapolated, n_points=len(v))
    return row


def bulk_summary(calc=None, frames: Sequence[Atoms] | Mapping[str, EVCurve] | None = None,
                 structures: Mapping[str, Atoms] | None = None, phases: Sequence[str] | None = None,
                 reference: str | None = None, strains: Sequence[float] = DEFAULT_STRAINS, prerelax: bool = True,
                 fmax: float = 0.01, steps: int = 100, errors: str = "raise") -> list[dict]:
    """Per-polymorph table from a calculator (``calc`` with starting ``structures``) or from stored E–V
    data (``frames``).

    With ``calc``: each phase starts from ``structures[phase]``, is relaxed at zero pressure
    (``prerelax``), then scanned with :func:`energy_volume_curve` (``strains``).

    Parameters
    ----------
    calc : ase.calculators.calculator.Calculator, optional
        Any ASE calculator (give exactly one of ``calc`` and ``frames``).
    frames : sequence of ase.Atoms or mapping of str to EVCurve, optional
        Stored frames (grouped by :func:`ev_from_frames`) or {phase: EVCurve}.
    structures : mapping of str to ase.Atoms, optional
        Starting cells {phase: Atoms} (required with ``calc``), phases as in :func:`lattice_parameters`.
    phases : sequence of str, optional
        Rows, in order (default: the keys of ``structures``, or every phase of ``frames``).
    reference : str, optional
        The phase whose E0 is the zero of ``de`` (default: the first phase).
    strains : sequence of float
        Linear strains of the scan (with ``calc``).
    prerelax : bool
        Relax each start at zero pressure first (with ``calc``).
    fmax : float
        Force criterion (eV/Å) of the relaxations.
    steps : int
        Most optimiser steps per relaxation (4× for the zero-pressure one).
    errors : {"raise", "record"}
        "record" puts NaN numbers and the message in ``row["error"]`` for a phase whose relaxation or
        fit fails (a model can be unstable in a phase).

    Returns
    -------
    list of dict
        One row per phase: phase; a, c (Å), u, c_over_a (see :func:`lattice_parameters`) interpolated
        to the fitted V0; volume (Å³/f.u.); b0 (GPa), b0_prime; e0 (eV/f.u.); de (eV/f.u., E0 − E0 of
        ``reference``); rms (eV/f.u.) of the fit; extrapolated; n_points.
    """
    if (calc is None) == (frames is None):
        raise ValueError("give exactly one of calc (a calculator) or frames (stored E–V data)")
    if errors not in ("raise", "record"):
        raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
    curves = None
    if frames is not None:
        curves = dict(frames) if isinstance(frames, Mapping) else ev_from_frames(frames)
        phases = list(curves) if phases is None else list(phases)
        missing = [p for p in phases if p not in curves]
        if missing:
            raise ValueError(f"no E–V data for {missing}; available: {sorted(curves)}")
    else:
        if structures is None:
            raise ValueError("with calc, give the starting cells: structures={phase: Atoms}")
        phases = list(structures) if phases is None else list(phases)
        missing = [p for p in phases if p not in structures]
        if missing:
            raise ValueError(f"no starting structure for {missing}; structures has {sorted(structures)}")
    reference = phases[0] if reference is None and phases else reference
    rows = []
    for phase in phases:
        try:
            if curves is not None:
                curve = curves[phase]
            else:
                start = structures[phase].copy()
                if prerelax:
                    start, log = relax(start, calc, fmax=fmax, cell=True, steps=4 * steps)
                    if log.failure:
                        raise RuntimeError(f"zero-pressure relaxation failed: {log.failure}")
                    start.info["phase"] = phase
                curve = energy_volume_curve(start, calc, strains=strains, relax_shape=True, fmax=fmax,
                                            steps=steps)
            rows.append(_summary_row(phase, curve))
        except (ValueError, RuntimeError) as error:
            if errors == "raise":
                raise
            rows.append({"phase": phase, **{k: float("nan") for k in ("a", "c", "u", "c_over_a", "volume",
                                                                         "b0", "b0_prime", "e0", "rms")},
                         "extrapolated": False, "n_points": 0, "error": str(error)})
    ref = {r["phase"]: r["e0"] for r in rows}.get(reference, float("nan"))
    for row in rows:
        row["de"] = row["e0"] - ref
    return rows
