"""The pilot: cost and forces of candidate DFT settings per MD step on liquid ZnO frames.

Three 36-atom frames of PLIP's liquid (4.9 g/cm³, 3000 K) that the book already labelled with its
reference setting (``liquid.extxyz``) start short *snippets*: consecutive positions from a few PLIP
velocity-Verlet steps (Maxwell–Boltzmann velocities at 3000 K, seeded), so that every setting is timed
as in MD: step 0 from scratch ("cold"), later steps restarted from the previous step's density and wave
functions ("warm"). Forces at step 0 are compared with the stored reference labels, and warm-step forces
with the book setting's own warm steps where it was run.

Files under ``<root>/aimd/pilot/``: ``snippets.extxyz`` (the positions), per measured step
``<setting>/<frame>_s<step>.json`` (setting, frame, cold/warm, SCF iterations, wall time, energies) and
``.npz`` (forces, stress); ``<root>/aimd/pilot_summary.json`` the table and the decision.
Units: eV, Å, GPa, s, fs.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.io import read, write
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

import mliplib
from zno_book.paths import models_dir

from .ledger import charge, core_hours
from .run import liquid_protocol
from .settings import BOOK, SETTINGS, DFTStepper, engine_version
from .storage import read_json, write_json, write_npz

__all__ = [
    "BUDGET_CORE_HOURS",
    "FORCE_RMS_TOLERANCE",
    "PILOT_FRAMES",
    "PLAN",
    "Measurement",
    "load_step",
    "make_snippets",
    "pressure_gpa",
    "reference_frames",
    "run_pilot",
    "summarize_pilot",
]

#: the labelled PLIP liquid frames (tasks of liquid.extxyz) that start the snippets, 2 ps apart
PILOT_FRAMES = ("liquid/at_plip/frame01", "liquid/at_plip/frame03", "liquid/at_plip/frame05")
SNIPPET_TIMESTEP_FS = 2.0
SNIPPET_TEMPERATURE_K = 3000.0
SNIPPET_SEED = 19
#: the issue's budget (one-core hours, pilot included) and the decision rule's force tolerance (eV/Å)
BUDGET_CORE_HOURS = 30.0
FORCE_RMS_TOLERANCE = 0.1
#: eV/Å³ → GPa
EV_A3_TO_GPA = 1.0 / units.GPa


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Run ``setting`` on the first ``steps`` positions of the snippet of each of ``frames``.

    Parameters
    ----------
    setting : str
        A name in :data:`~zno_book.aimd.settings.SETTINGS`.
    frames : tuple of str
        Tasks of :data:`PILOT_FRAMES`.
    steps : int
        Snippet positions to evaluate, step 0 (cold) first.
    """

    setting: str
    frames: tuple
    steps: int


#: ordered by what the decision needs first: the k-point effect alone (pw800_gamma, cold on every frame),
#: LCAO at Γ, the Γ plane-wave settings (cost and cutoff effect; Γ with a relaxed eigenstate criterion),
#: the book setting's own warm steps last (the most expensive). LCAO with the book's k-mesh is not
#: measured: LCAO at Γ already costs more per warm step (133 s CPU) than any run that fits the budget
#: allows, and its basis error alone (vs pw800_gamma) is 0.11 eV/Å RMS on frame01
PLAN = (
    Measurement("pw800_gamma", PILOT_FRAMES[:1], 3),
    Measurement("lcao_dzp_gamma", PILOT_FRAMES[:1], 3),
    Measurement("pw800_gamma", PILOT_FRAMES[1:], 1),
    Measurement("pw400_gamma_scf", PILOT_FRAMES[:1], 3),
    Measurement("pw500_gamma", PILOT_FRAMES[:1], 3),
    Measurement("pw600_gamma", PILOT_FRAMES[:1], 3),
    Measurement("pw400_gamma", PILOT_FRAMES, 3),
    Measurement("book", PILOT_FRAMES[:1], 3),
)


def frame_label(task: str) -> str:
    """File-name label of a liquid task: "liquid/at_plip/frame01" → "plip_frame01".

    Parameters
    ----------
    task : str
        A task name with at least two ``/``-separated parts.

    Returns
    -------
    str
        The last two parts joined by ``_``, without the ``at_`` prefix of the first.
    """
    parts = task.split("/")
    return f"{parts[-2].removeprefix('at_')}_{parts[-1]}"


def pressure_gpa(stress_voigt) -> float:
    """Virial pressure (GPa, positive = compressed) from an ASE Voigt stress (eV/Å³, tensile positive).

    Parameters
    ----------
    stress_voigt : array_like
        (6,) Voigt stress (xx yy zz yz xz xy), eV/Å³; only the diagonal is used.

    Returns
    -------
    float
        −tr(σ)/3 in GPa.
    """
    return float(-np.mean(np.asarray(stress_voigt)[:3]) * EV_A3_TO_GPA)


def reference_frames(root: Path, tasks=PILOT_FRAMES) -> dict[str, Atoms]:
    """The book-setting labelled frames of ``tasks`` from ``<root>/liquid.extxyz``, by task.

    Parameters
    ----------
    root : str or Path
        The data folder (``data/zno``).
    tasks : tuple of str
        ``info["task"]`` of the frames wanted.

    Returns
    -------
    dict of str to ase.Atoms
        Task → frame, with its DFT results (energy eV, forces eV/Å, stress eV/Å³) in a single-point
        calculator.

    Raises
    ------
    KeyError
        If a task is not in the file.
    """
    frames = {a.info["task"]: a for a in read(Path(root) / "liquid.extxyz", ":")
              if a.info.get("task") in tasks}
    missing = set(tasks) - set(frames)
    if missing:
        raise KeyError(f"{sorted(missing)} not in {root}/liquid.extxyz")
    return frames


def make_snippets(root: Path, steps: int | None = None, model_path: Path | None = None) -> dict:
    """The snippet positions, made once with PLIP and cached in ``<root>/aimd/pilot/snippets.extxyz``.

    Step 0 is the labelled frame; steps 1.. follow by PLIP velocity Verlet at SNIPPET_TIMESTEP_FS from
    Maxwell–Boltzmann velocities at SNIPPET_TEMPERATURE_K (seed SNIPPET_SEED + frame index).

    Parameters
    ----------
    root : str or Path
        The data folder (``data/zno``: reads ``liquid.extxyz``, writes the cache under ``aimd/pilot``).
    steps : int, optional
        Positions per snippet (default: the longest measurement of :data:`PLAN`). A cache with at least
        this many per frame is returned as it is; otherwise the snippets are made again and the cache
        overwritten.
    model_path : str or Path, optional
        The PLIP model file (default: the shipped one, ``models/v1/plip.npz``).

    Returns
    -------
    dict of str to list of ase.Atoms
        Task of :data:`PILOT_FRAMES` → positions without calculator, step 0 first; ``info``: frame,
        step, time_fs, sampled_by, model_path.
    """
    path = Path(root) / "aimd" / "pilot" / "snippets.extxyz"
    steps = steps or max(m.steps for m in PLAN)
    if path.exists():
        snippets: dict = {}
        for a in read(path, ":"):
            snippets.setdefault(a.info["frame"], []).append(a)
        if all(len(snippets.get(t, [])) >= steps for t in PILOT_FRAMES):
            return snippets
    model_path = Path(model_path) if model_path is not None else models_dir() / "plip.npz"
    model = mliplib.load(model_path)
    snippets = {}
    for k, (task, frame) in enumerate(reference_frames(root).items()):
        atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=True)
        atoms.calc = model.calculator()
        MaxwellBoltzmannDistribution(atoms, temperature_K=SNIPPET_TEMPERATURE_K,
                                     rng=np.random.default_rng(SNIPPET_SEED + k))
        Stationary(atoms)
        dyn = VelocityVerlet(atoms, timestep=SNIPPET_TIMESTEP_FS * units.fs)
        out = []
        for step in range(steps):
            if step:
                dyn.step()
            snap = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
            snap.info.update(frame=task, step=step, time_fs=step * SNIPPET_TIMESTEP_FS,
                             sampled_by="plip velocity Verlet", model_path=f"models/v1/{model_path.name}")
            out.append(snap)
        snippets[task] = out
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, [a for t in PILOT_FRAMES for a in snippets[t]], format="extxyz")
    return snippets


def _step_path(root: Path, setting: str, task: str, step: int) -> Path:
    return Path(root) / "aimd" / "pilot" / setting / f"{frame_label(task)}_s{step}"


def measured_steps(root: Path, setting: str, task: str, steps: int) -> list[int]:
    """The steps of a snippet already measured with ``setting`` (their JSON exists).

    Parameters
    ----------
    root : str or Path
        The data folder.
    setting : str
        Setting name.
    task : str
        Task of the snippet's frame.
    steps : int
        Steps 0 … ``steps`` − 1 are looked for.

    Returns
    -------
    list of int
        Ascending.
    """
    return [s for s in range(steps) if _step_path(root, setting, task, s).with_suffix(".json").exists()]


def _record(root: Path, setting, task: str, step: int, atoms: Atoms, result, log) -> None:
    base = _step_path(root, setting.name, task, step)
    arrays = {"forces": result.forces, "positions": atoms.positions}
    if result.stress is not None:
        arrays["stress"] = result.stress
    write_npz(base.with_suffix(".npz"), **arrays)
    info = {"frame": task, "step": step, "time_fs": step * SNIPPET_TIMESTEP_FS, "n_atoms": len(atoms),
            "setting": setting.as_dict(), "kpts": list(setting.kpts(atoms)), "engine": engine_version(),
            "arrays": base.with_suffix(".npz").name, **result.info()}
    if result.stress is not None:
        info["pressure_virial_GPa"] = pressure_gpa(result.stress)
    write_json(base.with_suffix(".json"), info)
    charge(Path(root) / "aimd", "pilot", f"{setting.name}/{frame_label(task)}_s{step}", result.wall_time_s,
           result.cpu_time_s)
    log(f"{setting.name} {frame_label(task)} step {step} {result.start}: {result.wall_time_s:.1f} s wall, "
        f"{result.cpu_time_s:.1f} s CPU "
        f"({result.scf_iterations} SCF iterations, stress {result.stress_time_s:.1f} s), "
        f"E = {result.energy:.4f} eV")


def run_pilot(root: Path, plan=PLAN, log=print, gpaw_log_dir: Path | None = None) -> None:
    """Measure every step of ``plan`` not yet measured, recording each and charging it to the ledger.

    Resumable: a snippet interrupted after step k re-converges step k once, unrecorded but charged to
    the ledger, and continues warm.

    Parameters
    ----------
    root : str or Path
        The data folder; files go under ``<root>/aimd/pilot/``, the ledger is ``<root>/aimd``.
    plan : sequence of Measurement
        What to measure, in order.
    log : callable
        Called with one line of progress (str) per step.
    gpaw_log_dir : str or Path, optional
        Where GPAW writes one text log per snippet (None: no GPAW logs).

    Raises
    ------
    RuntimeError
        If the measured steps of a snippet are not contiguous from step 0.
    """
    snippets = make_snippets(root)
    for m in plan:
        setting = SETTINGS[m.setting]
        for task in m.frames:
            done = measured_steps(root, setting.name, task, m.steps)
            if len(done) == m.steps:
                continue
            first = len(done)
            if done != list(range(first)):
                raise RuntimeError(f"{setting.name} {task}: measured steps {done} are not contiguous")
            positions = snippets[task]
            txt = None
            if gpaw_log_dir is not None:
                Path(gpaw_log_dir).mkdir(parents=True, exist_ok=True)
                txt = str(Path(gpaw_log_dir) / f"{setting.name}_{frame_label(task)}.txt")
            stepper = DFTStepper(positions[0], setting, txt=txt)
            if first:
                atoms = positions[first - 1].copy()
                again = stepper.evaluate(atoms)
                charge(Path(root) / "aimd", "pilot", f"{setting.name}/{frame_label(task)}_rewarm",
                       again.wall_time_s, again.cpu_time_s)
                log(f"{setting.name} {frame_label(task)}: re-converged step {first - 1} to resume "
                    f"({again.wall_time_s:.1f} s)")
            for step in range(first, m.steps):
                atoms = positions[step].copy()
                result = stepper.evaluate(atoms)
                _record(root, setting, task, step, atoms, result, log)
            log(f"ledger: {core_hours(Path(root) / 'aimd')['total']:.2f} one-core (CPU) hours so far")


def load_step(root: Path, setting: str, task: str, step: int):
    """The record of one measured pilot step.

    Parameters
    ----------
    root : str or Path
        The data folder.
    setting : str
        Setting name.
    task : str
        Task of the snippet's frame.
    step : int
        Snippet step.

    Returns
    -------
    tuple of (dict, dict) or None
        ``info`` (the step's JSON: setting, frame, start, SCF iterations, times in s, energies in eV,
        ...) and ``arrays``: ``forces`` (n_atoms, 3) eV/Å, ``positions`` (n_atoms, 3) Å and, where
        computed, ``stress`` (6,) eV/Å³; None if the step was not measured.
    """
    base = _step_path(root, setting, task, step)
    if not base.with_suffix(".json").exists():
        return None
    with np.load(base.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    return read_json(base.with_suffix(".json")), arrays


def _deviation(forces, reference) -> dict:
    diff = np.asarray(forces) - np.asarray(reference)
    return {"rms": float(np.sqrt(np.mean(diff ** 2))), "max": float(np.abs(diff).max())}


def summarize_pilot(root: Path, timestep_fs: float = SNIPPET_TIMESTEP_FS, plan=PLAN) -> dict:
    """The pilot table and decision, written to ``<root>/aimd/pilot_summary.json`` and returned.

    Per setting: cold and warm cost per step — CPU seconds (the one-core cost) and wall seconds (larger
    when other processes share the core) of energy + forces + stress where the setting computes it —
    and SCF iterations; force deviations (eV/Å; RMS over all components and the largest component) at
    step 0 from the stored book-setting labels (per frame and pooled) and from pw800_gamma (the cutoff
    effect alone, at Γ), and at warm steps from the book setting's warm steps where available; the
    spread of the energy difference to the book setting over frames (meV/atom, i.e. relative
    energies); the virial pressure offset to the book setting (GPa); the projection of the planned run
    (:func:`zno_book.aimd.run.liquid_protocol` at ``timestep_fs``) plus ten book-setting re-labels on the
    remaining budget.
    Decision rule: the cheapest setting (warm CPU cost per ps) whose pooled step-0 force RMS deviation
    from the book setting is at most FORCE_RMS_TOLERANCE and whose projected run fits the budget;
    otherwise no setting is chosen and the run is not started (the issue's stop rule).

    Parameters
    ----------
    root : str or Path
        The data folder (reads ``liquid.extxyz``, the pilot's records and the ledger).
    timestep_fs : float
        MD time step of the projected run (fs).
    plan : sequence of Measurement
        Its settings get a row, in order of first appearance.

    Returns
    -------
    dict
        The summary written: ``table`` (one row per measured setting), ``chosen`` (a setting name or
        None), ``decision``, one-core hours spent and remaining, and the rule and context.

    Raises
    ------
    KeyError
        If ``liquid.extxyz`` lacks a pilot frame or, without a measured book-setting cold step, one
        of the ten PLIP frames.
    """
    root = Path(root)
    refs = reference_frames(root)
    table = []
    for name in dict.fromkeys(m.setting for m in plan):
        rows = []
        for task in PILOT_FRAMES:
            for step in range(max(m.steps for m in plan)):
                got = load_step(root, name, task, step)
                if got is not None:
                    rows.append((task, step, *got))
        if rows:
            table.append(_setting_row(root, name, rows, refs, timestep_fs))
    spent = core_hours(root / "aimd", "cpu")
    remaining = BUDGET_CORE_HOURS - spent["total"]
    book_cold = _book_cold_cpu_s(root, table)
    run_steps = liquid_protocol(BOOK, 4.9, timestep_fs=timestep_fs).total_steps
    for row in table:
        row["projection"] = _projection(row, run_steps, timestep_fs, book_cold, remaining)
        row["verdict"] = _verdict(row)
    eligible = [r for r in table if r["verdict"] == "eligible"]
    chosen = min(eligible, key=lambda r: r["cpu_hours_per_ps"]) if eligible else None
    summary = {
        "description": "AIMD pilot (issue 19): cost per MD step and force deviation from the book setting "
                       "on 36-atom PLIP liquid frames (4.9 g/cm³) with PLIP-made consecutive snippets",
        "frames": list(PILOT_FRAMES), "snippet_timestep_fs": SNIPPET_TIMESTEP_FS,
        "cost_timestep_fs": timestep_fs, "engine": engine_version(),
        "book_setting": BOOK.as_dict(),
        "decision_rule": f"cheapest warm CPU cost per ps among settings with pooled step-0 force RMS deviation "
                         f"≤ {FORCE_RMS_TOLERANCE} eV/Å from the book setting whose run ({run_steps} steps of "
                         f"{timestep_fs} fs) plus 10 book re-labels fits the remaining budget; none: stop",
        "planned_run_steps": run_steps, "book_cold_cpu_s": book_cold,
        "table": table,
        "chosen": chosen["setting"]["name"] if chosen else None,
        "decision": (f"run with {chosen['setting']['name']}" if chosen else
                     "stop after the pilot: no setting is within the force tolerance and fits the budget "
                     "(see each row's verdict); the run is not started"),
        "core_hours_cpu": spent, "core_hours_wall": core_hours(root / "aimd", "wall"),
        "budget_core_hours": BUDGET_CORE_HOURS, "remaining_core_hours": remaining,
        "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(root / "aimd" / "pilot_summary.json", summary)
    return summary


def _verdict(row: dict) -> str:
    """"eligible", or why a setting is not: the reference itself, force deviation, cost."""
    if row["setting"]["name"] == "book":
        return "the reference"
    reasons = []
    if row["force_rms_vs_book_step0"] > FORCE_RMS_TOLERANCE:
        reasons.append(f"force RMS {row['force_rms_vs_book_step0']:.3f} eV/Å > {FORCE_RMS_TOLERANCE}")
    if row["projection"] is None:
        reasons.append("no warm step measured")
    elif not row["projection"]["fits"]:
        reasons.append(f"run + re-labels {row['projection']['total_cpu_hours']:.1f} one-core h > remaining budget")
    return "; ".join(reasons) or "eligible"


def _book_cold_cpu_s(root: Path, table: list) -> float:
    """CPU seconds of a cold book-setting single point of a 36-atom liquid frame: the pilot's own if
    measured, else the mean wall time of the ten PLIP frames in liquid.extxyz."""
    for row in table:
        if row["setting"]["name"] == "book" and row["cold_cpu_s_per_step"]:
            return row["cold_cpu_s_per_step"]
    frames = reference_frames(root, tasks=tuple(f"liquid/at_plip/frame{k:02d}" for k in range(10)))
    return float(np.mean([f.info["wall_time_s"] for f in frames.values()]))


def _projection(row: dict, run_steps: int, timestep_fs: float, book_cold_s: float, remaining_h: float) -> dict | None:
    if row["warm_cpu_s_per_step"] is None:
        return None
    run_h = (row["cold_cpu_s_per_step"] + run_steps * row["warm_cpu_s_per_step"]) / 3600.0
    relabel_h = 10 * book_cold_s / 3600.0
    affordable_steps = max(0.0, remaining_h - relabel_h) * 3600.0 / row["warm_cpu_s_per_step"]
    return {"run_cpu_hours": run_h, "relabel_cpu_hours": relabel_h, "total_cpu_hours": run_h + relabel_h,
            "fits": run_h + relabel_h <= remaining_h,
            "affordable_ps_after_relabels": affordable_steps * timestep_fs / 1000.0}


def _setting_row(root: Path, name: str, rows: list, refs: dict, timestep_fs: float) -> dict:
    def mean(infos, key):
        return float(np.mean([i[key] for i in infos])) if infos else None

    cold = [info for _, _, info, _ in rows if info["start"] == "cold"]
    warm = [info for _, _, info, _ in rows if info["start"] == "warm"]
    per_frame, pooled, pooled_pw800, energy_diff, pressure_diff, warm_dev = {}, [], [], [], [], []
    for task, step, info, arrays in rows:
        if step == 0:
            ref = refs[task]
            per_frame[frame_label(task)] = {**_deviation(arrays["forces"], ref.get_forces()),
                                            "cold_cpu_s": info["cpu_time_s"], "cold_wall_s": info["wall_time_s"],
                                            "scf_iterations": info["scf_iterations"]}
            pooled.append(np.asarray(arrays["forces"]) - ref.get_forces())
            energy_diff.append((info["energy"] - ref.get_potential_energy(force_consistent=True)) / info["n_atoms"])
            if "stress" in arrays:
                pressure_diff.append(pressure_gpa(arrays["stress"]) - pressure_gpa(ref.get_stress(voigt=True)))
            gamma = load_step(root, "pw800_gamma", task, 0)
            if gamma is not None and name != "pw800_gamma":
                pooled_pw800.append(np.asarray(arrays["forces"]) - gamma[1]["forces"])
        elif name != "book":
            book = load_step(root, "book", task, step)
            if book is not None:
                warm_dev.append(_deviation(arrays["forces"], book[1]["forces"]))
    warm_cpu = mean(warm, "cpu_time_s")
    return {
        "setting": SETTINGS[name].as_dict(), "n_atoms": rows[0][2]["n_atoms"], "kpts": rows[0][2]["kpts"],
        "frames_measured": len(per_frame), "steps_measured": len(rows), "warm_steps_measured": len(warm),
        "cold_cpu_s_per_step": mean(cold, "cpu_time_s"), "warm_cpu_s_per_step": warm_cpu,
        "cold_wall_s_per_step": mean(cold, "wall_time_s"), "warm_wall_s_per_step": mean(warm, "wall_time_s"),
        "warm_cpu_s_range": [min(i["cpu_time_s"] for i in warm), max(i["cpu_time_s"] for i in warm)] if warm else None,
        "stress_wall_s_per_step": mean([info for _, _, info, _ in rows], "stress_time_s"),
        "scf_iterations_cold": mean(cold, "scf_iterations"), "scf_iterations_warm": mean(warm, "scf_iterations"),
        "force_rms_vs_book_step0": _rms(pooled), "force_max_vs_book_step0": _max(pooled),
        "force_rms_vs_pw800_gamma_step0": _rms(pooled_pw800), "force_max_vs_pw800_gamma_step0": _max(pooled_pw800),
        "force_vs_book_warm_steps": {"n": len(warm_dev),
                                     "rms": float(np.sqrt(np.mean([d["rms"] ** 2 for d in warm_dev]))),
                                     "max": float(max(d["max"] for d in warm_dev))} if warm_dev else None,
        "per_frame_step0": per_frame,
        "energy_vs_book_spread_meV_atom": float(np.std(energy_diff) * 1000) if len(energy_diff) > 1 else None,
        "pressure_offset_vs_book_GPa": {"mean": float(np.mean(pressure_diff)), "std": float(np.std(pressure_diff)),
                                        "n": len(pressure_diff)} if pressure_diff else None,
        "cpu_hours_per_ps": warm_cpu * 1000.0 / timestep_fs / 3600.0 if warm_cpu else None,
    }


def _rms(diffs: list) -> float | None:
    return float(np.sqrt(np.mean(np.concatenate(diffs) ** 2))) if diffs else None


def _max(diffs: list) -> float | None:
    return float(np.abs(np.concatenate(diffs)).max()) if diffs else None
